"""Compact JWS (RFC 7515) on the hot path: strict base64url, an explicit algorithm allow-list
(ES256 and EdDSA with Ed25519, nothing else), and keys parsed once into small key objects.

Signing and verifying call ``cryptography`` directly, because jwcrypto adds about 100 µs to
every signature and a credential verification needs two. jwcrypto stays where its generality
pays: importing and exporting *private* JWK files. Public JWKs arrive inside every presentation
(``cnf.jwk``), so they are parsed here, strictly, in a few microseconds.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vault import InvalidInput, VerificationFailed


class Alg(StrEnum):
    """The JWS algorithms kluis accepts (HAIP requires ES256; EdDSA is Ed25519 only)."""

    ES256 = "ES256"
    EDDSA = "EdDSA"


ALGORITHMS: frozenset[Alg] = frozenset(Alg)
_ALGS_BY_NAME = {alg.value: alg for alg in Alg}  # a dict lookup; Alg(name) is far slower
_MAC_ALGS = frozenset({"HS256", "HS384", "HS512"})


class Malformed(InvalidInput):
    code = "jws.malformed"
    en = "The signed token is damaged or not in the expected form. Ask the sender for a new one."
    nl = (
        "Het ondertekende bericht is beschadigd of niet in de verwachte vorm. Vraag de "
        "afzender om een nieuw."
    )


class AlgNone(VerificationFailed):
    code = "jws.alg_none"
    en = "The token is not signed (algorithm 'none'). It cannot be trusted."
    nl = "Het bericht is niet ondertekend (algoritme 'none'). Het is niet te vertrouwen."


class AlgMac(VerificationFailed):
    code = "jws.alg_mac"
    en = "The token uses a shared-secret algorithm (HMAC), which is not allowed here."
    nl = (
        "Het bericht gebruikt een algoritme met een gedeeld geheim (HMAC). Dat is hier "
        "niet toegestaan."
    )


class AlgNotAllowed(VerificationFailed):
    code = "jws.alg_not_allowed"
    en = "The token is signed with an algorithm that kluis does not accept (only ES256 and EdDSA)."
    nl = (
        "Het bericht is ondertekend met een algoritme dat kluis niet accepteert (alleen "
        "ES256 en EdDSA)."
    )


class CritNotUnderstood(VerificationFailed):
    code = "jws.crit_not_understood"
    en = "The token demands extensions that kluis does not understand, so it is refused."
    nl = "Het bericht eist uitbreidingen die kluis niet kent. Daarom wordt het geweigerd."


class BadSignature(VerificationFailed):
    code = "jws.bad_signature"
    en = "The signature does not verify. The token was changed or signed with another key."
    nl = (
        "De handtekening klopt niet. Het bericht is veranderd of met een andere sleutel "
        "ondertekend."
    )


class BadKey(InvalidInput):
    code = "jws.bad_key"
    en = "The key is not a valid P-256 or Ed25519 JSON Web Key. Check the key file."
    nl = (
        "De sleutel is geen geldige P-256- of Ed25519-sleutel (JWK). Controleer het "
        "sleutelbestand."
    )


class KeyAlgMismatch(VerificationFailed):
    code = "jws.key_alg_mismatch"
    en = "The token names a signature algorithm that does not fit the signer's key."
    nl = (
        "Het bericht noemt een handtekeningalgoritme dat niet past bij de sleutel van de "
        "ondertekenaar."
    )


# --- base64url (RFC 7515 §2: no padding; we also refuse non-canonical trailing bits) ---

_TO_URL = bytes.maketrans(b"+/", b"-_")
# base64url -> base64; '+', '/' and '=' become '*', which binascii's strict mode refuses, so one
# C pass both converts and checks the alphabet.
_TO_STD = bytes.maketrans(b"-_+/=", b"+/***")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# For a text of length 4k+2 (4k+3) the last character carries 4 (2) unused bits that must be 0,
# or two different texts would decode to the same bytes and a flipped signature character
# could go unnoticed. Length 4k+1 is impossible: no last character will do.
_CANONICAL_LAST: tuple[frozenset[str], ...] = (
    frozenset(_ALPHABET),
    frozenset(),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x0F == 0),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x03 == 0),
)
_PADDING = (b"", b"", b"==", b"=")


def b64url_encode(data: bytes) -> str:
    """``data`` as unpadded base64url text (RFC 7515 §2)."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str = "base64url") -> bytes:
    """The bytes of unpadded, canonical base64url ``text``.

    Raises ``Malformed`` for padding, characters outside the base64url alphabet, an impossible
    length or non-zero unused bits (RFC 7515 §2, RFC 4648 §5 and §3.5).
    """
    rest = len(text) & 3
    if text and text[-1] not in _CANONICAL_LAST[rest]:
        raise Malformed(f"RFC 4648 §3.5: {what} is not canonical base64url")
    try:  # on every token's hot path: bytes.translate and binascii run in C
        return binascii.a2b_base64(
            text.encode("ascii").translate(_TO_STD) + _PADDING[rest], strict_mode=True
        )
    except (UnicodeEncodeError, binascii.Error):
        raise Malformed(f"RFC 7515 §2: {what} is not unpadded base64url") from None


def _no_constants(name: str) -> Any:
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_no_constants)  # one decoder, not one per call
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def load_json(text: str) -> Any:
    """The JSON value in ``text``, as ``json.loads`` reads it but with NaN and Infinity refused.

    Calls the C scanner directly when ``text`` starts and ends with its value (the usual case):
    ``json.loads`` would add two regular-expression passes and a new decoder per call.
    Raises ``ValueError`` (or ``RecursionError`` for absurd nesting); callers turn those into
    their own error.
    """
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return _DECODER.decode(text)  # raises the proper error, or skips leading whitespace
    return value if end == len(text) else _DECODER.decode(text)


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    """The JSON object in UTF-8 ``data`` (RFC 8259; NaN and Infinity are refused).

    Raises ``Malformed`` when ``data`` is not UTF-8, not JSON, or not an object.
    """
    try:
        value = load_json(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise Malformed(f"RFC 7515 §5.2: {what} is not UTF-8 JSON") from None
    if type(value) is not dict:
        raise Malformed(f"RFC 7515 §5.2: {what} is not a JSON object")
    return value


_ENCODER = json.JSONEncoder(allow_nan=False)


def encode_json(value: object) -> bytes:
    """``value`` as the JSON bytes kluis signs: ``json.dumps``'s default layout (ASCII,
    ``", "`` and ``": "``, as in the RFC 9901 examples), but NaN and Infinity refused.

    Raises ``ValueError``/``TypeError`` for values that are not JSON (callers check first).
    """
    return _ENCODER.encode(value).encode("ascii")


# --- keys ---

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_P256 = ec.SECP256R1()

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    """A public key ready to check signatures: parse it once, use it for every token."""

    alg: Alg
    key: PublicKey = field(repr=False)
    kid: str | None = None
    raw: bytes = field(default=b"", repr=False, compare=False)  # public_bytes(), if known

    def verify(self, signing_input: bytes, signature: bytes) -> None:
        """Return if ``signature`` is this key's JWS signature over ``signing_input``.

        Raises ``BadSignature`` otherwise (RFC 7518 §3.4: ES256 is the 64-byte R || S).
        """
        try:
            if self.alg is Alg.ES256:
                if len(signature) != 64:
                    raise BadSignature("RFC 7518 §3.4: an ES256 signature is 64 bytes")
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                self.key.verify(der, signing_input, _ECDSA_SHA256)  # type: ignore[call-arg]
            else:
                self.key.verify(signature, signing_input)  # type: ignore[call-arg]
        except InvalidSignature:
            raise BadSignature("RFC 7515 §5.2 step 8") from None

    def public_bytes(self) -> bytes:
        """The raw public key (uncompressed point or 32 Ed25519 bytes), for comparing keys."""
        if self.raw:
            return self.raw
        if isinstance(self.key, ed25519.Ed25519PublicKey):
            return self.key.public_bytes_raw()
        return _ec_point(self.key)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key with its algorithm; ``public`` is the matching ``VerifyingKey``."""

    alg: Alg
    key: PrivateKey = field(repr=False)
    public: VerifyingKey = field(repr=False)
    kid: str | None = None

    def sign(self, signing_input: bytes) -> bytes:
        """The JWS signature over ``signing_input`` (ES256: 64-byte R || S, RFC 7518 §3.4)."""
        if self.alg is Alg.ES256:
            r, s = decode_dss_signature(self.key.sign(signing_input, _ECDSA_SHA256))  # type: ignore[call-arg]
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.key.sign(signing_input)  # type: ignore[call-arg]


def _ec_point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _signing_key(alg: Alg, private: PrivateKey, kid: str | None) -> SigningKey:
    public = VerifyingKey(alg, private.public_key(), kid)
    return SigningKey(alg, private, VerifyingKey(alg, public.key, kid, public.public_bytes()), kid)


def generate_signing_key(alg: Alg, *, kid: str | None = None) -> SigningKey:
    """A fresh private key for ``alg`` from the crypto library's random source."""
    if alg is Alg.ES256:
        return _signing_key(alg, ec.generate_private_key(_P256), kid)
    return _signing_key(alg, ed25519.Ed25519PrivateKey.generate(), kid)


def _member(jwk: Mapping[str, Any], name: str, size: int) -> bytes:
    value = jwk.get(name)
    if type(value) is not str:
        raise BadKey(f"RFC 7517 §4: member '{name}' is missing or not a string")
    try:
        raw = b64url_decode(value, name)
    except Malformed:
        raise BadKey(f"RFC 7518 §6.2.1: member '{name}' is not base64url") from None
    if len(raw) != size:
        raise BadKey(f"RFC 7518 §6.2.1: member '{name}' is not {size} bytes")
    return raw


def parse_jwk(jwk: object) -> VerifyingKey:
    """The public key in JWK ``jwk``: EC P-256 (ES256) or OKP Ed25519 (EdDSA).

    Raises ``BadKey`` for any other key type or curve, a member of the wrong size, a point not
    on the curve, an ``alg`` that does not fit, or a private member ``d`` (a public JWK must not
    carry one: RFC 7800 §3.2, RFC 7517 §4).
    """
    if type(jwk) is not dict and not isinstance(jwk, Mapping):  # the ABC check is slow
        raise BadKey("RFC 7517 §4: a JWK is a JSON object")
    if "d" in jwk:
        raise BadKey("RFC 7517 §4: a public JWK must not contain the private member 'd'")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    kid = jwk.get("kid")
    if kid is not None and type(kid) is not str:
        raise BadKey("RFC 7517 §4.5: 'kid' is a string")
    if kty == "EC" and crv == "P-256":
        alg = Alg.ES256
        raw = b"\x04" + _member(jwk, "x", 32) + _member(jwk, "y", 32)
        try:
            key: PublicKey = ec.EllipticCurvePublicKey.from_encoded_point(_P256, raw)
        except ValueError:
            raise BadKey("RFC 7518 §6.2.1: the point is not on the P-256 curve") from None
    elif kty == "OKP" and crv == "Ed25519":
        alg = Alg.EDDSA
        raw = _member(jwk, "x", 32)
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    else:
        raise BadKey("kluis accepts only EC P-256 and OKP Ed25519 keys")
    if "alg" in jwk and jwk["alg"] != alg.value:
        raise BadKey("RFC 7517 §4.4: the key's 'alg' does not fit its type")
    return VerifyingKey(alg, key, kid, raw)


def format_jwk(key: VerifyingKey, *, with_kid: bool = True) -> dict[str, str]:
    """``key`` as a public JWK (members in the order of RFC 7518 §6.2.1 / RFC 8037 §2)."""
    raw = key.public_bytes()
    if key.alg is Alg.ES256:
        x, y = b64url_encode(raw[1:33]), b64url_encode(raw[33:])
        jwk = {"kty": "EC", "crv": "P-256", "x": x, "y": y}
    else:
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    if with_kid and key.kid is not None:
        jwk["kid"] = key.kid
    return jwk


def parse_private_jwk(jwk: object) -> SigningKey:
    """The signing key in private JWK ``jwk`` (P-256 or Ed25519), read through jwcrypto.

    Raises ``BadKey`` when it is not a private P-256 or Ed25519 JWK. Never puts key material
    in the error.
    """
    from jwcrypto.jwk import JWK

    if not isinstance(jwk, Mapping) or type(jwk.get("d")) is not str:
        raise BadKey("RFC 7518 §6.2.2: a private JWK has the member 'd'")
    public = parse_jwk({k: v for k, v in jwk.items() if k != "d"})
    try:
        private = JWK(**jwk).get_op_key("sign")
    except Exception:  # jwcrypto raises many types; the key text must not leak
        raise BadKey("RFC 7517 §4: the private JWK could not be read") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise BadKey("kluis accepts only EC P-256 and OKP Ed25519 keys")
    key = _signing_key(public.alg, private, public.kid)
    if key.public.public_bytes() != public.public_bytes():
        raise BadKey("RFC 7518 §6.2.2: 'd' does not belong to the public key in the JWK")
    return key


def format_private_jwk(key: SigningKey) -> dict[str, str]:
    """``key`` as a private JWK (with ``kid`` when the key has one), written by jwcrypto."""
    from jwcrypto.jwk import JWK

    jwk: dict[str, str] = JWK.from_pyca(key.key).export_private(as_dict=True)
    jwk.pop("kid", None)
    if key.kid is not None:
        jwk["kid"] = key.kid
    return jwk


def thumbprint(key: VerifyingKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256) of ``key``, a good default ``kid``."""
    jwk = format_jwk(key, with_kid=False)
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode("ascii")
    return b64url_encode(hashlib.sha256(canonical).digest())


# --- compact JWS ---


class Jws(NamedTuple):
    """A compact JWS taken apart. Nothing in it is verified until ``verify_jws`` says so.
    (A NamedTuple: two are built per presentation verified, and it is the cheapest record.)"""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse_jws(token: str, what: str = "JWS") -> Jws:
    """The parts of compact JWS ``token`` (RFC 7515 §7.1), decoded but NOT verified.

    Raises ``Malformed`` unless it is three base64url parts whose first two are JSON objects;
    the detail names ``what`` (e.g. "KB-JWT") and the part.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise Malformed(f"RFC 7515 §7.1: a compact {what} has three parts")
    head, body, sig = parts
    try:
        header = parse_json_object(b64url_decode(head, "header"), "header")
        payload = parse_json_object(b64url_decode(body, "payload"), "payload")
        signature = b64url_decode(sig, "signature")
    except Malformed as error:
        raise Malformed(f"{what}: {error.detail}") from None
    return Jws(header, payload, f"{head}.{body}".encode("ascii"), signature)


def check_header(header: Mapping[str, Any], allowed: frozenset[Alg] = ALGORITHMS) -> Alg:
    """The header's algorithm, if it is on the ``allowed`` list.

    Raises ``AlgNone``, ``AlgMac`` or ``AlgNotAllowed`` (RFC 8725 §3.1, RFC 9901 §7.1 step 2),
    and ``CritNotUnderstood`` for any ``crit`` header, since kluis knows no extensions
    (RFC 7515 §4.1.11).
    """
    name = header.get("alg")
    if type(name) is not str:
        raise AlgNotAllowed("RFC 7515 §4.1.1: 'alg' is a string")
    if name == "none":
        raise AlgNone("RFC 9901 §7.1 step 2: 'none' is never accepted")
    if name in _MAC_ALGS:
        raise AlgMac("RFC 9901 §7.1 step 2: MAC algorithms are never accepted")
    if name not in allowed:
        raise AlgNotAllowed(f"RFC 8725 §3.1: algorithm {str(name)[:20]!r} is not on the allow-list")
    if "crit" in header:
        raise CritNotUnderstood("RFC 7515 §4.1.11")
    return _ALGS_BY_NAME[name]


def check_signature(jws: Jws, key: VerifyingKey, alg: Alg) -> None:
    """Return if ``key`` made ``jws``'s signature with ``alg``.

    Raises ``KeyAlgMismatch`` if ``alg`` is not the key's algorithm (RFC 8725 §3.1), and
    ``BadSignature`` if the signature does not verify.
    """
    if key.alg is not alg:
        raise KeyAlgMismatch("RFC 8725 §3.1: the algorithm must fit the key")
    key.verify(jws.signing_input, jws.signature)


def sign_jws(header: Mapping[str, Any], payload: Mapping[str, Any], key: SigningKey) -> str:
    """A compact JWS of ``payload`` under ``header`` (which must name ``key``'s ``alg``)."""
    signing_input = b64url_encode(encode_json(header)) + "." + b64url_encode(encode_json(payload))
    return signing_input + "." + b64url_encode(key.sign(signing_input.encode("ascii")))


def verify_jws(token: str, key: VerifyingKey, allowed: frozenset[Alg] = ALGORITHMS) -> Jws:
    """``token`` decoded, once its header passes ``check_header`` and ``key`` verifies it.

    Raises ``Malformed``, the ``check_header`` errors, ``KeyAlgMismatch`` or ``BadSignature``.
    """
    jws = parse_jws(token)
    check_signature(jws, key, check_header(jws.header, allowed))
    return jws
