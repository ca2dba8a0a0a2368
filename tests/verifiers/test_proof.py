"""OpenID4VCI ``jwt`` key proofs: the spec's example verifies, our wallet's proofs verify, and
every broken rule is refused with its own code (each tamper named after what it breaks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import KluisError
from verifiers.jws import (
    Alg,
    SigningKey,
    b64url_decode,
    b64url_encode,
    format_jwk,
    format_private_jwk,
    generate_signing_key,
    sign_jws,
)
from verifiers.proof import MAX_PROOF_LENGTH, PROOF_TYP, verify_proof_jwt
from wallet.proof import make_proof_jwt

AUD = "https://issuer.kluis.example"
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def example(vectors: Path) -> dict[str, Any]:
    path = vectors / "openid4vci" / "jwt_proof_example.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _verify(jwt: str, **overrides: Any) -> Any:
    options: dict[str, Any] = {"audience": AUD, "nonce": "n-1", "now": NOW, "max_age": 300}
    options.update(overrides)
    return verify_proof_jwt(jwt, **options)


def _proof(
    key: SigningKey, *, header: dict[str, Any] | None = None, drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    head = {"typ": PROOF_TYP, "alg": key.alg.value, "jwk": format_jwk(key.public, with_kid=False)}
    head.update(header or {})
    body: dict[str, Any] = {"aud": AUD, "iat": NOW, "nonce": "n-1"}
    body.update(claims)
    for name in drop:
        head.pop(name, None)
        body.pop(name, None)
    return sign_jws(head, body, key)


def _code(jwt: str, **overrides: Any) -> str:
    with pytest.raises(KluisError) as caught:
        _verify(jwt, **overrides)
    return caught.value.code


@pytest.fixture(scope="module", params=[Alg.ES256, Alg.EDDSA])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return generate_signing_key(request.param)


# --- what must verify -----------------------------------------------------------------------


def test_spec_example_verifies_with_its_header_key(example: dict[str, Any]) -> None:
    # The example's iat is from 2023: a window reaching back to it, not a frozen clock.
    iat = example["iat"]
    key = verify_proof_jwt(
        example["jwt"], audience=example["expected_aud"], nonce=example["expected_nonce"],
        now=iat + 10, max_age=60,
    )
    assert format_jwk(key) == example["holder_public_jwk"]
    assert example["proofs"]["jwt"] == [example["jwt"]]


def test_spec_example_is_too_old_for_a_normal_window(example: dict[str, Any]) -> None:
    with pytest.raises(KluisError) as caught:
        verify_proof_jwt(example["jwt"], audience=example["expected_aud"],
                         nonce=example["expected_nonce"], now=NOW, max_age=300)
    assert caught.value.code == "proof.bad_iat"


def test_spec_example_for_another_issuer_is_refused(example: dict[str, Any]) -> None:
    assert _code(example["jwt"], now=example["iat"], nonce=example["expected_nonce"]) == (
        "proof.wrong_audience"
    )


def test_wallet_proof_round_trips(key: SigningKey) -> None:
    jwt = make_proof_jwt(key, audience=AUD, nonce="n-1", now=NOW)
    assert _verify(jwt).public_bytes() == key.public.public_bytes()
    header = json.loads(b64url_decode(jwt.split(".")[0]))
    assert set(header) == {"typ", "alg", "jwk"} and "d" not in header["jwk"]


def test_nonce_check_is_called_last_with_the_claimed_nonce(key: SigningKey) -> None:
    seen: list[str] = []
    _verify(_proof(key), nonce=seen.append)
    assert seen == ["n-1"]


def test_nonce_check_is_not_reached_by_a_bad_signature(key: SigningKey) -> None:
    other = generate_signing_key(key.alg)
    forged = _proof(other, header={"jwk": format_jwk(key.public, with_kid=False)})
    seen: list[str] = []
    assert _code(forged, nonce=seen.append) == "proof.bad_signature"
    assert seen == []


def test_iat_at_the_edges_of_the_window(key: SigningKey) -> None:
    _verify(_proof(key, iat=NOW - 300))
    _verify(_proof(key, iat=NOW + 30))


# --- one tamper, one code ---------------------------------------------------------------------


def test_missing_typ(key: SigningKey) -> None:
    assert _code(_proof(key, drop=("typ",))) == "proof.wrong_typ"


def test_plain_jwt_typ(key: SigningKey) -> None:
    assert _code(_proof(key, header={"typ": "JWT"})) == "proof.wrong_typ"


def test_alg_none(key: SigningKey) -> None:
    head = {"typ": PROOF_TYP, "alg": "none", "jwk": format_jwk(key.public, with_kid=False)}
    body = {"aud": AUD, "iat": NOW, "nonce": "n-1"}
    unsigned = ".".join(b64url_encode(json.dumps(p).encode()) for p in (head, body)) + "."
    assert _code(unsigned) == "proof.bad_alg"


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES384", "ES256K"])
def test_alg_not_allowed(key: SigningKey, alg: str) -> None:
    assert _code(_proof(key, header={"alg": alg})) == "proof.bad_alg"


def test_crit_header(key: SigningKey) -> None:
    assert _code(_proof(key, header={"crit": ["exp"], "exp": 1})) == "proof.malformed"


def test_no_key_in_header(key: SigningKey) -> None:
    assert _code(_proof(key, drop=("jwk",))) == "proof.key_header"


def test_jwk_and_kid_together(key: SigningKey) -> None:
    assert _code(_proof(key, header={"kid": "k1"})) == "proof.key_header"


def test_jwk_and_x5c_together(key: SigningKey) -> None:
    assert _code(_proof(key, header={"x5c": ["MIIB"]})) == "proof.key_header"


def test_kid_only(key: SigningKey) -> None:
    assert _code(_proof(key, drop=("jwk",), header={"kid": "did:example:1#k"})) == (
        "proof.unsupported_key"
    )


def test_x5c_only(key: SigningKey) -> None:
    assert _code(_proof(key, drop=("jwk",), header={"x5c": ["MIIB"]})) == "proof.unsupported_key"


def test_rsa_jwk(key: SigningKey) -> None:
    rsa = {"kty": "RSA", "n": "sXch", "e": "AQAB"}
    assert _code(_proof(key, header={"jwk": rsa})) == "proof.unsupported_key"


def test_jwk_not_an_object(key: SigningKey) -> None:
    assert _code(_proof(key, header={"jwk": "x"})) == "proof.unsupported_key"


def test_private_key_in_header(key: SigningKey) -> None:
    assert _code(_proof(key, header={"jwk": format_private_jwk(key)})) == "proof.private_key"


@pytest.mark.parametrize("member", ["d", "p", "k"])
def test_private_member_in_header(key: SigningKey, member: str) -> None:
    jwk = {**format_jwk(key.public, with_kid=False), member: "AAAA"}
    assert _code(_proof(key, header={"jwk": jwk})) == "proof.private_key"


def test_signed_by_another_key_than_its_header_jwk(key: SigningKey) -> None:
    other = generate_signing_key(key.alg)
    forged = _proof(other, header={"jwk": format_jwk(key.public, with_kid=False)})
    assert _code(forged) == "proof.bad_signature"


def test_alg_that_does_not_fit_the_header_key(key: SigningKey) -> None:
    wrong = "EdDSA" if key.alg is Alg.ES256 else "ES256"
    assert _code(_proof(key, header={"alg": wrong})) == "proof.bad_signature"


def test_wrong_aud(key: SigningKey) -> None:
    assert _code(_proof(key, aud="https://other.example")) == "proof.wrong_audience"


def test_aud_as_list(key: SigningKey) -> None:
    assert _code(_proof(key, aud=[AUD])) == "proof.wrong_audience"


def test_missing_aud(key: SigningKey) -> None:
    assert _code(_proof(key, drop=("aud",))) == "proof.wrong_audience"


def test_missing_iat(key: SigningKey) -> None:
    assert _code(_proof(key, drop=("iat",))) == "proof.bad_iat"


@pytest.mark.parametrize("iat", ["1800000000", True, None])
def test_iat_not_a_number(key: SigningKey, iat: Any) -> None:
    assert _code(_proof(key, iat=iat)) == "proof.bad_iat"


def test_iat_too_old(key: SigningKey) -> None:
    assert _code(_proof(key, iat=NOW - 301)) == "proof.bad_iat"


def test_iat_in_the_future(key: SigningKey) -> None:
    assert _code(_proof(key, iat=NOW + 31)) == "proof.bad_iat"


def test_missing_nonce(key: SigningKey) -> None:
    assert _code(_proof(key, drop=("nonce",))) == "proof.wrong_nonce"


def test_wrong_nonce(key: SigningKey) -> None:
    assert _code(_proof(key, nonce="n-2")) == "proof.wrong_nonce"


def test_nonce_not_a_string(key: SigningKey) -> None:
    assert _code(_proof(key, nonce=12)) == "proof.wrong_nonce"


def test_nonce_refused_by_the_check(key: SigningKey) -> None:
    from verifiers.proof import WrongNonce

    def spent(nonce: str) -> None:
        raise WrongNonce("used before")

    assert _code(_proof(key), nonce=spent) == "proof.wrong_nonce"


@pytest.mark.parametrize("text", ["", "a.b", "a.b.c.d", "not a jwt", "x" * (MAX_PROOF_LENGTH + 1)])
def test_not_a_jws(text: str) -> None:
    assert _code(text) == "proof.malformed"


def test_not_a_string() -> None:
    assert _code(b"a.b.c") == "proof.malformed"  # type: ignore[arg-type]


# --- any change is caught -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_any_character_change_of_the_spec_example_is_refused(
    vectors: Path, position: int, replacement: str
) -> None:
    data = json.loads((vectors / "openid4vci" / "jwt_proof_example.json").read_text())
    jwt: str = data["jwt"]
    index = position % len(jwt)
    if jwt[index] == replacement:
        return
    tampered = jwt[:index] + replacement + jwt[index + 1:]
    with pytest.raises(KluisError):
        verify_proof_jwt(tampered, audience=data["expected_aud"], nonce=data["expected_nonce"],
                         now=data["iat"], max_age=60)
