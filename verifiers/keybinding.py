"""Key Binding JWTs (RFC 9901 §4.3, §7.3): the holder proves it holds the key in ``cnf`` and
binds the presentation to one verifier (``aud``) and one request (``nonce``).

``prove_key_binding`` is the holder's half, ``check_key_binding`` the verifier's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vault import VerificationFailed
from verifiers.disclosure import digest_of
from verifiers.jws import (
    ALGORITHMS,
    Alg,
    BadSignature,
    SigningKey,
    VerifyingKey,
    check_header,
    check_signature,
    parse_jwk,
    parse_jws,
    sign_jws,
)

KB_TYP = "kb+jwt"


@dataclass(frozen=True, slots=True)
class KeyBinding:
    """What the verifier demands of the KB-JWT. Decide it *before* looking at a presentation
    (RFC 9901 §7.3 step 1, §9.5): pass ``None`` to ``verify_sd_jwt`` for no key binding.

    ``aud`` is the verifier's full client identifier, prefix included (OpenID4VP 1.0 §B.3.6);
    ``max_age`` is how many seconds old the KB-JWT's ``iat`` may be.
    """

    nonce: str
    aud: str
    max_age: int = 300


class KbMissing(VerificationFailed):
    code = "sdjwt.kb_missing"
    en = (
        "The presentation has no proof that it comes from the holder (KB-JWT), but one is "
        "required."
    )
    nl = (
        "De presentatie heeft geen bewijs dat die van de houder komt (KB-JWT), maar dat is "
        "verplicht."
    )


class KbUnexpected(VerificationFailed):
    code = "sdjwt.kb_unexpected"
    en = "The credential carries a holder's proof (KB-JWT) where none belongs. It is refused."
    nl = (
        "De credential bevat een bewijs van de houder (KB-JWT) waar dat niet hoort. Die wordt "
        "geweigerd."
    )


class NoHolderKey(VerificationFailed):
    code = "sdjwt.no_holder_key"
    en = (
        "The credential is not bound to a holder key (no usable 'cnf'), so key binding is "
        "impossible."
    )
    nl = (
        "De credential is niet aan een sleutel van de houder gebonden (geen bruikbare 'cnf'). "
        "Sleutelbinding kan dus niet."
    )


class WrongHolderKey(VerificationFailed):
    code = "sdjwt.wrong_holder_key"
    en = "The credential is bound to another holder key than the one given."
    nl = "De credential is gebonden aan een andere sleutel van de houder dan de opgegeven sleutel."


class KbMalformed(VerificationFailed):
    code = "sdjwt.kb_malformed"
    en = "The holder's proof (KB-JWT) lacks a required field. The presentation is refused."
    nl = (
        "Het bewijs van de houder (KB-JWT) mist een verplicht veld. De presentatie wordt "
        "geweigerd."
    )


class KbBadTyp(VerificationFailed):
    code = "sdjwt.kb_bad_typ"
    en = "The holder's proof is not marked as a KB-JWT (typ 'kb+jwt'). It is refused."
    nl = (
        "Het bewijs van de houder is niet gemarkeerd als KB-JWT (typ 'kb+jwt'). Het wordt "
        "geweigerd."
    )


class KbBadSignature(VerificationFailed):
    code = "sdjwt.kb_bad_signature"
    en = "The holder's proof is not signed with the key in the credential. It is refused."
    nl = (
        "Het bewijs van de houder is niet ondertekend met de sleutel uit de credential. "
        "Het wordt geweigerd."
    )


class KbWrongNonce(VerificationFailed):
    code = "sdjwt.kb_wrong_nonce"
    en = (
        "The holder's proof was made for another request (wrong nonce). Ask for a new "
        "presentation."
    )
    nl = (
        "Het bewijs van de houder hoort bij een ander verzoek (verkeerde nonce). Vraag om "
        "een nieuwe presentatie."
    )


class KbWrongAud(VerificationFailed):
    code = "sdjwt.kb_wrong_aud"
    en = "The holder's proof was made for another verifier (wrong aud). It is refused."
    nl = (
        "Het bewijs van de houder is voor een andere ontvanger gemaakt (verkeerde aud). Het "
        "wordt geweigerd."
    )


class KbStale(VerificationFailed):
    code = "sdjwt.kb_stale"
    en = "The holder's proof is too old or dated in the future. Ask for a new presentation."
    nl = (
        "Het bewijs van de houder is te oud of heeft een datum in de toekomst. Vraag om een "
        "nieuwe presentatie."
    )


class KbBadSdHash(VerificationFailed):
    code = "sdjwt.kb_bad_sd_hash"
    en = "The holder's proof does not cover exactly what was sent (sd_hash). It is refused."
    nl = (
        "Het bewijs van de houder dekt niet precies wat is gestuurd (sd_hash). Het wordt "
        "geweigerd."
    )


def prove_key_binding(
    signed_prefix: str, *, holder_key: SigningKey, nonce: str, aud: str, now: int,
    hash_alg: str,
) -> str:
    """The KB-JWT over ``signed_prefix`` (the SD-JWT text up to its last ``~``), signed by
    ``holder_key`` for ``aud`` and ``nonce`` at time ``now`` (RFC 9901 §4.3)."""
    header = {"alg": holder_key.alg.value, "typ": KB_TYP}
    sd_hash = digest_of(signed_prefix, hash_alg)
    payload = {"nonce": nonce, "aud": aud, "iat": now, "sd_hash": sd_hash}
    return sign_jws(header, payload, holder_key)


def holder_key_of(claims: Mapping[str, Any]) -> VerifyingKey:
    """The holder's public key in ``cnf.jwk`` (RFC 7800 §3.2; RFC 9901 §4.1.2).

    Raises ``NoHolderKey`` when there is no ``cnf`` with a ``jwk``, and ``jws.bad_key`` when the
    JWK is not a public P-256 or Ed25519 key.
    """
    cnf = claims.get("cnf")
    if type(cnf) is not dict or "jwk" not in cnf:
        raise NoHolderKey("RFC 9901 §4.1.2: 'cnf' with a 'jwk'")
    return parse_jwk(cnf["jwk"])


def _number(value: Any) -> bool:
    return (type(value) is int) or (type(value) is float)


def check_key_binding(
    kb_jwt: str, *, signed_prefix: str, holder_key: VerifyingKey, expected: KeyBinding,
    now: int, hash_alg: str, algorithms: frozenset[Alg] = ALGORITHMS, leeway: int = 0,
) -> dict[str, Any]:
    """The KB-JWT payload, once every check of RFC 9901 §7.3 step 5 passes.

    Raises ``jws.malformed``, the ``check_header`` errors (``none``, MAC and algorithms off
    the list), ``KbBadTyp``, ``jws.key_alg_mismatch``, ``KbBadSignature``, ``KbMalformed``,
    ``KbStale`` (``iat`` older than ``expected.max_age`` or in the future, beyond ``leeway``;
    or an ``exp`` that has passed), ``KbWrongNonce``, ``KbWrongAud`` and ``KbBadSdHash``.
    """
    jws = parse_jws(kb_jwt, "KB-JWT")
    alg = check_header(jws.header, algorithms)
    if jws.header.get("typ") != KB_TYP:
        raise KbBadTyp("RFC 9901 §4.3: typ is 'kb+jwt'")
    try:
        check_signature(jws, holder_key, alg)
    except BadSignature:
        raise KbBadSignature("RFC 9901 §7.3 step 5: signature with the 'cnf' key") from None
    claims = jws.payload
    iat: Any = claims.get("iat")
    if not _number(iat):
        raise KbMalformed("RFC 9901 §4.3: 'iat' is a number")
    if iat > now + leeway:
        raise KbStale("RFC 9901 §7.3 step 5: 'iat' is in the future")
    if now - iat > expected.max_age + leeway:
        raise KbStale(f"RFC 9901 §7.3 step 5: 'iat' is more than {expected.max_age} s old")
    exp = claims.get("exp")
    if exp is not None and (not _number(exp) or now >= exp + leeway):
        raise KbStale("RFC 7519 §4.1.4: the KB-JWT has expired")
    nonce = claims.get("nonce")
    if type(nonce) is not str:
        raise KbMalformed("RFC 9901 §4.3: 'nonce' is a string")
    if nonce != expected.nonce:
        raise KbWrongNonce("RFC 9901 §7.3 step 5: nonce of this request")
    aud = claims.get("aud")
    if type(aud) is not str:
        raise KbMalformed("RFC 9901 §4.3: 'aud' is a single string")
    if aud != expected.aud:
        raise KbWrongAud("RFC 9901 §7.3 step 5; OpenID4VP 1.0 §B.3.6: our client identifier")
    sd_hash = claims.get("sd_hash")
    if type(sd_hash) is not str:
        raise KbMalformed("RFC 9901 §4.3: 'sd_hash' is a string")
    if sd_hash != digest_of(signed_prefix, hash_alg):
        raise KbBadSdHash("RFC 9901 §4.3.1: digest of the SD-JWT as received")
    return claims
