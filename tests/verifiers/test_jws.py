"""verifiers.jws: strict base64url, the algorithm allow-list, key parsing, and agreement with
jwcrypto (an independent JOSE implementation) in both directions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from vault import KluisError
from verifiers.jws import (
    Alg,
    b64url_decode,
    b64url_encode,
    check_header,
    format_jwk,
    format_private_jwk,
    generate_signing_key,
    parse_json_object,
    parse_jwk,
    parse_private_jwk,
    sign_jws,
    thumbprint,
    verify_jws,
)

ALGS = [Alg.ES256, Alg.EDDSA]


def _code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(KluisError) as caught:
        call()
    return caught.value.code


@given(st.binary(max_size=200))
def test_base64url_round_trip(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == data


@pytest.mark.parametrize(
    "text",
    ["QQ==", "QQ=", "a+b/", "ab cd", "abcde", "QR", "QUJ", "QUI\n", "é"],
    ids=[
        "padding",
        "one-pad",
        "std-alphabet",
        "space",
        "length-4k+1",
        "bits-in-2",
        "bits-in-3",
        "newline",
        "non-ascii",
    ],
)
def test_base64url_refuses_what_is_not_strict(text: str) -> None:
    assert _code(lambda: b64url_decode(text)) == "jws.malformed"


def test_base64url_noncanonical_tail_would_alias() -> None:
    """'QR' and 'QQ' decode to the same byte in lenient decoders; only 'QQ' is canonical."""
    assert b64url_decode("QQ") == b"A"
    assert _code(lambda: b64url_decode("QR")) == "jws.malformed"


@pytest.mark.parametrize(
    "data",
    [b"[1]", b'{"a": NaN}', b"\xff{}", '{"a": 1}'.encode("utf-16"), b"{", b'"x"'],
    ids=["array", "nan", "bad-utf8", "utf16", "truncated", "string"],
)
def test_json_object_is_strict(data: bytes) -> None:
    assert _code(lambda: parse_json_object(data, "payload")) == "jws.malformed"


@pytest.mark.parametrize("alg", ALGS)
def test_sign_and_verify(alg: Alg) -> None:
    key = generate_signing_key(alg)
    token = sign_jws({"alg": alg.value, "typ": "JWT"}, {"x": 1}, key)
    assert verify_jws(token, key.public).payload == {"x": 1}


@pytest.mark.parametrize("alg", ALGS)
def test_other_key_is_bad_signature(alg: Alg) -> None:
    token = sign_jws({"alg": alg.value}, {"x": 1}, generate_signing_key(alg))
    other = generate_signing_key(alg).public
    assert _code(lambda: verify_jws(token, other)) == "jws.bad_signature"


def test_es256_signature_must_be_64_bytes() -> None:
    key = generate_signing_key(Alg.ES256)
    head, body, sig = sign_jws({"alg": "ES256"}, {}, key).split(".")
    short = b64url_encode(b64url_decode(sig)[:63])
    assert _code(lambda: verify_jws(f"{head}.{body}.{short}", key.public)) == "jws.bad_signature"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"alg": "none"}, "jws.alg_none"),
        ({"alg": "HS256"}, "jws.alg_mac"),
        ({"alg": "HS384"}, "jws.alg_mac"),
        ({"alg": "HS512"}, "jws.alg_mac"),
        ({"alg": "RS256"}, "jws.alg_not_allowed"),
        ({"alg": "ES384"}, "jws.alg_not_allowed"),
        ({"alg": "Ed25519"}, "jws.alg_not_allowed"),
        ({}, "jws.alg_not_allowed"),
        ({"alg": ["ES256"]}, "jws.alg_not_allowed"),
        ({"alg": "ES256", "crit": ["b64"], "b64": False}, "jws.crit_not_understood"),
    ],
)
def test_header_allow_list(header: dict[str, object], code: str) -> None:
    assert _code(lambda: check_header(header)) == code


def test_allow_list_can_be_narrowed() -> None:
    assert check_header({"alg": "EdDSA"}) is Alg.EDDSA
    only_es256 = frozenset({Alg.ES256})
    assert _code(lambda: check_header({"alg": "EdDSA"}, only_es256)) == "jws.alg_not_allowed"


def test_alg_must_fit_key() -> None:
    ed = generate_signing_key(Alg.EDDSA)
    token = sign_jws({"alg": "EdDSA"}, {}, ed)
    head = b64url_encode(json.dumps({"alg": "ES256"}).encode())
    forged = head + token[token.index(".") :]
    assert _code(lambda: verify_jws(forged, ed.public)) == "jws.key_alg_mismatch"


@pytest.mark.parametrize("alg", ALGS)
def test_jwk_round_trip(alg: Alg) -> None:
    key = generate_signing_key(alg, kid="k-1")
    public = parse_jwk(format_jwk(key.public))
    assert public.public_bytes() == key.public.public_bytes() and public.kid == "k-1"
    private = parse_private_jwk(format_private_jwk(key))
    assert private.public.public_bytes() == key.public.public_bytes() and private.kid == "k-1"
    assert private.sign(b"x") and private.alg is alg


def _ec_jwk() -> dict[str, str]:
    return format_jwk(generate_signing_key(Alg.ES256).public)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda j: j.update(d="AAAA"),
        lambda j: j.update(crv="P-384"),
        lambda j: j.update(kty="RSA"),
        lambda j: j.pop("y"),
        lambda j: j.update(x=j["x"][:-2]),
        lambda j: j.update(x=j["x"] + "="),
        lambda j: j.update(y=b64url_encode(bytes(32))),
        lambda j: j.update(alg="EdDSA"),
        lambda j: j.update(kid=7),
        lambda j: j.update(x=5),
    ],
    ids=[
        "private-d",
        "P-384",
        "RSA",
        "no-y",
        "short-x",
        "padded-x",
        "off-curve",
        "alg-mismatch",
        "kid-not-string",
        "x-not-string",
    ],
)
def test_jwk_is_strict(mutate) -> None:  # type: ignore[no-untyped-def]
    jwk = _ec_jwk()
    mutate(jwk)
    assert _code(lambda: parse_jwk(jwk)) == "jws.bad_key"


def test_jwk_not_an_object() -> None:
    assert _code(lambda: parse_jwk(["EC"])) == "jws.bad_key"


def test_private_jwk_must_match_its_public_part() -> None:
    one = format_private_jwk(generate_signing_key(Alg.ES256))
    two = format_private_jwk(generate_signing_key(Alg.ES256))
    one["d"] = two["d"]
    assert _code(lambda: parse_private_jwk(one)) == "jws.bad_key"
    assert _code(lambda: parse_private_jwk(_ec_jwk())) == "jws.bad_key"


@pytest.mark.parametrize("alg", ALGS)
def test_jwcrypto_agrees_both_ways(alg: Alg) -> None:
    """Our signatures verify in jwcrypto, jwcrypto's verify here; keys read the same."""
    key = generate_signing_key(alg)
    theirs = jwcrypto_jwk.JWK(**format_private_jwk(key))
    ours = sign_jws({"alg": alg.value}, {"n": 1}, key)
    check = jwcrypto_jws.JWS()
    check.deserialize(ours)
    check.verify(theirs, alg=alg.value)
    made = jwcrypto_jws.JWS(b'{"n": 2}')
    made.add_signature(theirs, alg=alg.value, protected=json.dumps({"alg": alg.value}))
    assert verify_jws(made.serialize(compact=True), key.public).payload == {"n": 2}
    assert thumbprint(key.public) == theirs.thumbprint()


@pytest.mark.parametrize("alg", ALGS)
def test_jwk_parse_matches_jwcrypto(alg: Alg) -> None:
    generated = jwcrypto_jwk.JWK.generate(
        **({"kty": "EC", "crv": "P-256"} if alg is Alg.ES256 else {"kty": "OKP", "crv": "Ed25519"})
    )
    public = generated.export_public(as_dict=True)
    assert format_jwk(parse_jwk(public), with_kid=False) == {
        k: v for k, v in public.items() if k in ("kty", "crv", "x", "y")
    }
