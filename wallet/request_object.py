"""Signed Request Objects (JAR, RFC 9101) as OpenID4VP 1.0 §5 uses them.

A verifier may send its request as a compact JWS with ``typ: oauth-authz-req+jwt``. The
wallet checks the header, finds the key the verifier must have signed with through a
:class:`VerifierKeys` (by default its registered keys on the trust list), verifies the
signature and only then reads the parameters. For ``x509_hash:`` client ids a checker of the
``x5c`` certificate chain (OpenID4VP 1.0 §5.9.3, HAIP) is another ``VerifierKeys``: it plugs
in without changing anything here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from vault import InvalidInput, VerificationFailed
from verifiers.jws import BadSignature as JwsBadSignature
from verifiers.jws import VerifyingKey, check_header, check_signature, parse_jwk, parse_jws
from verifiers.trustlist import TrustList, UnknownKey

TYP = "oauth-authz-req+jwt"
STATIC_AUDIENCE = "https://self-issued.me/v2"


class Unverifiable(InvalidInput):
    code = "request.unverifiable"
    en = (
        "This signed request cannot be checked without a trust list. "
        "Set one with 'kluis trust set'."
    )
    nl = (
        "Dit ondertekende verzoek is niet te controleren zonder vertrouwenslijst. "
        "Gebruik 'kluis trust set'."
    )


class WrongType(VerificationFailed):
    code = "request.wrong_type"
    en = "The signed request is not marked as a request (typ). kluis does not read it."
    nl = "Het ondertekende verzoek is niet als verzoek gemarkeerd (typ). kluis leest het niet."


class BadSignature(VerificationFailed):
    code = "request.bad_signature"
    en = (
        "The signature on the request does not verify. "
        "It may not come from the organisation it names."
    )
    nl = (
        "De handtekening op het verzoek klopt niet. "
        "Het komt misschien niet van de organisatie die het noemt."
    )


class Mismatch(VerificationFailed):
    code = "request.mismatch"
    en = "The request does not match how it was announced (organisation, audience or code)."
    nl = "Het verzoek past niet bij hoe het werd aangekondigd (organisatie, ontvanger of code)."


class VerifierKeys(Protocol):
    """Where the key that signed a Request Object comes from, given its ``client_id``."""

    def request_key(self, client_id: str, header: Mapping[str, Any]) -> VerifyingKey:
        """The key that must have signed a request of ``client_id`` with this JOSE ``header``
        (``kid``, ``x5c``); raises a ``KluisError`` when there is none."""
        ...


@dataclass(frozen=True)
class TrustListVerifierKeys:
    """:class:`VerifierKeys` from the trust list: the registered signing key of the verifier
    whose ``client_id`` it is, named by the header ``kid`` (or its only key)."""

    trust_list: TrustList

    def request_key(self, client_id: str, header: Mapping[str, Any]) -> VerifyingKey:
        """Raises ``trustlist.not_a_verifier`` or ``trustlist.unknown_key``."""
        keys = self.trust_list.verifier(client_id).jwks.keys
        kid = header.get("kid")
        for key in keys:
            if key.kid == kid or (kid is None and len(keys) == 1):
                return parse_jwk(key.model_dump(exclude_none=True))
        raise UnknownKey("specs/trustlist.md §7: the verifier has no key with this kid")


def open_request_object(
    token: str, keys: VerifierKeys | None, *, wallet_nonce: str | None = None
) -> dict[str, Any]:
    """The parameters in Request Object ``token`` once its signature verifies.

    Checks, in order: the compact form; ``typ`` (OpenID4VP 1.0 §5: a wallet MUST NOT process
    another); ``alg`` on the allow-list; the signature with ``keys.request_key``; ``aud``, when
    present, is the static ``https://self-issued.me/v2`` (§5.8); the ``wallet_nonce`` the
    wallet sent is echoed (§5.10). ``iss`` is ignored (§5). Raises ``jws.*``,
    ``request.wrong_type``, ``request.unverifiable`` (no ``keys``), ``request.bad_signature``,
    ``request.mismatch``, and what ``keys`` raises.
    """
    jws = parse_jws(token, "Request Object")
    if jws.header.get("typ") != TYP:
        raise WrongType(f"OpenID4VP 1.0 §5: typ must be {TYP}")
    alg = check_header(jws.header)
    if keys is None:
        raise Unverifiable("OpenID4VP 1.0 §5: the signer's key is needed")
    client_id = jws.payload.get("client_id")
    if type(client_id) is not str:
        raise Unverifiable("OpenID4VP 1.0 §5: no client_id to find the signer by")
    try:
        check_signature(jws, keys.request_key(client_id, jws.header), alg)
    except JwsBadSignature:
        raise BadSignature("RFC 9101 §6.2: the Request Object's signature") from None
    aud = jws.payload.get("aud")
    if aud is not None and aud != STATIC_AUDIENCE:
        raise Mismatch(f"OpenID4VP 1.0 §5.8: aud is {STATIC_AUDIENCE}")
    if wallet_nonce is not None and jws.payload.get("wallet_nonce") != wallet_nonce:
        raise Mismatch("OpenID4VP 1.0 §5.10: the Request Object echoes wallet_nonce")
    return jws.payload
