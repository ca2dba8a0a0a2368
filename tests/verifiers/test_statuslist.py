"""Token Status List: the issuer's list, the statuslist+jwt token and the relying party's
checker, against the draft's token and referenced-token examples and every tamper of §8.3."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from vault.errors import KluisError
from verifiers.status_array import (
    BadList,
    BadParameters,
    IndexOutOfRange,
    StatusArray,
    StatusValue,
    encode_lst,
)
from verifiers.status_token import (
    BadStatusSignature,
    BadStatusToken,
    ExpiredList,
    WrongSubject,
    issue_status_list_token,
    key_id,
    verify_status_list_token,
)
from verifiers.statuslist import (
    MIN_LIST_SIZE,
    AlreadyRevoked,
    BadReference,
    BadTransition,
    FetchFailed,
    ListFull,
    NotAllocated,
    Revoked,
    StatusList,
    StatusListChecker,
    Suspended,
    UnknownStatus,
)

URI = "https://issuer.example/statuslists/7"
NOW = 1_900_000_000
KEY = JWK.generate(kty="EC", crv="P-256", kid="list-key-1")
PUBLIC = JWK.from_json(KEY.export_public())
OTHER = JWK.generate(kty="EC", crv="P-256", kid="list-key-1")


def _claim(index: int, uri: str = URI) -> dict[str, Any]:
    return {"status_list": {"idx": index, "uri": uri}}


def _sign(header: dict[str, Any], payload: dict[str, Any] | bytes, key: JWK = KEY) -> str:
    """A JWS with exactly the header and payload given: for tokens our issuer would not make."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    jws = JWS(body)
    jws.add_signature(key, alg=header.get("alg", "ES256"), protected=json.dumps(header))
    return str(jws.serialize(compact=True))


def _header(**changes: Any) -> dict[str, Any]:
    return {"alg": "ES256", "kid": "list-key-1", "typ": "statuslist+jwt", **changes}


def _payload(values: dict[int, int] | None = None, bits: int = 2, **changes: Any) -> dict[str, Any]:
    array = StatusArray(bits, 64)
    for index, value in (values or {}).items():
        array[index] = value
    claims = {"sub": URI, "iat": NOW - 10, "exp": NOW + 600, "ttl": 300}
    claims["status_list"] = {"bits": bits, "lst": encode_lst(array)}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _checker(token: str | bytes, calls: list[str] | None = None) -> StatusListChecker:
    def fetch(uri: str) -> bytes:
        if calls is not None:
            calls.append(uri)
        return token if isinstance(token, bytes) else token.encode()

    return StatusListChecker(fetch, [PUBLIC])


# --- the draft's examples ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def draft_token(vectors: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (vectors / "status-list/status_list_token_jwt.json").read_text()
    )
    return data


def test_draft_token_verifies_with_its_key(draft_token: dict[str, Any]) -> None:
    key = JWK(**draft_token["verification_public_jwk"])
    payload = draft_token["payload"]
    token = verify_status_list_token(
        draft_token["jwt"], [key], uri=payload["sub"], now=payload["iat"] + 1
    )
    statuses = draft_token["decoded_status_list"]["statuses"]
    assert [token.statuses[i] for i in range(len(statuses))] == statuses
    assert (token.issued_at, token.expires_at, token.ttl) == (
        payload["iat"],
        payload["exp"],
        payload["ttl"],
    )
    assert token.issuer == "https://example.com"


def test_referenced_token_resolves_to_invalid(vectors: Path, draft_token: dict[str, Any]) -> None:
    referenced = json.loads((vectors / "status-list/referenced_token_examples.json").read_text())
    status = referenced["sd_jwt_issuer_signed_jwt_payload"]["status"]
    assert status == referenced["jwt_example_decoded"]["payload"]["status"]
    key = JWK(**draft_token["verification_public_jwk"])
    checker = StatusListChecker(lambda uri: draft_token["jwt"].encode(), [key])
    now = draft_token["payload"]["iat"] + 1
    assert referenced["expected_status_value_derived"] == StatusValue.INVALID
    with pytest.raises(Revoked):
        checker.check(status, now=now)
    assert checker.check(_claim(1, status["status_list"]["uri"]), now=now) is StatusValue.VALID


# --- the issuer's list ---------------------------------------------------------------------------


def test_allocation_is_random_unique_and_never_reused() -> None:
    status_list = StatusList(URI)
    indices = [status_list.allocate() for _ in range(2000)]
    assert len(set(indices)) == 2000
    assert all(0 <= i < MIN_LIST_SIZE for i in indices)
    assert indices != sorted(indices)  # not handed out in order
    status_list.revoke(indices[0])
    assert indices[0] not in {status_list.allocate() for _ in range(2000)}


def test_a_full_list_refuses_to_allocate() -> None:
    size = MIN_LIST_SIZE
    status_list = StatusList.restore(URI, StatusArray(2, size), range(1, size))
    assert status_list.allocate() == 0
    with pytest.raises(ListFull):
        status_list.allocate()


def test_small_or_odd_lists_are_refused() -> None:
    with pytest.raises(BadParameters):
        StatusList(URI, size=1024)  # small lists leak how many credentials exist
    with pytest.raises(BadParameters):
        StatusList(URI, bits=3)
    with pytest.raises(BadParameters):
        StatusList("")


def test_restore_refuses_inconsistent_state() -> None:
    array = StatusArray(2, MIN_LIST_SIZE)
    array[5] = StatusValue.INVALID
    with pytest.raises(BadParameters):
        StatusList.restore(URI, array, [4])
    with pytest.raises(BadParameters):
        StatusList.restore(URI, array, [5, MIN_LIST_SIZE])
    restored = StatusList.restore(URI, array, [5])
    assert restored.status(5) == StatusValue.INVALID and restored.allocated == {5}


def test_status_transitions() -> None:
    status_list = StatusList(URI)
    index = status_list.allocate()
    assert status_list.status(index) == StatusValue.VALID
    assert status_list.reference(index) == _claim(index)
    status_list.suspend(index)
    assert status_list.status(index) == StatusValue.SUSPENDED
    with pytest.raises(BadTransition):
        status_list.suspend(index)
    status_list.reinstate(index)
    assert status_list.status(index) == StatusValue.VALID
    with pytest.raises(BadTransition):
        status_list.reinstate(index)
    status_list.suspend(index)
    status_list.revoke(index)  # a suspended credential can be revoked
    assert status_list.status(index) == StatusValue.INVALID


@pytest.mark.parametrize("change", ["revoke", "suspend", "reinstate"])
def test_revoked_is_final(change: str) -> None:
    status_list = StatusList(URI)
    index = status_list.allocate()
    status_list.revoke(index)
    with pytest.raises(AlreadyRevoked):
        getattr(status_list, change)(index)
    assert status_list.status(index) == StatusValue.INVALID


@pytest.mark.parametrize("change", ["revoke", "suspend", "reinstate", "status", "reference"])
def test_unallocated_index_is_not_found(change: str) -> None:
    status_list = StatusList(URI)
    with pytest.raises(NotAllocated):
        getattr(status_list, change)(42)


def test_a_one_bit_list_cannot_suspend() -> None:
    status_list = StatusList(URI, bits=1)
    index = status_list.allocate()
    with pytest.raises(BadTransition):
        status_list.suspend(index)
    status_list.revoke(index)
    assert status_list.status(index) == StatusValue.INVALID


# --- issuing and verifying the token -------------------------------------------------------------


@pytest.mark.parametrize("kty", ["EC", "OKP"])
def test_issued_token_round_trips(kty: str) -> None:
    key = (
        JWK.generate(kty="EC", crv="P-256")
        if kty == "EC"
        else JWK.generate(kty="OKP", crv="Ed25519")
    )
    status_list = StatusList(URI)
    revoked, kept = status_list.allocate(), status_list.allocate()
    status_list.revoke(revoked)
    jwt = status_list.issue_token(
        key, now=NOW, ttl=60, lifetime=3600, issuer="https://issuer.example"
    )
    public = JWK.from_json(key.export_public())
    token = verify_status_list_token(jwt, [public], uri=URI, now=NOW + 1)
    assert token.statuses == status_list.statuses
    assert (token.issued_at, token.expires_at, token.ttl, token.issuer) == (
        NOW,
        NOW + 3600,
        60,
        "https://issuer.example",
    )
    header = json.loads(base64.urlsafe_b64decode(jwt.split(".")[0] + "=="))
    assert header["typ"] == "statuslist+jwt" and header["kid"] == key_id(key)
    checker = StatusListChecker(lambda uri: jwt.encode(), [public])
    assert checker.check(_claim(kept), now=NOW + 1) is StatusValue.VALID
    with pytest.raises(Revoked):
        checker.check(_claim(revoked), now=NOW + 1)


@pytest.mark.parametrize(
    "changes",
    [{"ttl": 0}, {"lifetime": -1}, {"ttl": True}],
)
def test_issuing_with_bad_times_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(BadParameters):
        issue_status_list_token(URI, StatusArray(1, 8), KEY, now=NOW, **changes)


def test_issuing_with_a_public_or_rsa_key_is_refused() -> None:
    for key in (PUBLIC, JWK.generate(kty="RSA", size=2048), JWK.generate(kty="oct", size=256)):
        with pytest.raises(BadParameters):
            issue_status_list_token(URI, StatusArray(1, 8), key, now=NOW)


# --- the relying party's checks, in §8.3 order ---------------------------------------------------


def test_valid_suspended_and_application_specific_values() -> None:
    checker = _checker(_sign(_header(), _payload({1: 1, 2: 2, 3: 3})))
    assert checker.check(_claim(0), now=NOW) is StatusValue.VALID
    with pytest.raises(Revoked):
        checker.check(_claim(1), now=NOW)
    with pytest.raises(Suspended):
        checker.check(_claim(2), now=NOW)
    with pytest.raises(UnknownStatus):
        checker.check(_claim(3), now=NOW)


def test_check_status_is_check_without_a_result() -> None:
    checker = _checker(_sign(_header(), _payload({1: 1})))
    assert checker.check_status(_claim(0), now=NOW) is None
    with pytest.raises(Revoked):
        checker.check_status(_claim(1), now=NOW)


@pytest.mark.parametrize(
    "typ", [None, "JWT", "statuslist+cwt", "application/statuslist+jwt", "STATUSLIST+JWT"]
)
def test_bad_typ_is_refused(typ: str | None) -> None:
    header = {k: v for k, v in _header(typ=typ).items() if v is not None}
    with pytest.raises(BadStatusToken):
        _checker(_sign(header, _payload())).check(_claim(0), now=NOW)


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES384"])
def test_algorithms_off_the_allow_list_are_refused(alg: str) -> None:
    body = _sign(_header(), _payload()).split(".")[1]
    header = base64.urlsafe_b64encode(json.dumps(_header(alg=alg)).encode()).rstrip(b"=").decode()
    with pytest.raises(BadStatusToken):
        _checker(f"{header}.{body}.").check(_claim(0), now=NOW)


def test_crit_header_is_refused() -> None:
    token = _sign(_header(crit=["b64"], b64=True), _payload())
    with pytest.raises(BadStatusToken):
        _checker(token).check(_claim(0), now=NOW)


def test_bad_signature_is_refused() -> None:
    with pytest.raises(BadStatusSignature):
        _checker(_sign(_header(), _payload(), key=OTHER)).check(_claim(0), now=NOW)


def test_tampered_payload_is_refused() -> None:
    head, _, sig = _sign(_header(), _payload({0: 1})).split(".")
    other_body = _sign(_header(), _payload()).split(".")[1]
    with pytest.raises(BadStatusSignature):
        _checker(f"{head}.{other_body}.{sig}").check(_claim(0), now=NOW)


def test_unknown_kid_is_refused() -> None:
    with pytest.raises(BadStatusSignature):
        _checker(_sign(_header(kid="another"), _payload())).check(_claim(0), now=NOW)


def test_token_without_kid_is_tried_with_each_key() -> None:
    header = {k: v for k, v in _header().items() if k != "kid"}
    checker = StatusListChecker(lambda uri: _sign(header, _payload()).encode(), [OTHER, PUBLIC])
    assert checker.check(_claim(0), now=NOW) is StatusValue.VALID


def test_sub_mismatch_is_refused() -> None:
    token = _sign(_header(), _payload(sub="https://issuer.example/statuslists/8"))
    with pytest.raises(WrongSubject):
        _checker(token).check(_claim(0), now=NOW)


@pytest.mark.parametrize("exp", [NOW, NOW - 1])
def test_expired_list_token_is_refused(exp: int) -> None:
    with pytest.raises(ExpiredList):
        _checker(_sign(_header(), _payload(exp=exp))).check(_claim(0), now=NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": None},
        {"iat": None},
        {"status_list": None},
        {"iat": "1900000000"},
        {"exp": 1.5},
        {"ttl": 0},
        {"ttl": -5},
        {"sub": 7},
    ],
)
def test_missing_or_mistyped_claims_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(BadStatusToken):
        _checker(_sign(_header(), _payload(**changes))).check(_claim(0), now=NOW)


def test_index_out_of_bounds_is_refused() -> None:
    checker = _checker(_sign(_header(), _payload()))  # 64 entries
    assert checker.check(_claim(63), now=NOW) is StatusValue.VALID
    with pytest.raises(IndexOutOfRange):
        checker.check(_claim(64), now=NOW)


@pytest.mark.parametrize(
    "status_list",
    [
        {"bits": 2, "lst": "eNrbuRgAAhcBXQ"[:-4]},  # truncated
        {"bits": 2, "lst": "eNrbuRgAAhcCXQ"},  # garbled
        {"bits": 3, "lst": "eNrbuRgAAhcBXQ"},  # bits not in {1,2,4,8}
        {"bits": 2},
        "eNrbuRgAAhcBXQ",
    ],
)
def test_bad_list_in_a_signed_token_is_refused(status_list: object) -> None:
    token = _sign(_header(), _payload(status_list=status_list))
    with pytest.raises(BadList):
        _checker(token).check(_claim(0), now=NOW)


@pytest.mark.parametrize(
    "claim",
    [
        {},
        {"status_list": "x"},
        {"status_list": {"idx": -1, "uri": URI}},
        {"status_list": {"idx": True, "uri": URI}},
        {"status_list": {"idx": "0", "uri": URI}},
        {"status_list": {"idx": 0}},
        {"status_list": {"idx": 0, "uri": ""}},
    ],
)
def test_malformed_status_claim_is_refused_before_fetching(claim: dict[str, Any]) -> None:
    calls: list[str] = []
    with pytest.raises(BadReference):
        _checker(_sign(_header(), _payload()), calls).check(claim, now=NOW)
    assert calls == []


def test_fetch_failure_is_unavailable() -> None:
    def broken(uri: str) -> bytes:
        raise OSError("connection refused")

    with pytest.raises(FetchFailed):
        StatusListChecker(broken, [PUBLIC]).check(_claim(0), now=NOW)


@pytest.mark.parametrize("body", [b"", b"<html>not found</html>", b"\xff\xfe", b"a.b.c"])
def test_garbage_from_the_fetcher_is_a_bad_token(body: bytes) -> None:
    with pytest.raises(BadStatusToken):
        _checker(body).check(_claim(0), now=NOW)


def test_checks_run_in_the_order_of_the_draft() -> None:
    # bad typ and bad signature: typ is judged first
    with pytest.raises(BadStatusToken):
        _checker(_sign(_header(typ="JWT"), _payload(), key=OTHER)).check(_claim(0), now=NOW)
    # bad signature and wrong sub: the signature first
    with pytest.raises(BadStatusSignature):
        _checker(_sign(_header(), _payload(sub="x"), key=OTHER)).check(_claim(0), now=NOW)
    # wrong sub and expired: sub first
    with pytest.raises(WrongSubject):
        _checker(_sign(_header(), _payload(sub="x", exp=1))).check(_claim(0), now=NOW)
    # expired and a broken list: expiry first
    with pytest.raises(ExpiredList):
        _checker(_sign(_header(), _payload(exp=1, status_list={"bits": 3}))).check(
            _claim(0), now=NOW
        )


# --- caching -----------------------------------------------------------------------------------


def _counting(tokens: list[str]) -> tuple[Callable[[str], bytes], list[str]]:
    calls: list[str] = []

    def fetch(uri: str) -> bytes:
        calls.append(uri)
        return tokens[-1].encode()

    return fetch, calls


def test_ttl_bounds_the_cache_and_a_new_revocation_is_seen_after_it() -> None:
    tokens = [_sign(_header(), _payload(ttl=300))]
    fetch, calls = _counting(tokens)
    checker = StatusListChecker(fetch, [PUBLIC])
    assert checker.check(_claim(0), now=NOW) is StatusValue.VALID
    tokens.append(_sign(_header(), _payload({0: 1}, ttl=300)))
    assert checker.check(_claim(0), now=NOW + 299) is StatusValue.VALID  # cached
    assert len(calls) == 1
    with pytest.raises(Revoked):
        checker.check(_claim(0), now=NOW + 300)
    assert len(calls) == 2


def test_exp_bounds_the_cache_even_when_ttl_is_longer() -> None:
    fetch, calls = _counting([_sign(_header(), _payload(exp=NOW + 100, ttl=10_000))])
    checker = StatusListChecker(fetch, [PUBLIC])
    checker.check(_claim(0), now=NOW)
    checker.check(_claim(0), now=NOW + 99)
    assert len(calls) == 1
    with pytest.raises(ExpiredList):
        checker.check(_claim(0), now=NOW + 100)


def test_a_token_without_ttl_is_not_cached() -> None:
    fetch, calls = _counting([_sign(_header(), _payload(ttl=None))])
    checker = StatusListChecker(fetch, [PUBLIC])
    checker.check(_claim(0), now=NOW)
    checker.check(_claim(1), now=NOW)
    assert len(calls) == 2


def test_a_shared_cache_serves_several_checkers() -> None:
    fetch, calls = _counting([_sign(_header(), _payload())])
    cache: dict[str, Any] = {}
    StatusListChecker(fetch, [PUBLIC], cache=cache).check(_claim(0), now=NOW)
    StatusListChecker(fetch, [PUBLIC], cache=cache).check(_claim(1), now=NOW)
    assert len(calls) == 1


# --- hostile input -------------------------------------------------------------------------------

_TOKEN = _sign(_header(), _payload({5: 1}))


@settings(max_examples=300)
@given(st.integers(0, len(_TOKEN) - 1), st.sampled_from("AQgw_-x.="))
def test_any_changed_character_of_the_token_is_rejected(at: int, char: str) -> None:
    if _TOKEN[at] == char:
        return
    tampered = _TOKEN[:at] + char + _TOKEN[at + 1 :]
    with pytest.raises(KluisError):
        verify_status_list_token(tampered, [PUBLIC], uri=URI, now=NOW)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_verify_raises_only_kluis_errors(token: str | bytes) -> None:
    try:
        verify_status_list_token(token, [PUBLIC], uri=URI, now=NOW)
    except KluisError:
        pass


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=5), c),
        max_leaves=8,
    )
)
def test_check_of_random_claims_raises_only_kluis_errors(claim: Any) -> None:
    try:
        _checker(_TOKEN).check(
            claim if isinstance(claim, dict) else {"status_list": claim}, now=NOW
        )
    except KluisError:
        pass
