"""Signed HTTP requests: the kluis profile of HTTP Message Signatures (RFC 9421) with Ed25519.

A wallet signs every mailbox request to its relay with its mailbox key, and (later) an agency
signs every grant fetch with its registered key. Both sides use this module: ``sign_request``
and ``verify_request``. RFC 9421 itself comes from the ``http-message-signatures`` package;
this module fixes the profile and turns every failure into a kluis error.

The profile:

- algorithm ``ed25519`` (RFC 9421 §3.3.6); ``keyid`` is the RFC 7638 JWK thumbprint of the
  public key, so a key names itself;
- covered components ``@method``, ``@authority``, ``@path``, ``@query`` (RFC 9421 §2.2), and
  ``content-digest`` (RFC 9530, ``sha-256``) whenever the request has a body. ``@scheme`` is
  not covered, so the signature survives a TLS-terminating proxy that keeps ``Host``;
- parameters ``created``, ``keyid``, ``nonce`` and ``tag`` are required (RFC 9421 §2.3);
  ``created`` must be within ``window_seconds`` of the verifier's clock, either way; ``tag``
  separates uses (a wallet's relay request cannot be replayed as an agency fetch);
- the nonce is 128 random bits. Refusing a nonce seen before is the verifier's storage's job
  (it must outlive the window); ``nonce_expiry`` says how long to keep one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

from vault import InvalidInput, NotPermitted, VerificationFailed

LABEL = "kluis"
COMPONENTS: tuple[str, ...] = ("@method", "@authority", "@path", "@query")
DIGEST_COMPONENT = "content-digest"
DEFAULT_WINDOW_SECONDS = 60
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_KEYID = re.compile(r"^[A-Za-z0-9_-]{43}$")


class Unsigned(NotPermitted):
    code = "httpsig.unsigned"
    en = "This request is not signed. Sign it with your key and send it again."
    nl = "Dit verzoek is niet ondertekend. Onderteken het met uw sleutel en stuur het opnieuw."


class BadSignature(VerificationFailed):
    code = "httpsig.bad_signature"
    en = "The signature on this request is not valid. Sign the request again."
    nl = "De handtekening op dit verzoek is niet geldig. Onderteken het verzoek opnieuw."


class DigestMismatch(VerificationFailed):
    code = "httpsig.digest_mismatch"
    en = "The request body was changed after it was signed. Send the request again."
    nl = "De inhoud van het verzoek is na het ondertekenen veranderd. Stuur het opnieuw."


class StaleSignature(VerificationFailed):
    code = "httpsig.stale"
    en = "The signature is too old or dated in the future. Check your clock and try again."
    nl = "De handtekening is te oud of ligt in de toekomst. Controleer uw klok en probeer opnieuw."


class UnknownKey(NotPermitted):
    code = "httpsig.unknown_key"
    en = "The key that signed this request is not known here. Register it first."
    nl = "De sleutel waarmee dit verzoek is ondertekend is hier niet bekend. Registreer hem eerst."


class BadKey(InvalidInput):
    code = "httpsig.bad_key"
    en = "The public key is not an Ed25519 key in JWK form. Send a valid key."
    nl = "De publieke sleutel is geen Ed25519-sleutel in JWK-vorm. Stuur een geldige sleutel."


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as signed and verified: absolute URL, header lines in order, body."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """All lines of header ``name`` joined with ", " (RFC 9110 §5.3), or None."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass(frozen=True)
class SignedBy:
    """What a verified signature establishes: who signed, with which nonce, when, for what."""

    keyid: str
    nonce: str
    created: datetime
    tag: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def format_ed25519_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as an RFC 8037 OKP JWK (``kty``, ``crv``, ``x``)."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def parse_ed25519_jwk(jwk: object) -> Ed25519PublicKey:
    """An Ed25519 public key from an RFC 8037 JWK. Raises ``BadKey``.

    Private key material (``d``) is refused: a public key is all a server may ever hold.
    """
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise BadKey("RFC 8037 §2: kty must be OKP and crv Ed25519")
    if "d" in jwk:
        raise BadKey("RFC 8037 §2: a public JWK has no d")
    x = jwk.get("x")
    if not isinstance(x, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}", x):
        raise BadKey("RFC 8037 §2: x must be 32 bytes, base64url without padding")
    try:
        return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "="))
    except (ValueError, binascii.Error):
        raise BadKey("RFC 8037 §2: x is not an Ed25519 public key") from None


def key_thumbprint(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 §3 SHA-256 thumbprint of the key's JWK, base64url: the ``keyid``."""
    jwk = format_ed25519_jwk(public_key)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def nonce_expiry(signed: SignedBy, *, window_seconds: int = DEFAULT_WINDOW_SECONDS) -> datetime:
    """Until when a verifier must remember ``signed.nonce``: after it, ``created`` is stale.

    Twice the window, so nodes whose clocks differ by up to a window still refuse a replay.
    """
    return signed.created + timedelta(seconds=2 * window_seconds)


class _Headers:
    """The header view the library reads and writes: ordered lines, case-insensitive names."""

    def __init__(self, lines: Iterable[tuple[str, str]]) -> None:
        self.lines = list(lines)

    def items(self) -> list[tuple[str, str]]:
        return list(self.lines)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self.lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(k.lower() == name.lower() for k, _ in self.lines)

    def __setitem__(self, name: str, value: str) -> None:
        del self[name]
        self.lines.append((name, value))

    def __delitem__(self, name: str) -> None:
        self.lines = [(k, v) for k, v in self.lines if k.lower() != name.lower()]


@dataclass
class _Message:
    method: str
    url: str
    headers: _Headers


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, lookup: Callable[[str], Ed25519PublicKey | None]) -> None:
        self._lookup = lookup
        self.unknown = False

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        key = self._lookup(key_id) if _KEYID.match(key_id) else None
        self.unknown = key is None
        return key

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        raise UnknownKey("verifier has no private keys")


class _Signer(HTTPSignatureKeyResolver):
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return self._key.public_key()

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return self._key


class _WindowVerifier(HTTPMessageVerifier):
    """The library's verifier with our clock and window for ``created`` and ``expires``."""

    def __init__(self, keys: _Keys, *, now: datetime, window: timedelta) -> None:
        super().__init__(signature_algorithm=algorithms.ED25519, key_resolver=keys)
        self._now = now
        self._window = window

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        created = sig_input.params.get("created")
        if type(created) is not int:
            raise BadSignature("RFC 9421 §2.3: created is required and an integer")
        moment = _from_timestamp(created)
        if abs(moment - self._now) > self._window:
            seconds = int(self._window.total_seconds())
            raise StaleSignature(f"RFC 9421 §3.2: created is not within {seconds} s of now")
        expires = sig_input.params.get("expires")
        if expires is None:
            return
        if type(expires) is not int or _from_timestamp(expires) < self._now:
            raise StaleSignature("RFC 9421 §3.2: expires has passed")


def _from_timestamp(value: int) -> datetime:
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise BadSignature("RFC 9421 §2.3: created is not a time") from None


def _covered(body: bytes) -> Sequence[str]:
    return (*COMPONENTS, DIGEST_COMPONENT) if body else COMPONENTS


def sign_request(
    request: HttpRequest,
    key: Ed25519PrivateKey,
    *,
    tag: str,
    now: datetime,
    _nonce: str | None = None,
) -> HttpRequest:
    """``request`` with ``Signature-Input``, ``Signature`` (and ``Content-Digest`` when it has a
    body) added, signed by ``key`` under the kluis profile (RFC 9421 §3.1).

    Existing signature and digest headers are replaced. Raises ``BadSignature`` when the
    request cannot be signed (a relative or malformed URL, a lowercase method).
    """
    headers = _Headers(
        (k, v) for k, v in request.headers
        if k.lower() not in ("signature", "signature-input", "content-digest")
    )
    message = _Message(request.method, request.url, headers)
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Signer(key))
    try:
        signer.sign(
            message,
            key_id=key_thumbprint(key.public_key()),
            created=now,
            nonce=_nonce if _nonce is not None else secrets.token_urlsafe(16),
            label=LABEL,
            tag=tag,
            covered_component_ids=_covered(request.body),
            body=request.body if request.body else None,
        )
    except HTTPMessageSignaturesException as error:
        raise BadSignature(f"RFC 9421 §2: {error}") from None
    return HttpRequest(request.method, request.url, tuple(headers.lines), request.body)


def verify_request(
    request: HttpRequest,
    *,
    public_key: Callable[[str], Ed25519PublicKey | None],
    tag: str,
    now: datetime,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
) -> SignedBy:
    """Who signed ``request`` under the kluis profile with tag ``tag`` (RFC 9421 §3.2).

    ``public_key`` maps a ``keyid`` to its registered key, or None. The caller must still
    refuse a nonce it has seen before. Raises ``Unsigned``, ``UnknownKey``, ``StaleSignature``,
    ``BadSignature``, ``DigestMismatch``.
    """
    if request.header("signature-input") is None or request.header("signature") is None:
        raise Unsigned("RFC 9421 §4: Signature-Input and Signature are required")
    keys = _Keys(public_key)
    verifier = _WindowVerifier(keys, now=now, window=timedelta(seconds=window_seconds))
    message = _Message(request.method, request.url, _Headers(request.headers))
    try:
        (result,) = verifier.verify(
            message, max_age=None, expect_tag=tag, require_components=_covered(request.body)
        )
    except InvalidSignature as error:
        if keys.unknown:
            raise UnknownKey("RFC 9421 §3.2: keyid is not registered") from None
        reason = str(error) or "the signature does not verify"
        raise BadSignature(f"RFC 9421 §3.2: {reason}") from None
    except (HTTPMessageSignaturesException, ValueError, TypeError) as error:
        raise BadSignature(f"RFC 9421 §3.2: {error}") from None
    _check_digest(result.covered_components, request.body)
    nonce = result.parameters.get("nonce")
    if not isinstance(nonce, str) or not _NONCE.match(nonce):
        raise BadSignature("RFC 9421 §2.3: the kluis profile requires a nonce of 16-128 characters")
    keyid = result.parameters["keyid"]
    created = result.parameters["created"]
    return SignedBy(keyid=str(keyid), nonce=nonce, created=_from_timestamp(int(created)), tag=tag)


def _check_digest(covered: dict[str, str], body: bytes) -> None:
    try:
        checked = ContentDigest.verify_components(covered, body)
    except InvalidSignature:
        raise DigestMismatch("RFC 9530 §2: Content-Digest does not match the body") from None
    if body and not checked:
        raise DigestMismatch("RFC 9530 §2: a body needs a signed Content-Digest")
