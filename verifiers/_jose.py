"""Compact JWS for kluis's own signed documents (trust lists, receipts), through jwcrypto.

Not the hot path (that is ``verifiers.jws``): these documents are signed and checked a few
times a day, so jwcrypto's generality is worth its cost here. The header is read and judged
before jwcrypto sees the token: the algorithm must be ES256 or EdDSA and fit the key, ``typ``
must be the one expected, ``kid`` must name the key, and ``crit`` is refused (we understand no
extensions). Base64url must be canonical, so no two token strings carry the same signature.

Failures raise :class:`JoseFailure` with a :class:`Reason`; each public caller turns it into
its own coded error, so the code names the artefact (``trustlist.bad_signature``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jwcrypto.common import JWException
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

# RFC 7518 §3.4 (ES256 on P-256) and RFC 8037 §3.1 (EdDSA on Ed25519): nothing else, ever.
KEY_TYPES: dict[str, tuple[str, str]] = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class Reason(StrEnum):
    MALFORMED = "malformed"
    BAD_ALGORITHM = "bad_algorithm"
    WRONG_TYPE = "wrong_type"
    WRONG_KEY = "wrong_key"
    BAD_SIGNATURE = "bad_signature"
    UNSUPPORTED_KEY = "unsupported_key"


class JoseFailure(Exception):
    """A private signal: the caller re-raises it as its own KluisError."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Opened:
    """A verified compact JWS: its protected header and the payload bytes it signs."""

    header: Mapping[str, Any]
    payload: bytes


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Strict unpadded base64url: the alphabet only, and the canonical encoding of its bytes."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise JoseFailure(Reason.MALFORMED, "RFC 7515 §2: not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JoseFailure(Reason.MALFORMED, "RFC 7515 §2: not base64url") from None
    if b64url(data) != text:  # unused trailing bits set: another string for the same bytes
        raise JoseFailure(Reason.MALFORMED, "RFC 7515 §2: non-canonical base64url")
    return data


def algorithm_for(key: JWK) -> str:
    """The one algorithm kluis uses with ``key``: ES256 for P-256, EdDSA for Ed25519."""
    kind = (key.get("kty"), key.get("crv"))
    for alg, expected in KEY_TYPES.items():
        if kind == expected:
            return alg
    raise JoseFailure(Reason.UNSUPPORTED_KEY, "kluis signs with P-256 (ES256) or Ed25519 (EdDSA)")


def key_id(key: JWK) -> str:
    """The key's ``kid``, or its RFC 7638 thumbprint when it has none."""
    kid = key.get("kid")
    return kid if isinstance(kid, str) and kid else str(key.thumbprint())


def sign_compact(payload: bytes, key: JWK, *, typ: str) -> str:
    """A compact JWS over ``payload`` with header ``{alg, typ, kid}`` (RFC 7515 §7.1)."""
    if not key.has_private:
        raise JoseFailure(Reason.UNSUPPORTED_KEY, "signing needs a private key")
    alg = algorithm_for(key)
    header = {"alg": alg, "kid": key_id(key), "typ": typ}
    jws = JWS(payload)
    jws.add_signature(key, alg=alg, protected=json.dumps(header, separators=(",", ":")))
    return str(jws.serialize(compact=True))


def verify_compact(token: str, key: JWK, *, typ: str, max_length: int) -> Opened:
    """The header and payload of ``token`` once its signature verifies with ``key``.

    Raises JoseFailure: MALFORMED (not three canonical base64url parts, header not a JSON
    object, too long), BAD_ALGORITHM (not ES256/EdDSA, or not the key's), WRONG_TYPE (``typ``),
    WRONG_KEY (``kid`` names another key), BAD_SIGNATURE (RFC 7515 §5.2 step 8).
    """
    if not isinstance(token, str) or len(token) > max_length:
        raise JoseFailure(Reason.MALFORMED, f"kluis limit: a token is a string of <= {max_length}")
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseFailure(Reason.MALFORMED, "RFC 7515 §7.1: compact JWS has three parts")
    header = _header(unb64url(parts[0]))
    payload = unb64url(parts[1])
    unb64url(parts[2])
    _check_header(header, key, typ)
    jws = JWS()
    try:
        jws.deserialize(token)
        jws.allowed_algs = [header["alg"]]
        jws.verify(key, alg=header["alg"])
    except (JWException, ValueError, TypeError):
        raise JoseFailure(Reason.BAD_SIGNATURE, "RFC 7515 §5.2 step 8: signature") from None
    return Opened(header=header, payload=payload)


def _header(raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise JoseFailure(Reason.MALFORMED, "RFC 7515 §5.2 step 3: header is not JSON") from None
    if not isinstance(header, dict):
        raise JoseFailure(Reason.MALFORMED, "RFC 7515 §5.2 step 4: header is a JSON object")
    return header


def _check_header(header: Mapping[str, Any], key: JWK, typ: str) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in KEY_TYPES:
        raise JoseFailure(Reason.BAD_ALGORITHM, "RFC 7515 §10.7: alg is not ES256 or EdDSA")
    if "crit" in header:
        raise JoseFailure(Reason.MALFORMED, "RFC 7515 §4.1.11: no crit extension is understood")
    if header.get("typ") != typ:
        raise JoseFailure(Reason.WRONG_TYPE, f"RFC 7515 §4.1.9: typ must be {typ}")
    if header.get("kid") != key_id(key):
        raise JoseFailure(Reason.WRONG_KEY, "RFC 7515 §4.1.4: kid names another key")
    if KEY_TYPES[alg] != (key.get("kty"), key.get("crv")):
        raise JoseFailure(Reason.BAD_ALGORITHM, "RFC 7515 §10.7: alg does not fit the key")
