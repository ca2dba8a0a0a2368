"""OpenID4VCI key proofs of type ``jwt`` (OpenID4VCI 1.0 Appendix F.1; §8.2 of the
Credential Request): the issuing agency's check that the wallet holds the key a credential
will be bound to.

A proof is a compact JWS with header ``typ: openid4vci-proof+jwt``, an asymmetric ``alg``
and the holder's public key in ``jwk``; its payload names the Credential Issuer (``aud``),
the server's ``c_nonce`` (``nonce``) and when it was made (``iat``). ``verify_proof_jwt``
runs the checks in a fixed order and returns the holder key. Each failure has its own
``proof.*`` code, so a wallet developer sees which rule broke.

Of the three ways to name the key (``kid``, ``jwk``, ``x5c``) kluis supports ``jwk``: a
citizen-held wallet has no DID document and no certificate for its keys. The wallet's half,
``make_proof_jwt``, is in ``wallet.proof``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vault import InvalidInput, KluisError, VerificationFailed
from verifiers.jws import (
    ALGORITHMS,
    Alg,
    AlgMac,
    AlgNone,
    AlgNotAllowed,
    BadKey,
    BadSignature,
    CritNotUnderstood,
    KeyAlgMismatch,
    VerifyingKey,
    check_header,
    check_signature,
    parse_jwk,
    parse_jws,
)

PROOF_TYP = "openid4vci-proof+jwt"
MAX_PROOF_LENGTH = 8 * 1024
# Members that exist only in private (or symmetric) JWKs: RFC 7518 §6.2.2, §6.3.2, §6.4.1.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_HEADERS = ("kid", "jwk", "x5c")
SPEC = "OpenID4VCI 1.0 Appendix F.1"

NonceCheck = Callable[[str], None]
"""Spends a ``c_nonce``: returns if it was issued and is still unused, raises ``WrongNonce``."""


class Malformed(InvalidInput):
    code = "proof.malformed"
    en = "The key proof is damaged or not a signed token. Let your wallet make a new proof."
    nl = (
        "Het sleutelbewijs is beschadigd of geen ondertekend bericht. Laat uw wallet een nieuw "
        "bewijs maken."
    )


class WrongTyp(VerificationFailed):
    code = "proof.wrong_typ"
    en = "The key proof is not marked as an OpenID4VCI key proof (typ). It is refused."
    nl = (
        "Het sleutelbewijs is niet gemarkeerd als OpenID4VCI-sleutelbewijs (typ). Het wordt "
        "geweigerd."
    )


class BadAlg(VerificationFailed):
    code = "proof.bad_alg"
    en = "The key proof uses a signature algorithm that is not allowed (only ES256 and EdDSA)."
    nl = (
        "Het sleutelbewijs gebruikt een handtekeningalgoritme dat niet is toegestaan (alleen "
        "ES256 en EdDSA)."
    )


class KeyHeader(VerificationFailed):
    code = "proof.key_header"
    en = "The key proof must name its key in exactly one way (kid, jwk or x5c). It is refused."
    nl = (
        "Het sleutelbewijs moet de sleutel op precies één manier noemen (kid, jwk of x5c). "
        "Het wordt geweigerd."
    )


class UnsupportedKey(VerificationFailed):
    code = "proof.unsupported_key"
    en = "The key proof's key is not a P-256 or Ed25519 key given as a JWK. Use such a key."
    nl = (
        "De sleutel in het sleutelbewijs is geen P-256- of Ed25519-sleutel als JWK. Gebruik "
        "zo'n sleutel."
    )


class PrivateKeyInHeader(VerificationFailed):
    code = "proof.private_key"
    en = (
        "The key proof contains a private key, which must never be sent. Make a new key in "
        "your wallet."
    )
    nl = (
        "Het sleutelbewijs bevat een privésleutel, en die mag nooit worden verstuurd. Maak een "
        "nieuwe sleutel in uw wallet."
    )


class BadProofSignature(VerificationFailed):
    code = "proof.bad_signature"
    en = "The key proof is not signed by the key it names. It is refused."
    nl = "Het sleutelbewijs is niet ondertekend met de sleutel die erin staat. Het wordt geweigerd."


class WrongAudience(VerificationFailed):
    code = "proof.wrong_audience"
    en = "The key proof was made for another issuer (aud). Start again with this issuer."
    nl = (
        "Het sleutelbewijs is voor een andere uitgever gemaakt (aud). Begin opnieuw bij deze "
        "uitgever."
    )


class WrongNonce(VerificationFailed):
    code = "proof.wrong_nonce"
    en = "The key proof's nonce is missing, unknown, used or expired. Ask for a new nonce."
    nl = (
        "De nonce in het sleutelbewijs ontbreekt, is onbekend, al gebruikt of verlopen. Vraag "
        "een nieuwe nonce."
    )


class BadIat(VerificationFailed):
    code = "proof.bad_iat"
    en = "The key proof's time (iat) is missing, too old or in the future. Check your clock."
    nl = (
        "De tijd in het sleutelbewijs (iat) ontbreekt, is te oud of ligt in de toekomst. "
        "Controleer uw klok."
    )


def _number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _header_alg(header: Mapping[str, Any]) -> Alg:
    try:
        return check_header(header, ALGORITHMS)
    except (AlgNone, AlgMac, AlgNotAllowed) as error:
        raise BadAlg(f"{SPEC}: alg is asymmetric and allowed ({error.code})") from None
    except CritNotUnderstood:
        raise Malformed("RFC 7515 §4.1.11: no crit extension is understood") from None


def _header_key(header: Mapping[str, Any]) -> VerifyingKey:
    named = [name for name in _KEY_HEADERS if name in header]
    if len(named) != 1:
        raise KeyHeader(f"{SPEC}: exactly one of kid, jwk, x5c (found {len(named)})")
    if named[0] != "jwk":
        raise UnsupportedKey(f"{SPEC}: kluis binds credentials to a 'jwk', not '{named[0]}'")
    jwk = header["jwk"]
    if not isinstance(jwk, Mapping):
        raise UnsupportedKey("RFC 7517 §4: the 'jwk' header is a JSON object")
    if PRIVATE_MEMBERS.intersection(jwk):
        raise PrivateKeyInHeader(f"{SPEC}: the 'jwk' header must not contain a private key")
    try:
        return parse_jwk(jwk)
    except BadKey as error:
        raise UnsupportedKey(error.detail) from None


def verify_proof_jwt(
    jwt: str, *, audience: str, nonce: str | NonceCheck, now: int, max_age: int,
    leeway: int = 30,
) -> VerifyingKey:
    """The holder's public key, once ``jwt`` passes every check of OpenID4VCI 1.0
    Appendix F.1, in this order:

    1. a compact JWS of at most ``MAX_PROOF_LENGTH`` characters (``proof.malformed``);
    2. ``typ`` is ``openid4vci-proof+jwt`` (``proof.wrong_typ``);
    3. ``alg`` is ES256 or EdDSA, never ``none`` or a MAC (``proof.bad_alg``);
    4. exactly one of ``kid``/``jwk``/``x5c`` (``proof.key_header``), and it is a ``jwk``
       (``proof.unsupported_key``) without private members (``proof.private_key``);
    5. the signature verifies with that key under ``alg`` (``proof.bad_signature``);
    6. ``aud`` is the Credential Issuer Identifier ``audience`` (``proof.wrong_audience``);
    7. ``iat`` is a number no more than ``max_age`` seconds old and at most ``leeway``
       seconds ahead of ``now`` (``proof.bad_iat``; §13.8 allows for clock skew);
    8. ``nonce`` is the ``c_nonce``: equal to the string given, or accepted by the check
       given, which may spend it (``proof.wrong_nonce``). It runs last, so a proof that
       fails any other check never uses up a nonce.

    ``iss`` is not required: a wallet redeeming a pre-authorized code anonymously sends none.
    """
    if type(jwt) is not str or len(jwt) > MAX_PROOF_LENGTH:
        raise Malformed(f"kluis: a key proof is a string of at most {MAX_PROOF_LENGTH} characters")
    try:
        jws = parse_jws(jwt, "key proof")
    except KluisError:
        raise Malformed("RFC 7515 §7.1: a compact JWS with JSON header and payload") from None
    header, claims = jws.header, jws.payload
    if header.get("typ") != PROOF_TYP:
        raise WrongTyp(f"{SPEC}: typ is {PROOF_TYP}")
    alg = _header_alg(header)
    key = _header_key(header)
    try:
        check_signature(jws, key, alg)
    except (BadSignature, KeyAlgMismatch):
        raise BadProofSignature(f"{SPEC}: signed by the key in the 'jwk' header") from None
    if type(claims.get("aud")) is not str or claims["aud"] != audience:
        raise WrongAudience(f"{SPEC}: aud is the Credential Issuer Identifier")
    iat: Any = claims.get("iat")
    if not _number(iat):
        raise BadIat(f"{SPEC}: iat is a number")
    if iat < now - max_age or iat > now + leeway:
        raise BadIat(f"{SPEC}; §13.8: iat within {max_age} s before now")
    _check_nonce(claims.get("nonce"), nonce)
    return key


def _check_nonce(claimed: object, expected: str | NonceCheck) -> None:
    if type(claimed) is not str or not claimed:
        raise WrongNonce(f"{SPEC}: nonce is the server's c_nonce (OpenID4VCI 1.0 §7.2)")
    if isinstance(expected, str):
        if claimed != expected:
            raise WrongNonce(f"{SPEC}: nonce is not the c_nonce issued")
        return
    expected(claimed)
