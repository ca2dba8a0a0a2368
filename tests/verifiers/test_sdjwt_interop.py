"""Interop with the reference implementation ``sd-jwt`` 0.10.4 (PyPI), a test-only peer, in
both directions; and the places where it is laxer than RFC 9901 (specs/sdjwt.md lists them).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from vault import KluisError
from verifiers.disclosure import format_disclosure
from verifiers.holder import parse_issued, present_sd_jwt
from verifiers.issuer import issue_sd_jwt
from verifiers.jws import (
    Alg,
    SigningKey,
    format_jwk,
    format_private_jwk,
    generate_signing_key,
    parse_private_jwk,
)
from verifiers.keybinding import KeyBinding
from verifiers.sdjwt import parse_compact
from verifiers.verifier import IssuerKeyMap, verify_issued, verify_sd_jwt

ISS = "https://issuer.example"
VCT = "urn:kluis:pid:1"
NONCE = "n-interop-1"
AUD = "x509_hash:aW50ZXJvcA"
CLAIMS: dict[str, Any] = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "address": {"street_address": "Heidestraat 17", "locality": "Utrecht", "country": "NL"},
    "nationalities": ["NL", "DE"],
}
DISCLOSABLE = [
    ("given_name",),
    ("family_name",),
    ("address",),
    ("address", "locality"),
    ("nationalities", None),
]


def _jwcrypto(key: SigningKey) -> JWK:
    return JWK(**format_private_jwk(key))


def _their_verifier(presentation: str, issuer: SigningKey, **expected: str) -> dict[str, Any]:
    public = JWK(**format_jwk(issuer.public))
    verifier = SDJWTVerifier(presentation, lambda iss, header: public, **expected)
    return dict(verifier.get_verified_payload())


@pytest.mark.parametrize("issuer_alg", [Alg.ES256, Alg.EDDSA])
def test_they_verify_our_presentations(issuer_alg: Alg) -> None:
    issuer, holder = generate_signing_key(issuer_alg), generate_signing_key(Alg.ES256)
    now = int(time.time())
    token = issue_sd_jwt(
        CLAIMS,
        issuer_key=issuer,
        iss=ISS,
        vct=VCT,
        now=now,
        exp=now + 3600,
        holder_key=holder.public,
        disclosable=DISCLOSABLE,
        decoys=3,
    )
    presented = present_sd_jwt(
        parse_issued(token),
        disclose=[("address", "locality"), ("nationalities", 1), ("given_name",)],
        holder_key=holder,
        nonce=NONCE,
        aud=AUD,
        now=now,
    )
    theirs = _their_verifier(presented, issuer, expected_aud=AUD, expected_nonce=NONCE)
    ours = verify_sd_jwt(
        presented,
        issuer_keys=IssuerKeyMap.of({ISS: issuer.public}),
        now=now,
        key_binding=KeyBinding(NONCE, AUD),
    )
    assert theirs == ours.claims
    assert theirs["address"] == {
        "street_address": "Heidestraat 17",
        "country": "NL",
        "locality": "Utrecht",
    }
    assert theirs["nationalities"] == ["DE"] and "family_name" not in theirs


def test_they_refuse_our_presentation_for_another_nonce() -> None:
    issuer, holder = generate_signing_key(Alg.ES256), generate_signing_key(Alg.ES256)
    now = int(time.time())
    token = issue_sd_jwt(
        CLAIMS, issuer_key=issuer, iss=ISS, vct=VCT, now=now, exp=now + 60, holder_key=holder.public
    )
    presented = present_sd_jwt(
        parse_issued(token),
        disclose=[("given_name",)],
        holder_key=holder,
        nonce=NONCE,
        aud=AUD,
        now=now,
    )
    with pytest.raises(ValueError, match="nonce"):
        _their_verifier(presented, issuer, expected_aud=AUD, expected_nonce="other")


def _their_issuance(issuer: SigningKey, holder: SigningKey | None, *, decoys: bool) -> str:
    now = int(time.time())
    claims: dict[Any, Any] = {"iss": ISS, "iat": now, "exp": now + 3600, "vct": VCT}
    claims.update(
        {
            SDObj("given_name"): "Erika",
            SDObj("family_name"): "Mustermann",
            SDObj("address"): {"street_address": "Heidestraat 17", SDObj("locality"): "Utrecht"},
            "nationalities": ["NL", SDObj("DE")],
            "status": {"status_list": {"idx": 1, "uri": "https://issuer.example/status/1"}},
        }
    )
    issued = SDJWTIssuer(
        claims,
        _jwcrypto(issuer),
        holder_key=_jwcrypto(holder) if holder else None,
        sign_alg=issuer.alg.value,
        add_decoy_claims=decoys,
        extra_header_parameters={"typ": "dc+sd-jwt"},
    )
    return str(issued.sd_jwt_issuance)


@pytest.mark.parametrize("decoys", [False, True])
@pytest.mark.parametrize("issuer_alg", [Alg.ES256, Alg.EDDSA])
def test_we_verify_their_issued_credentials(issuer_alg: Alg, decoys: bool) -> None:
    issuer, holder = generate_signing_key(issuer_alg), generate_signing_key(Alg.ES256)
    issued = _their_issuance(issuer, holder, decoys=decoys)
    keys = IssuerKeyMap.of({ISS: issuer.public})
    now = int(time.time())
    verified = verify_issued(issued, issuer_keys=keys, now=now, holder_key=holder.public)
    assert verified.claims["address"] == {"street_address": "Heidestraat 17", "locality": "Utrecht"}
    assert verified.claims["nationalities"] == ["NL", "DE"]
    assert verified.claims["status"]["status_list"]["idx"] == 1

    their_holder = SDJWTHolder(issued)
    their_holder.create_presentation(
        {"given_name": True, "address": {"locality": True}, "nationalities": [None, True]},
        nonce=NONCE,
        aud=AUD,
        holder_key=_jwcrypto(holder),
    )
    shown = verify_sd_jwt(
        their_holder.sd_jwt_presentation,
        issuer_keys=keys,
        now=now,
        key_binding=KeyBinding(NONCE, AUD),
    )
    assert shown.claims["address"] == {"street_address": "Heidestraat 17", "locality": "Utrecht"}
    assert shown.claims["nationalities"] == ["NL", "DE"] and "family_name" not in shown.claims


def test_we_verify_their_eddsa_key_binding() -> None:
    """The reference verifier only checks ES256 KB-JWTs; its holder can sign EdDSA ones."""
    issuer, holder = generate_signing_key(Alg.ES256), generate_signing_key(Alg.EDDSA)
    issued = _their_issuance(issuer, holder, decoys=False)
    their_holder = SDJWTHolder(issued)
    their_holder.create_presentation(
        {"given_name": True}, nonce=NONCE, aud=AUD, holder_key=_jwcrypto(holder), sign_alg="EdDSA"
    )
    shown = verify_sd_jwt(
        their_holder.sd_jwt_presentation,
        issuer_keys=IssuerKeyMap.of({ISS: issuer.public}),
        now=int(time.time()),
        key_binding=KeyBinding(NONCE, AUD),
    )
    assert shown.claims["given_name"] == "Erika"
    with pytest.raises(Exception):  # noqa: B017 - the reference library's own limitation
        _their_verifier(
            their_holder.sd_jwt_presentation, issuer, expected_aud=AUD, expected_nonce=NONCE
        )


def test_their_default_typ_is_refused() -> None:
    """sd-jwt 0.10.4 writes typ 'example+sd-jwt' unless told otherwise (and never checks it)."""
    issuer = generate_signing_key(Alg.ES256)
    now = int(time.time())
    issued = SDJWTIssuer(
        {"iss": ISS, "iat": now, "exp": now + 60, "vct": VCT, SDObj("given_name"): "Erika"},
        _jwcrypto(issuer),
    ).sd_jwt_issuance
    with pytest.raises(KluisError) as caught:
        verify_issued(issued, issuer_keys=IssuerKeyMap.of({ISS: issuer.public}), now=now)
    assert caught.value.code == "sdjwt.bad_typ"


# --- where the reference library is laxer than RFC 9901 (documented in specs/sdjwt.md) ---


def _ours_and_key() -> tuple[str, SigningKey]:
    issuer = generate_signing_key(Alg.ES256)
    now = int(time.time())
    return issue_sd_jwt(
        CLAIMS, issuer_key=issuer, iss=ISS, vct=VCT, now=now - 7200, exp=now - 3600
    ), issuer


def test_lax_reference_accepts_an_expired_credential_we_refuse() -> None:
    token, issuer = _ours_and_key()
    assert _their_verifier(token, issuer)["given_name"] == "Erika"
    with pytest.raises(KluisError) as caught:
        verify_sd_jwt(
            token,
            issuer_keys=IssuerKeyMap.of({ISS: issuer.public}),
            now=int(time.time()),
            key_binding=None,
        )
    assert caught.value.code == "sdjwt.expired"


def test_lax_reference_drops_an_unreferenced_disclosure_we_refuse() -> None:
    token, issuer = _ours_and_key()
    stray = token + format_disclosure("c2FsdHNhbHRzYWx0", "middle_name", "Anna").encoded + "~"
    assert "middle_name" not in _their_verifier(stray, issuer)
    with pytest.raises(KluisError) as caught:
        verify_sd_jwt(
            stray, issuer_keys=IssuerKeyMap.of({ISS: issuer.public}), now=0, key_binding=None
        )
    assert caught.value.code == "sdjwt.disclosure_not_referenced"


def test_lax_reference_ignores_an_unrequested_kb_jwt_we_refuse() -> None:
    issuer, holder = generate_signing_key(Alg.ES256), generate_signing_key(Alg.ES256)
    now = int(time.time())
    token = issue_sd_jwt(
        CLAIMS, issuer_key=issuer, iss=ISS, vct=VCT, now=now, exp=now + 60, holder_key=holder.public
    )
    bound = present_sd_jwt(
        parse_issued(token), disclose=[], holder_key=holder, nonce=NONCE, aud=AUD, now=now
    )
    assert parse_compact(bound).kb_jwt is not None
    assert _their_verifier(bound, issuer)["vct"] == VCT
    with pytest.raises(KluisError) as caught:
        verify_sd_jwt(
            bound, issuer_keys=IssuerKeyMap.of({ISS: issuer.public}), now=now, key_binding=None
        )
    assert caught.value.code == "sdjwt.kb_unexpected"


def test_private_jwk_files_interoperate_with_jwcrypto() -> None:
    theirs = JWK.generate(kty="EC", crv="P-256")
    ours = parse_private_jwk(theirs.export_private(as_dict=True))
    assert format_jwk(ours.public, with_kid=False) == {
        k: v for k, v in theirs.export_public(as_dict=True).items() if k in ("kty", "crv", "x", "y")
    }
