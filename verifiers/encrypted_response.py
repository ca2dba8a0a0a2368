"""Encrypted OpenID4VP responses (``direct_post.jwt``, OpenID4VP 1.0 §8.3; HAIP 1.0 §5):
an unsigned JWT encrypted to the verifier's ephemeral key, ``alg`` ``ECDH-ES`` on P-256 and
``enc`` ``A128GCM`` or ``A256GCM``, via jwcrypto.

The verifier makes a fresh key per request (``new_response_key``) and puts its public half in
the request's ``client_metadata.jwks`` with ``encrypted_response_enc_values_supported``
(``response_metadata``). The wallet seals the response parameters to it (``seal_response``),
the verifier opens them (``open_response``). Both sides accept exactly this profile: any other
``alg``, ``enc``, a compressed (``zip``) or ``crit`` header is refused before anything is
decrypted.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jwcrypto.common import JWException
from jwcrypto.jwe import JWE
from jwcrypto.jwk import JWK

from vault import InvalidInput, VerificationFailed
from verifiers.jws import Malformed as JwsMalformed
from verifiers.jws import b64url_decode, load_json

ALG = "ECDH-ES"
ENC_VALUES: tuple[str, ...] = ("A128GCM", "A256GCM")
"""What kluis's verifier lists in ``encrypted_response_enc_values_supported`` (HAIP: both)."""
DEFAULT_ENC = "A128GCM"
"""OpenID4VP 1.0 §5.1: the ``enc`` to use when the verifier lists none."""
MAX_RESPONSE_BYTES = 512 * 1024
SPEC = "OpenID4VP 1.0 §8.3"


class UnsupportedEncryption(InvalidInput):
    code = "vp.unsupported_encryption"
    en = "The organisation asks for an encrypted answer in a way kluis does not support."
    nl = "De organisatie wil een versleuteld antwoord op een manier die kluis niet kent."


class BadJwe(InvalidInput):
    code = "vp.bad_jwe"
    en = "The encrypted answer is not in the agreed form. Send it again with the right encryption."
    nl = (
        "Het versleutelde antwoord heeft niet de afgesproken vorm. "
        "Stuur het opnieuw, goed versleuteld."
    )


class Undecryptable(VerificationFailed):
    code = "vp.undecryptable"
    en = "The encrypted answer could not be opened: it was changed or encrypted to another key."
    nl = (
        "Het versleutelde antwoord kon niet worden geopend: het is veranderd of voor een "
        "andere sleutel versleuteld."
    )


class BadResponse(InvalidInput):
    code = "vp.bad_response"
    en = "The answer does not hold the parameters of an OpenID4VP response. Send a correct one."
    nl = (
        "Het antwoord bevat niet de gegevens van een OpenID4VP-antwoord. "
        "Stuur een correct antwoord."
    )


@dataclass(frozen=True)
class ResponseKey:
    """A verifier's ephemeral response key for one request: private, P-256, ``kid`` random.

    ``private_json`` is what the verifier keeps until the request ends (never logged)."""

    kid: str
    jwk: JWK = field(repr=False)

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK for ``client_metadata.jwks``: ``kid``, ``use`` ``enc``, ``alg``."""
        public: dict[str, Any] = self.jwk.export_public(as_dict=True)
        return {**public, "kid": self.kid, "use": "enc", "alg": ALG}

    def private_json(self) -> str:
        return str(self.jwk.export_private())


def new_response_key() -> ResponseKey:
    """A fresh P-256 key for one request, with a random 128-bit ``kid``."""
    kid = secrets.token_urlsafe(16)
    return ResponseKey(kid, JWK.generate(kty="EC", crv="P-256", kid=kid, use="enc", alg=ALG))


def parse_response_key(text: str) -> ResponseKey:
    """The key ``ResponseKey.private_json`` wrote. Raises ``vp.bad_jwe`` (a damaged store)."""
    try:
        jwk = JWK.from_json(text)
    except (JWException, ValueError, TypeError):
        raise BadJwe("RFC 7517: the stored response key is not a JWK") from None
    kid = jwk.get("kid")
    if not jwk.has_private or jwk.get("crv") != "P-256" or type(kid) is not str:
        raise BadJwe("RFC 7518 §6.2: the stored response key is a private P-256 key")
    return ResponseKey(kid, jwk)


def response_metadata(key: ResponseKey) -> dict[str, Any]:
    """The ``client_metadata`` members that ask for an encrypted response to ``key``."""
    return {"jwks": {"keys": [key.public_jwk()]},
            "encrypted_response_enc_values_supported": list(ENC_VALUES)}


def seal_response(payload: Mapping[str, Any], client_metadata: Mapping[str, Any] | None) -> str:
    """The compact JWE of the response parameters ``payload`` to the verifier's key in
    ``client_metadata`` (OpenID4VP 1.0 §8.3): the first key that is EC P-256 with ``alg``
    ``ECDH-ES`` and a ``kid`` (echoed in the header); ``enc`` ``A256GCM`` when offered, else
    ``A128GCM`` (HAIP 1.0 §5 prefers the former).

    Raises ``vp.unsupported_encryption`` when no key or ``enc`` fits, ``vp.bad_response``
    when ``payload`` is not JSON.
    """
    metadata = client_metadata or {}
    key, kid = _encryption_key(metadata.get("jwks"))
    offered = metadata.get("encrypted_response_enc_values_supported", [DEFAULT_ENC])
    if not isinstance(offered, list) or not offered:
        raise UnsupportedEncryption(f"{SPEC}: encrypted_response_enc_values_supported")
    enc = next((e for e in ("A256GCM", "A128GCM") if e in offered), None)
    if enc is None:
        raise UnsupportedEncryption("HAIP 1.0 §5: enc is A128GCM or A256GCM")
    try:
        plaintext = json.dumps(dict(payload), separators=(",", ":"), ensure_ascii=False,
                               allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        raise BadResponse("RFC 8259: the response parameters are JSON") from None
    token = JWE(plaintext, protected=json.dumps({"alg": ALG, "enc": enc, "kid": kid}))
    token.add_recipient(key)
    return str(token.serialize(compact=True))


def _encryption_key(jwks: object) -> tuple[JWK, str]:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise UnsupportedEncryption(f"{SPEC}: client_metadata.jwks holds the keys")
    for item in keys[:16]:
        if not isinstance(item, Mapping) or "d" in item:
            continue
        if (item.get("kty"), item.get("crv"), item.get("alg")) != ("EC", "P-256", ALG):
            continue
        kid = item.get("kid")
        if type(kid) is not str or not kid or item.get("use", "enc") != "enc":
            continue
        try:
            return JWK(**{n: item[n] for n in ("kty", "crv", "x", "y") if n in item}), kid
        except (JWException, ValueError, TypeError):
            continue
    raise UnsupportedEncryption("HAIP 1.0 §5: an ECDH-ES key on P-256 with a kid")


def response_kid(token: str) -> str:
    """The ``kid`` in the protected header of compact JWE ``token``, read without decrypting
    (to find the request it answers). Raises ``vp.bad_jwe``."""
    return str(_header(token)["kid"])


def _header(token: str) -> dict[str, Any]:
    if len(token) > MAX_RESPONSE_BYTES or token.count(".") != 4:
        raise BadJwe("RFC 7516 §7.1: a compact JWE has five parts")
    protected, *rest = token.split(".")
    try:
        header = load_json(b64url_decode(protected, "header").decode("utf-8"))
    except (JwsMalformed, UnicodeDecodeError, ValueError, RecursionError):
        raise BadJwe("RFC 7516 §7.1: the protected header is base64url JSON") from None
    try:
        # jwcrypto reads a last character with stray unused bits as if they were zero, so a
        # changed character would still decrypt: one JWE must have exactly one spelling.
        for part in rest:
            b64url_decode(part)
    except JwsMalformed:
        raise BadJwe("RFC 7515 §2: every part is canonical base64url") from None
    if not isinstance(header, dict):
        raise BadJwe("RFC 7516 §4: the protected header is a JSON object")
    if header.get("alg") != ALG:
        raise BadJwe(f"HAIP 1.0 §5: alg is {ALG}")
    if header.get("enc") not in ENC_VALUES:
        raise BadJwe("HAIP 1.0 §5: enc is A128GCM or A256GCM")
    if "zip" in header or "crit" in header:
        raise BadJwe("RFC 7516 §4.1.3: no compression, no critical extensions")
    if type(header.get("kid")) is not str or not header["kid"]:
        raise BadJwe(f"{SPEC}: the header echoes the key's kid")
    return header


def open_response(
    token: str, key: ResponseKey, *, enc_values: Sequence[str] = ENC_VALUES
) -> dict[str, Any]:
    """The response parameters sealed in ``token`` for ``key``.

    Checks the header first (``alg`` ECDH-ES, ``enc`` in ``enc_values``, ``kid`` = the key's,
    no ``zip`` or ``crit``), then decrypts (the AES-GCM tag covers the header and the
    ciphertext), then reads the payload as one JSON object. Raises ``vp.bad_jwe``,
    ``vp.undecryptable`` (changed, or encrypted to another key) and ``vp.bad_response``.
    """
    header = _header(token)
    if header["enc"] not in enc_values:
        raise BadJwe(f"{SPEC}: enc is one the request offered")
    if header["kid"] != key.kid:
        raise Undecryptable(f"{SPEC}: encrypted to another key")
    opened = JWE(algs=[ALG, *enc_values])
    try:
        opened.deserialize(token, key.jwk)
        plaintext = opened.payload
    except (JWException, ValueError, TypeError):
        raise Undecryptable("RFC 7516 §5.2: the JWE does not decrypt") from None
    try:
        payload = load_json(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadResponse("RFC 7519 §7.2: the JWT payload is UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise BadResponse(f"{SPEC}: the payload holds the response parameters as an object")
    return payload
