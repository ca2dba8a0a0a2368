"""Granted items as they travel through the relay: signed by the citizen's wallet, sealed to
the agency (``specs/grant.md`` §4).

The wallet signs a small statement about the item (which grant, which item, which version,
its media type and the SHA-256 of its content) as a compact JWS (EdDSA, ``typ``
``kluis-grant-item+jwt``) with the grant's own Ed25519 key, puts that token and the content
into one JSON document, and seals the document to the agency's X25519 public key with a
libsodium sealed box (X25519 + XSalsa20-Poly1305, pynacl). The relay stores only the sealed
bytes: it can neither read them nor, lacking the grant's signing key, forge or swap them
without the agency noticing. ``seal_item`` and ``open_item`` are the pair.

The signature is needed because a sealed box is anonymous: anyone who knows the agency's
public key (the relay included) can seal something to it. The agency learns the grant's
public signing key from the grant notice, which reaches it without passing through the relay.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from vault import InvalidInput, KluisError, VerificationFailed
from verifiers._document import format_timestamp
from verifiers.jws import (
    Alg,
    SigningKey,
    VerifyingKey,
    b64url_decode,
    b64url_encode,
    encode_json,
    parse_json_object,
    sign_jws,
    verify_jws,
)

TYP = "kluis-grant-item+jwt"
SPEC = "specs/grant.md"
MAX_SEALED_BYTES = 16 * 1024 * 1024
"""Nothing larger is ever opened (the relay's own limit is far lower)."""
ITEM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$"
"""An item id at the relay: URL-safe without escaping (RFC 3986 §2.3 unreserved)."""
_ITEM = re.compile(ITEM_PATTERN)
_GRANT = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}"
    r"(?:;[ A-Za-z0-9!#$&^_.+=-]{1,64}){0,4}$"
)
_X25519 = 32


class CannotOpen(VerificationFailed):
    code = "grant.cannot_open"
    en = "The granted item cannot be opened with this key. Use the key registered for grants."
    nl = "Het gedeelde gegeven is met deze sleutel niet te openen. Gebruik de sleutel voor inzage."


class BadItem(VerificationFailed):
    code = "grant.bad_item"
    en = (
        "The granted item is not what the citizen's wallet sealed for this grant. "
        "Do not use it, and report it to the relay's operator."
    )
    nl = (
        "Het gedeelde gegeven is niet wat de wallet van de burger voor deze machtiging "
        "verzegelde. Gebruik het niet en meld het aan de beheerder van de relay."
    )


class BadEncryptionKey(InvalidInput):
    code = "grant.bad_encryption_key"
    en = "The key is not an X25519 key in JWK form. Use the agency's grant encryption key."
    nl = (
        "De sleutel is geen X25519-sleutel in JWK-vorm. "
        "Gebruik de inzagesleutel van de organisatie."
    )


@dataclass(frozen=True)
class GrantedItem:
    """One version of one granted item, as the agency receives it after opening."""

    grant: str
    item: str
    version: int
    media_type: str
    content: bytes
    sealed_at: datetime

    @property
    def sha256(self) -> str:
        """base64url SHA-256 of the content (what the wallet signed)."""
        return b64url_encode(hashlib.sha256(self.content).digest())


@dataclass(frozen=True, eq=False)
class EncryptionKey:
    """An agency's X25519 key pair for grants (private half only at the agency)."""

    private: PrivateKey

    @classmethod
    def generate(cls) -> EncryptionKey:
        """A fresh key pair from libsodium's random source."""
        return cls(PrivateKey.generate())

    @property
    def public_bytes(self) -> bytes:
        return bytes(self.private.public_key)


def format_encryption_jwk(key: EncryptionKey | bytes, *, kid: str | None = None,
                          private: bool = False) -> dict[str, str]:
    """The X25519 key as an RFC 8037 §2 OKP JWK: the public half (``x``), and ``d`` only
    when ``private`` is asked for and ``key`` has it."""
    public = key if isinstance(key, bytes) else key.public_bytes
    jwk = {"kty": "OKP", "crv": "X25519", "x": b64url_encode(public)}
    if kid is not None:
        jwk["kid"] = kid
    if private:
        if not isinstance(key, EncryptionKey):
            raise BadEncryptionKey("RFC 8037 §2: no private half to write")
        jwk["d"] = b64url_encode(bytes(key.private))
    return jwk


def parse_encryption_jwk(jwk: object) -> bytes:
    """The 32 bytes of an X25519 public key in OKP JWK ``jwk`` (RFC 8037 §2).

    Raises ``grant.bad_encryption_key``, also for a JWK that carries its private half ``d``.
    """
    if isinstance(jwk, dict) and "d" in jwk:
        raise BadEncryptionKey("RFC 8037 §2: a public JWK has no d")
    return _okp_member(jwk, "x")


def parse_private_encryption_jwk(jwk: object) -> EncryptionKey:
    """The X25519 key pair in private OKP JWK ``jwk`` (``x`` and ``d``). Raises
    ``grant.bad_encryption_key`` (without key material) when ``d`` is missing or does not
    belong to ``x``."""
    public = _okp_member(jwk, "x")
    key = EncryptionKey(PrivateKey(_okp_member(jwk, "d")))
    if not hmac.compare_digest(key.public_bytes, public):
        raise BadEncryptionKey("RFC 8037 §2: d does not belong to x")
    return key


def _okp_member(jwk: object, name: str) -> bytes:
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "X25519":
        raise BadEncryptionKey("RFC 8037 §2: kty OKP and crv X25519")
    value = jwk.get(name)
    try:
        raw = b64url_decode(value, name) if isinstance(value, str) else b""
    except KluisError:
        raw = b""
    if len(raw) != _X25519:
        raise BadEncryptionKey(f"RFC 8037 §2: {name} is 32 bytes of base64url")
    return raw


def seal_item(item: GrantedItem, *, signer: SigningKey, recipient: bytes) -> bytes:
    """``item`` signed with the grant's Ed25519 key ``signer`` and sealed to the agency's
    X25519 public key ``recipient`` (``specs/grant.md`` §4). Raises ``grant.bad_item`` when
    the item's names are not valid, ``grant.bad_encryption_key`` for a bad recipient key."""
    _check_names(item.grant, item.item, item.version, item.media_type)
    if signer.alg is not Alg.EDDSA:
        raise BadItem(f"{SPEC} §4: items are signed with Ed25519 (EdDSA)")
    if len(recipient) != _X25519:
        raise BadEncryptionKey("RFC 7748 §5: an X25519 public key is 32 bytes")
    statement = {
        "grant": item.grant,
        "item": item.item,
        "version": item.version,
        "media_type": item.media_type,
        "size": len(item.content),
        "sha256": item.sha256,
        "sealed_at": format_timestamp(item.sealed_at),
    }
    token = sign_jws({"alg": Alg.EDDSA.value, "typ": TYP}, statement, signer)
    document = encode_json({"content": b64url_encode(item.content), "token": token})
    return bytes(SealedBox(PublicKey(recipient)).encrypt(document))


def open_item(
    sealed: bytes,
    *,
    key: EncryptionKey,
    wallet_key: VerifyingKey,
    grant: str,
    item: str,
    version: int | None = None,
) -> GrantedItem:
    """The item in ``sealed`` once it opens with the agency's ``key``, its statement verifies
    with the grant's ``wallet_key`` (from the grant notice) and names this ``grant``, ``item``
    and (when given, as the relay said) ``version``, and the content matches its hash.

    Raises ``grant.cannot_open`` (nothing more is said about a box that does not open) or
    ``grant.bad_item`` naming the rule broken.
    """
    if len(sealed) > MAX_SEALED_BYTES:
        raise BadItem(f"{SPEC} §4: at most {MAX_SEALED_BYTES} bytes")
    try:
        document = SealedBox(key.private).decrypt(sealed)
    except CryptoError:
        raise CannotOpen() from None
    try:
        outer = parse_json_object(document, "sealed document")
        token, text = outer.get("token"), outer.get("content")
        if set(outer) != {"content", "token"} or not isinstance(token, str) \
                or not isinstance(text, str):
            raise BadItem(f"{SPEC} §4: the sealed document is {{content, token}}")
        content = b64url_decode(text, "content")
        signed = verify_jws(token, wallet_key, frozenset({Alg.EDDSA}))
    except BadItem:
        raise
    except KluisError as error:
        raise BadItem(f"{SPEC} §4: {error.code}: {error.detail}") from None
    if signed.header.get("typ") != TYP:
        raise BadItem(f"{SPEC} §4: typ is {TYP}")
    return _statement(signed.payload, content, grant=grant, item=item, version=version)


def _statement(
    claims: dict[str, Any], content: bytes, *, grant: str, item: str, version: int | None
) -> GrantedItem:
    names = {"grant", "item", "version", "media_type", "size", "sha256", "sealed_at"}
    if set(claims) != names:
        raise BadItem(f"{SPEC} §4: the statement has exactly {sorted(names)}")
    if claims["grant"] != grant or claims["item"] != item:
        raise BadItem(f"{SPEC} §4: the item was sealed for another grant or item")
    if version is not None and claims["version"] != version:
        raise BadItem(f"{SPEC} §4: the relay's version is not the sealed one")
    try:
        _check_names(grant, item, claims["version"], claims["media_type"])
    except BadItem:
        raise BadItem(f"{SPEC} §4: the statement's version or media type is malformed") from None
    digest = b64url_encode(hashlib.sha256(content).digest())
    if claims["size"] != len(content) or not isinstance(claims["sha256"], str) \
            or not hmac.compare_digest(claims["sha256"], digest):
        raise BadItem(f"{SPEC} §4: the content does not match its signed hash")
    try:
        sealed_at = datetime.strptime(str(claims["sealed_at"]), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise BadItem(f"{SPEC} §4: sealed_at is YYYY-MM-DDThh:mm:ssZ") from None
    return GrantedItem(grant, item, claims["version"], claims["media_type"], content,
                       sealed_at.replace(tzinfo=UTC))


def _check_names(grant: object, item: object, version: object, media_type: object) -> None:
    if not isinstance(grant, str) or not _GRANT.match(grant):
        raise BadItem(f"{SPEC} §2: a grant id is 22-64 base64url characters")
    if not isinstance(item, str) or not _ITEM.match(item):
        raise BadItem(f"{SPEC} §2: an item id is 1-64 unreserved URL characters")
    if type(version) is not int or not 1 <= version <= 2**53 - 1:
        raise BadItem(f"{SPEC} §4: a version is a positive integer")
    if not isinstance(media_type, str) or not _MEDIA_TYPE.match(media_type):
        raise BadItem("RFC 6838 §4.2: media_type is type/subtype")
