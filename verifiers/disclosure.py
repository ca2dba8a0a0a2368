"""Disclosures (RFC 9901 §4.2): the salted claims an SD-JWT hides behind digests.

A disclosure is base64url(JSON ``[salt, name, value]``) for an object property, or
base64url(JSON ``[salt, value]``) for an array element. Its digest is the hash of the
*base64url text as sent* (§4.2.3): no canonical JSON, so the issuer's bytes are what count.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

from vault import InvalidInput, VerificationFailed
from verifiers.jws import Malformed, b64url_decode, b64url_encode, load_json

DEFAULT_HASH = "sha-256"

_ENCODER = json.JSONEncoder(allow_nan=False)


# IANA "Named Information Hash Algorithm" names (RFC 9901 §4.1.1). The truncated ones
# (sha-256-128, sha-256-32, ...) are left out on purpose: too short to bind a disclosure.
HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha-256": hashlib.sha256,
    "sha-384": hashlib.sha384,
    "sha-512": hashlib.sha512,
    "sha3-256": hashlib.sha3_256,
    "sha3-384": hashlib.sha3_384,
    "sha3-512": hashlib.sha3_512,
}

# The names RFC 9901 §4.2.1 reserves for its own structure.
RESERVED_NAMES = frozenset({"_sd", "..."})

SALT_BYTES = 18
"""144 random bits per salt (RFC 9901 §9.3 asks for at least 128); 18 bytes make 24 base64url
characters exactly, so a batch of salts is encoded in one call and sliced."""


class BadDisclosure(InvalidInput):
    code = "sdjwt.bad_disclosure"
    en = "A disclosure in the credential is damaged. Ask the holder to send it again."
    nl = "Een onthulling in de credential is beschadigd. Vraag de houder om die opnieuw te sturen."


class UnsupportedHash(VerificationFailed):
    code = "sdjwt.bad_sd_alg"
    en = "The credential uses a digest algorithm that kluis does not accept."
    nl = "De credential gebruikt een hash-algoritme dat kluis niet accepteert."


class ReservedClaimName(VerificationFailed):
    code = "sdjwt.reserved_claim_name"
    en = "A disclosure uses a claim name that SD-JWT reserves ('_sd' or '...'). It is refused."
    nl = (
        "Een onthulling gebruikt een claimnaam die SD-JWT voor zichzelf houdt ('_sd' of "
        "'...'). Die wordt geweigerd."
    )


class Disclosure(NamedTuple):
    """One disclosure: the text as sent, its digest, and what it reveals.

    ``name`` is ``None`` for an array element. (A NamedTuple rather than a frozen dataclass:
    one is built per disclosure on the verifier's hot path, at a third of the cost.)
    """

    encoded: str
    digest: str
    salt: str
    name: str | None
    value: Any


def hash_function(name: object) -> Callable[[bytes], Any]:
    """The hash behind ``_sd_alg`` ``name``. Raises ``UnsupportedHash`` for any other name
    (RFC 9901 §4.1.1, §7.1 step 2)."""
    if type(name) is not str or name not in HASHES:
        raise UnsupportedHash(f"RFC 9901 §4.1.1: '_sd_alg' {str(name)[:20]!r} is not accepted")
    return HASHES[name]


def digest_of(text: str, hash_alg: str = DEFAULT_HASH) -> str:
    """base64url(H(US-ASCII of ``text``)): the digest of a disclosure or of an SD-JWT for
    ``sd_hash`` (RFC 9901 §4.2.3, §4.3.1)."""
    return b64url_encode(HASHES[hash_alg](text.encode("ascii")).digest())


def new_salts(count: int) -> list[str]:
    """``count`` fresh salts, each 144 bits from ``secrets`` (RFC 9901 §4.2.1, §9.3)."""
    text = b64url_encode(secrets.token_bytes(SALT_BYTES * count))
    return [text[i : i + 24] for i in range(0, 24 * count, 24)]


def decoy_digest(hash_alg: str = DEFAULT_HASH) -> str:
    """A digest of random data, indistinguishable from a real one (RFC 9901 §4.2.5)."""
    return b64url_encode(HASHES[hash_alg](secrets.token_bytes(32)).digest())


def format_disclosure(
    salt: str, name: str | None, value: Any, hash_alg: str = DEFAULT_HASH
) -> Disclosure:
    """The disclosure of ``name: value`` (or of array element ``value`` when ``name`` is None).

    The JSON is what ``json.dumps`` writes by default (ASCII, ``", "`` between elements), as
    in the RFC's examples, so published disclosures can be reproduced byte for byte.
    Raises ``TypeError``/``ValueError`` when ``value`` is not JSON (NaN included); the issuer
    turns those into its own error.
    """
    # Composed from parts: json.dumps of a whole list builds a new encoder on every call.
    item = encode_basestring_ascii(value) if type(value) is str else _ENCODER.encode(value)
    if name is None:
        text = f'["{salt}", {item}]'
    else:
        text = f'["{salt}", {encode_basestring_ascii(name)}, {item}]'
    encoded = b64url_encode(text.encode("ascii"))
    return Disclosure(encoded, digest_of(encoded, hash_alg), salt, name, value)


def parse_disclosure(encoded: str, hash_alg: str = DEFAULT_HASH) -> Disclosure:
    """The disclosure sent as ``encoded`` (RFC 9901 §7.1 step 3).

    Raises ``BadDisclosure`` unless it is base64url of a UTF-8 JSON array of two or three
    elements with a string salt (and a string claim name), and ``ReservedClaimName`` for the
    names ``_sd`` and ``...`` (§4.2.1).
    """
    try:
        content = load_json(b64url_decode(encoded, "disclosure").decode("utf-8"))
    except (Malformed, ValueError, RecursionError):
        raise BadDisclosure("RFC 9901 §4.2: a disclosure is base64url of a JSON array") from None
    if type(content) is not list or type(content[0] if content else None) is not str:
        raise BadDisclosure("RFC 9901 §4.2.1: [salt, name, value] or [salt, value]")
    digest = b64url_encode(HASHES[hash_alg](encoded.encode("ascii")).digest())
    size = len(content)
    if size == 2:
        return Disclosure(encoded, digest, content[0], None, content[1])
    if size != 3:
        raise BadDisclosure("RFC 9901 §4.2.1: [salt, name, value] or [salt, value]")
    name = content[1]
    if type(name) is not str:
        raise BadDisclosure("RFC 9901 §4.2.1: the claim name is a string")
    if name in RESERVED_NAMES:
        raise ReservedClaimName(f"RFC 9901 §7.1 step 3: claim name {name!r}")
    return Disclosure(encoded, digest, content[0], name, content[2])
