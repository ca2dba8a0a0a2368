"""``kluis sdjwt``: keygen, issue, present, verify and decode, in-process and as one real
subprocess pipeline (keygen -> issue -> present -> verify)."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from verifiers.holder import parse_issued
from verifiers.jws import parse_jwk, parse_private_jwk

Invoke = Callable[..., Result]
Run = Callable[..., subprocess.CompletedProcess[bytes]]
CLAIMS = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "address": {"street_address": "Heidestraat 17", "locality": "Utrecht"},
}


@pytest.fixture
def keys(kluis: Invoke, tmp_path: Path) -> Path:
    for name, alg in (("issuer", "ES256"), ("holder", "EdDSA")):
        result = kluis("sdjwt", "keygen", "--alg", alg, "--out", str(tmp_path / f"{name}.jwk"))
        assert result.exit_code == 0, result.output
    (tmp_path / "claims.json").write_text(json.dumps(CLAIMS))
    return tmp_path


def _issue(kluis: Invoke, keys: Path, *extra: str) -> Path:
    result = kluis(
        "sdjwt",
        "issue",
        "--key",
        str(keys / "issuer.jwk"),
        "--iss",
        "https://issuer.example",
        "--vct",
        "urn:kluis:pid:1",
        "--claims",
        str(keys / "claims.json"),
        "--holder-key",
        str(keys / "holder.pub.jwk"),
        *extra,
    )
    assert result.exit_code == 0, result.output
    path = keys / "issued.txt"
    path.write_text(result.stdout)
    return path


def test_keygen_writes_a_private_and_a_public_key(keys: Path) -> None:
    private = keys / "issuer.jwk"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = parse_private_jwk(json.loads(private.read_text()))
    public = parse_jwk(json.loads((keys / "issuer.pub.jwk").read_text()))
    assert key.public.public_bytes() == public.public_bytes() and public.kid == key.kid
    assert "d" not in json.loads((keys / "issuer.pub.jwk").read_text())
    assert parse_private_jwk(json.loads((keys / "holder.jwk").read_text())).alg.value == "EdDSA"


def test_keygen_never_overwrites(kluis: Invoke, keys: Path) -> None:
    result = kluis("sdjwt", "keygen", "--out", str(keys / "issuer.jwk"))
    assert result.exit_code == 5 and "vault.file_exists" in result.stderr


def test_issue_makes_every_top_level_claim_disclosable_unless_plain(
    kluis: Invoke, keys: Path
) -> None:
    held = parse_issued(_issue(kluis, keys, "--plain", "family_name").read_text().strip())
    assert {p[0] for p in held.disclosable_paths()} == {"given_name", "address"}
    assert held.claims["family_name"] == "Mustermann" and held.holder_key is not None


def test_issue_refuses_an_unknown_plain_claim(kluis: Invoke, keys: Path) -> None:
    result = kluis(
        "sdjwt",
        "issue",
        "--key",
        str(keys / "issuer.jwk"),
        "--iss",
        "https://i.example",
        "--vct",
        "urn:x",
        "--claims",
        str(keys / "claims.json"),
        "--plain",
        "middle_name",
    )
    assert result.exit_code == 3 and "sdjwt.no_such_claim" in result.stderr


def test_present_and_verify_with_key_binding(kluis: Invoke, keys: Path) -> None:
    issued = _issue(kluis, keys)
    shown = kluis(
        "sdjwt",
        "present",
        str(issued),
        "--holder-key",
        str(keys / "holder.jwk"),
        "--disclose",
        "given_name",
        "--disclose",
        '["address", "locality"]',
        "--nonce",
        "n-1",
        "--aud",
        "x509_hash:abc",
    )
    assert shown.exit_code == 0, shown.output
    (keys / "shown.txt").write_text(shown.stdout)
    verified = kluis(
        "sdjwt",
        "verify",
        str(keys / "shown.txt"),
        "--issuer-key",
        str(keys / "issuer.pub.jwk"),
        "--nonce",
        "n-1",
        "--aud",
        "x509_hash:abc",
        "--json",
    )
    assert verified.exit_code == 0, verified.output
    out = json.loads(verified.stdout)
    assert out["key_bound"] is True and out["claims"]["given_name"] == "Erika"
    assert out["claims"]["address"] == {"street_address": "Heidestraat 17", "locality": "Utrecht"}
    assert "family_name" not in out["claims"]
    wrong = kluis(
        "sdjwt",
        "verify",
        str(keys / "shown.txt"),
        "--issuer-key",
        str(keys / "issuer.pub.jwk"),
        "--nonce",
        "n-2",
        "--aud",
        "x509_hash:abc",
    )
    assert wrong.exit_code == 7 and "sdjwt.kb_wrong_nonce" in wrong.stderr


def test_verify_from_standard_input_and_in_dutch(kluis: Invoke, keys: Path) -> None:
    issued = _issue(kluis, keys).read_text()
    result = kluis(
        "sdjwt",
        "verify",
        "-",
        "--issuer-key",
        str(keys / "issuer.pub.jwk"),
        input=issued,
        lang="nl",
    )
    assert result.exit_code == 0 and "GECONTROLEERD" in result.stdout


def test_verify_with_another_issuer_key_fails_with_the_code(kluis: Invoke, keys: Path) -> None:
    issued = _issue(kluis, keys)
    result = kluis("sdjwt", "verify", str(issued), "--issuer-key", str(keys / "holder.pub.jwk"))
    assert result.exit_code == 7 and "jws.key_alg_mismatch" in result.stderr
    kluis("sdjwt", "keygen", "--out", str(keys / "other.jwk"))
    result = kluis("sdjwt", "verify", str(issued), "--issuer-key", str(keys / "other.pub.jwk"))
    assert result.exit_code == 7 and "sdjwt.bad_signature" in result.stderr


def test_verify_without_nonce_refuses_a_kb_jwt(kluis: Invoke, keys: Path) -> None:
    issued = _issue(kluis, keys)
    shown = kluis(
        "sdjwt",
        "present",
        str(issued),
        "--holder-key",
        str(keys / "holder.jwk"),
        "--nonce",
        "n",
        "--aud",
        "a",
    )
    (keys / "shown.txt").write_text(shown.stdout)
    result = kluis(
        "sdjwt", "verify", str(keys / "shown.txt"), "--issuer-key", str(keys / "issuer.pub.jwk")
    )
    assert result.exit_code == 7 and "sdjwt.kb_unexpected" in result.stderr


def test_nonce_without_aud_is_a_usage_error(kluis: Invoke, keys: Path) -> None:
    issued = _issue(kluis, keys)
    result = kluis(
        "sdjwt", "verify", str(issued), "--issuer-key", str(keys / "issuer.pub.jwk"), "--nonce", "n"
    )
    assert result.exit_code == 2


def test_decode_is_marked_unverified(kluis: Invoke, keys: Path) -> None:
    issued = _issue(kluis, keys)
    human = kluis("sdjwt", "decode", str(issued))
    assert human.exit_code == 0 and human.stdout.startswith("UNVERIFIED")
    dutch = kluis("sdjwt", "decode", str(issued), lang="nl")
    assert dutch.stdout.startswith("NIET GECONTROLEERD")
    data = json.loads(kluis("sdjwt", "decode", str(issued), "--json").stdout)
    assert data["verified"] is False and data["header"]["typ"] == "dc+sd-jwt"
    assert {d["name"] for d in data["disclosures"]} == set(CLAIMS)


@pytest.mark.parametrize(
    ("content", "code", "exit_code"),
    [("not a token", "sdjwt.malformed", 3), ("a.b.c~", "jws.malformed", 3)],
)
def test_bad_tokens(kluis: Invoke, keys: Path, content: str, code: str, exit_code: int) -> None:
    (keys / "bad.txt").write_text(content)
    result = kluis("sdjwt", "decode", str(keys / "bad.txt"))
    assert result.exit_code == exit_code and code in result.stderr


def test_missing_files(kluis: Invoke, keys: Path) -> None:
    result = kluis("sdjwt", "decode", str(keys / "nothing.txt"))
    assert result.exit_code == 4 and "vault.no_file" in result.stderr
    (keys / "broken.jwk").write_text("{")
    result = kluis("sdjwt", "verify", "-", "--issuer-key", str(keys / "broken.jwk"), input="x~")
    assert result.exit_code == 3 and "jws.bad_key" in result.stderr


def test_real_process_pipeline(kluis_process: Run, tmp_path: Path) -> None:
    def ok(*args: str, stdin: bytes | None = None) -> bytes:
        result = kluis_process("sdjwt", *args, input=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    ok("keygen", "--alg", "ES256", "--out", str(tmp_path / "issuer.jwk"))
    ok("keygen", "--alg", "EdDSA", "--out", str(tmp_path / "holder.jwk"))
    (tmp_path / "claims.json").write_text(json.dumps(CLAIMS))
    issued = ok(
        "issue",
        "--key",
        str(tmp_path / "issuer.jwk"),
        "--iss",
        "https://issuer.example",
        "--vct",
        "urn:kluis:pid:1",
        "--claims",
        str(tmp_path / "claims.json"),
        "--holder-key",
        str(tmp_path / "holder.pub.jwk"),
    )
    shown = ok(
        "present",
        "-",
        "--holder-key",
        str(tmp_path / "holder.jwk"),
        "--disclose",
        "family_name",
        "--nonce",
        "n-9",
        "--aud",
        "https://verifier.example",
        stdin=issued,
    )
    out = json.loads(
        ok(
            "verify",
            "-",
            "--issuer-key",
            str(tmp_path / "issuer.pub.jwk"),
            "--nonce",
            "n-9",
            "--aud",
            "https://verifier.example",
            "--json",
            stdin=shown,
        )
    )
    assert out["claims"]["family_name"] == "Mustermann" and "given_name" not in out["claims"]
    refused = kluis_process(
        "sdjwt", "verify", "-", "--issuer-key", str(tmp_path / "issuer.pub.jwk"), input=shown
    )
    assert refused.returncode == 7
    assert refused.stderr.decode().startswith("Error [sdjwt.kb_unexpected]: ")
