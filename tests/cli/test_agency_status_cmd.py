"""``kluis agency status``: an agency keeps its Token Status List in a file, hands out places,
revokes, suspends and reinstates, and publishes a token a relying party reads the same way;
a refused command leaves the state file byte for byte as it was."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from jwcrypto.jwk import JWK

from verifiers import (
    StatusArray,
    StatusValue,
    format_status_list,
    parse_status_list_state,
    verify_status_list_token,
)
from verifiers.statuslist import MIN_LIST_SIZE

Invoke = Callable[..., Result]
Run = Callable[..., subprocess.CompletedProcess[bytes]]
URI = "https://brp.kluis.example/status/1"


@pytest.fixture
def key(tmp_path: Path) -> Path:
    """An issuer key file as ``kluis sdjwt keygen`` writes it."""
    jwk = JWK.generate(kty="EC", crv="P-256")
    path = tmp_path / "issuer.jwk"
    path.write_text(json.dumps({**jwk.export_private(as_dict=True), "kid": jwk.thumbprint()}))
    return path


def _public(key: Path) -> JWK:
    return JWK(**JWK(**json.loads(key.read_text())).export_public(as_dict=True))


@pytest.fixture
def state(kluis: Invoke, tmp_path: Path) -> Path:
    path = tmp_path / "status.json"
    result = kluis("agency", "status", "init", "--uri", URI, "--out", str(path))
    assert result.exit_code == 0, result.output
    return path


def _allocate(kluis: Invoke, state: Path) -> int:
    result = kluis("agency", "status", "allocate", str(state))
    assert result.exit_code == 0, result.output
    claim = json.loads(result.stdout)
    assert claim["status_list"]["uri"] == URI
    return int(claim["status_list"]["idx"])


def _do(kluis: Invoke, action: str, state: Path, index: int) -> Result:
    return kluis("agency", "status", action, str(state), "--index", str(index))


def _token_value(kluis: Invoke, state: Path, key: Path, index: int) -> int:
    out = state.with_name("token.jwt")
    result = kluis("agency", "status", "token", str(state), "--key", str(key), "--out", str(out))
    assert result.exit_code == 0, result.output
    token = verify_status_list_token(out.read_text(), [_public(key)], uri=URI, now=int(time.time()))
    return token.statuses[index]


def _refused(result: Result, code: str, exit_code: int) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.stderr.startswith(f"Error [{code}]: ") and result.stderr.count("\n") == 1
    assert result.stdout == ""


# --- init and allocate ---------------------------------------------------------------------------


def test_init_writes_an_empty_list(state: Path) -> None:
    status_list = parse_status_list_state(state.read_bytes())
    assert (status_list.uri, status_list.bits, status_list.size) == (URI, 2, MIN_LIST_SIZE)
    assert status_list.allocated == frozenset()


def test_init_with_one_bit_and_a_larger_size(kluis: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "one-bit.json"
    size = 2 * MIN_LIST_SIZE
    result = kluis(
        "agency", "status", "init", "--uri", URI, "--out", str(out), "--bits", "1",
        "--size", str(size),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    status_list = parse_status_list_state(out.read_bytes())
    assert (status_list.bits, status_list.size) == (1, size)


def test_init_refuses_to_overwrite_a_list(kluis: Invoke, state: Path) -> None:
    before = state.read_bytes()
    result = kluis("agency", "status", "init", "--uri", "https://x.example", "--out", str(state))
    _refused(result, "vault.file_exists", 5)
    assert state.read_bytes() == before


def test_init_refuses_a_list_small_enough_to_leak_counts(kluis: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "small.json"
    result = kluis("agency", "status", "init", "--uri", URI, "--out", str(out), "--size", "1024")
    _refused(result, "status.bad_parameters", 3)
    assert not out.exists()


def test_init_refuses_other_bit_widths(kluis: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "four.json"
    result = kluis("agency", "status", "init", "--uri", URI, "--out", str(out), "--bits", "4")
    assert result.exit_code == 2 and not out.exists()


def test_allocate_hands_out_distinct_places_and_keeps_them(kluis: Invoke, state: Path) -> None:
    indices = [_allocate(kluis, state) for _ in range(5)]
    assert len(set(indices)) == 5
    status_list = parse_status_list_state(state.read_bytes())
    assert status_list.allocated == frozenset(indices)
    assert all(status_list.status(i) == StatusValue.VALID for i in indices)


# --- changes, as a relying party sees them -------------------------------------------------------


def test_revoked_reads_invalid_in_the_published_token(
    kluis: Invoke, state: Path, key: Path
) -> None:
    revoked, kept = _allocate(kluis, state), _allocate(kluis, state)
    result = _do(kluis, "revoke", state, revoked)
    assert result.exit_code == 0 and "revoked (INVALID)" in result.stdout
    assert _token_value(kluis, state, key, revoked) == StatusValue.INVALID
    assert _token_value(kluis, state, key, kept) == StatusValue.VALID


def test_suspend_then_reinstate(kluis: Invoke, state: Path, key: Path) -> None:
    index = _allocate(kluis, state)
    assert _do(kluis, "suspend", state, index).exit_code == 0
    assert _token_value(kluis, state, key, index) == StatusValue.SUSPENDED
    result = _do(kluis, "reinstate", state, index)
    assert result.exit_code == 0 and "valid (VALID)" in result.stdout
    assert _token_value(kluis, state, key, index) == StatusValue.VALID


def test_token_carries_the_ttl_and_replaces_the_last_one(
    kluis: Invoke, state: Path, key: Path
) -> None:
    out = state.with_name("token.jwt")
    out.write_text("yesterday's token")
    result = kluis(
        "agency", "status", "token", str(state), "--key", str(key), "--out", str(out),
        "--ttl", "600",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert URI in result.stdout
    token = verify_status_list_token(out.read_text(), [_public(key)], uri=URI, now=int(time.time()))
    assert token.ttl == 600


# --- refused changes leave the file as it was ----------------------------------------------------


def _unchanged(result: Result, state: Path, before: bytes, code: str, exit_code: int) -> None:
    _refused(result, code, exit_code)
    assert state.read_bytes() == before


def test_reinstating_a_revoked_credential_is_refused(kluis: Invoke, state: Path) -> None:
    index = _allocate(kluis, state)
    assert _do(kluis, "revoke", state, index).exit_code == 0
    before = state.read_bytes()
    for action in ("reinstate", "suspend", "revoke"):
        _unchanged(_do(kluis, action, state, index), state, before, "status.already_revoked", 5)


def test_reinstating_a_valid_credential_is_refused(kluis: Invoke, state: Path) -> None:
    index = _allocate(kluis, state)
    before = state.read_bytes()
    _unchanged(_do(kluis, "reinstate", state, index), state, before, "status.bad_transition", 5)


def test_suspending_on_a_one_bit_list_is_refused(kluis: Invoke, tmp_path: Path) -> None:
    state = tmp_path / "one-bit.json"
    kluis("agency", "status", "init", "--uri", URI, "--out", str(state), "--bits", "1")
    index = _allocate(kluis, state)
    before = state.read_bytes()
    _unchanged(_do(kluis, "suspend", state, index), state, before, "status.bad_transition", 5)


@pytest.mark.parametrize("where", ["never_handed_out", "beyond_the_end"])
def test_index_not_handed_out_is_refused(kluis: Invoke, state: Path, where: str) -> None:
    taken = _allocate(kluis, state)
    index = (taken + 1) % MIN_LIST_SIZE if where == "never_handed_out" else MIN_LIST_SIZE + 5
    before = state.read_bytes()
    for action in ("revoke", "suspend", "reinstate"):
        _unchanged(_do(kluis, action, state, index), state, before, "status.not_allocated", 4)


def test_negative_index_is_a_usage_error(kluis: Invoke, state: Path) -> None:
    before = state.read_bytes()
    assert _do(kluis, "revoke", state, -1).exit_code == 2
    assert state.read_bytes() == before


def _truncated(text: str) -> str:
    return text[: len(text) // 2]


def _extra_member(text: str) -> str:
    return json.dumps({**json.loads(text), "note": "x"})


def _bad_lst(text: str) -> str:
    state = json.loads(text)
    state["status_list"]["lst"] = state["status_list"]["lst"][:-6]
    return json.dumps(state)


def _status_without_allocation(text: str) -> str:
    """A revoked index whose allocation bit is cleared: it could be handed out again."""
    state = json.loads(text)
    state["allocated"] = format_status_list(StatusArray(1, MIN_LIST_SIZE))
    return json.dumps(state)


@pytest.mark.parametrize(
    "damage", [_truncated, _extra_member, _bad_lst, _status_without_allocation]
)
@pytest.mark.parametrize("action", ["allocate", "revoke", "show"])
def test_damaged_state_file_is_refused_and_kept(
    kluis: Invoke, state: Path, damage: Callable[[str], str], action: str
) -> None:
    index = _allocate(kluis, state)
    assert _do(kluis, "revoke", state, index).exit_code == 0
    state.write_text(damage(state.read_text()))
    before = state.read_bytes()
    args = [str(state)] if action != "revoke" else [str(state), "--index", str(index)]
    _unchanged(kluis("agency", "status", action, *args), state, before, "status.bad_state", 3)


def test_missing_state_file_is_refused(kluis: Invoke, tmp_path: Path) -> None:
    _refused(kluis("agency", "status", "allocate", str(tmp_path / "none.json")), "vault.no_file", 4)


def test_a_folder_as_state_file_is_refused(kluis: Invoke, tmp_path: Path) -> None:
    _refused(kluis("agency", "status", "allocate", str(tmp_path)), "vault.not_a_file", 3)


def test_token_with_a_public_key_is_refused(kluis: Invoke, state: Path, key: Path) -> None:
    public = key.with_name("issuer.pub.jwk")
    public.write_text(json.dumps(_public(key).export_public(as_dict=True)))
    out = state.with_name("token.jwt")
    result = kluis("agency", "status", "token", str(state), "--key", str(public), "--out", str(out))
    _refused(result, "jws.bad_key", 3)
    assert not out.exists()


# --- show ----------------------------------------------------------------------------------------


def test_show_counts_each_status(kluis: Invoke, state: Path) -> None:
    indices = [_allocate(kluis, state) for _ in range(4)]
    _do(kluis, "revoke", state, indices[0])
    _do(kluis, "suspend", state, indices[1])
    result = kluis("agency", "status", "show", str(state), "--json")
    assert json.loads(result.stdout) == {
        "uri": URI,
        "bits": 2,
        "size": MIN_LIST_SIZE,
        "allocated": 4,
        "free": MIN_LIST_SIZE - 4,
        "valid": 2,
        "suspended": 1,
        "revoked": 1,
    }
    text = kluis("agency", "status", "show", str(state), lang="nl").stdout
    assert "Geldig 2, geschorst 1, ingetrokken 1." in text


def test_show_one_credential(kluis: Invoke, state: Path) -> None:
    index = _allocate(kluis, state)
    _do(kluis, "suspend", state, index)
    result = kluis("agency", "status", "show", str(state), "--index", str(index), "--json")
    assert json.loads(result.stdout) == {"uri": URI, "index": index, "status": "SUSPENDED"}
    dutch = kluis("agency", "status", "show", str(state), "--index", str(index), lang="nl")
    assert f"Bewijs {index} van {URI} is geschorst (SUSPENDED)." in dutch.stdout
    other = (index + 1) % MIN_LIST_SIZE
    _refused(
        kluis("agency", "status", "show", str(state), "--index", str(other)),
        "status.not_allocated",
        4,
    )


# --- the installed command, as an agency runs it -------------------------------------------------


def test_status_list_life_as_real_processes(kluis_process: Run, tmp_path: Path) -> None:
    def ok(*args: str) -> subprocess.CompletedProcess[bytes]:
        result = kluis_process(*args)
        assert result.returncode == 0, result.stderr.decode()
        return result

    key, state, out = tmp_path / "issuer.jwk", tmp_path / "status.json", tmp_path / "token.jwt"
    ok("sdjwt", "keygen", "--alg", "EdDSA", "--out", str(key))
    ok("agency", "status", "init", "--uri", URI, "--out", str(state))
    claim = json.loads(ok("agency", "status", "allocate", str(state)).stdout)
    index = claim["status_list"]["idx"]
    ok("agency", "status", "revoke", str(state), "--index", str(index))
    ok("agency", "status", "token", str(state), "--key", str(key), "--out", str(out))
    public = JWK(**json.loads(key.with_name("issuer.pub.jwk").read_text()))
    token = verify_status_list_token(out.read_text(), [public], uri=URI, now=int(time.time()))
    assert token.statuses[index] == StatusValue.INVALID
    before = state.read_bytes()
    refused = kluis_process("agency", "status", "reinstate", str(state), "--index", str(index))
    assert refused.returncode == 5
    assert refused.stderr.decode().startswith("Error [status.already_revoked]: ")
    assert state.read_bytes() == before
