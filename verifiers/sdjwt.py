"""The SD-JWT compact form and disclosure processing (RFC 9901 §4, §5, §7.1 steps 3-5).

``parse_compact`` splits ``<Issuer-signed JWT>~<D1>~...~<Dn>~[<KB-JWT>]``;
``process_disclosures`` puts the disclosed claims back into the issuer's payload, with every
check of §7.1 steps 3-5 (checklist STANDARDS.md §1.4 C). ``parse_sd_jwt`` decodes everything
for display and for the holder, without verifying anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from vault import InvalidInput, VerificationFailed
from verifiers.claim_path import ClaimPath
from verifiers.disclosure import (
    DEFAULT_HASH,
    Disclosure,
    UnsupportedHash,
    hash_function,
    parse_disclosure,
)
from verifiers.jws import Jws, parse_jws

MAX_LENGTH = 1_000_000
"""Longest token accepted by default (characters): a credential with a portrait stays far below."""

MAX_DEPTH = 64
"""Deepest nesting of objects, arrays and disclosures processed (bounds the recursion)."""

# SD-JWT VC draft-18 §2.2.2.3: these (and everything below them) MUST NOT be disclosable;
# ``_sd_alg`` is RFC 9901's own and lives in the Issuer-signed JWT only.
NEVER_DISCLOSABLE = frozenset(
    {"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "aka_vcts", "status", "_sd_alg"}
)


class Malformed(InvalidInput):
    code = "sdjwt.malformed"
    en = "The credential is damaged or not in SD-JWT form. Ask for it to be sent again."
    nl = "De credential is beschadigd of geen SD-JWT. Vraag om die opnieuw te sturen."


class BadClaims(InvalidInput):
    code = "sdjwt.bad_claims"
    en = "The claims, claim paths or settings given cannot be used. Check the input."
    nl = (
        "De opgegeven claims, claimpaden of instellingen zijn niet bruikbaar. Controleer de "
        "invoer."
    )


class NoSuchClaim(InvalidInput):
    code = "sdjwt.no_such_claim"
    en = "The credential has no claim '{name}'. Check the name."
    nl = "De credential heeft geen claim '{name}'. Controleer de naam."


class TooLarge(InvalidInput):
    code = "sdjwt.too_large"
    en = "The credential is larger than kluis accepts. Ask the sender to check it."
    nl = "De credential is groter dan kluis accepteert. Vraag de afzender om die na te kijken."


class DuplicateDisclosure(VerificationFailed):
    code = "sdjwt.duplicate_disclosure"
    en = "The same disclosure was sent twice. The presentation is refused."
    nl = "Dezelfde onthulling is twee keer gestuurd. De presentatie wordt geweigerd."


class DuplicateDigest(VerificationFailed):
    code = "sdjwt.duplicate_digest"
    en = "A digest appears more than once in the credential. It is refused."
    nl = "Een hashwaarde komt meer dan eens voor in de credential. Die wordt geweigerd."


class DisclosureNotReferenced(VerificationFailed):
    code = "sdjwt.disclosure_not_referenced"
    en = "A disclosure was sent that the credential does not refer to. The presentation is refused."
    nl = (
        "Er is een onthulling gestuurd waar de credential niet naar verwijst. De "
        "presentatie wordt geweigerd."
    )


class DisclosureMisplaced(VerificationFailed):
    code = "sdjwt.disclosure_misplaced"
    en = "A disclosure does not fit the place that refers to it (claim versus list element)."
    nl = "Een onthulling past niet op de plek die ernaar verwijst (claim of lijstelement)."


class ClaimNameClash(VerificationFailed):
    code = "sdjwt.claim_name_clash"
    en = "A disclosure would overwrite a claim that is already there. The credential is refused."
    nl = (
        "Een onthulling zou een claim overschrijven die er al is. De credential wordt "
        "geweigerd."
    )


class CompactParts(NamedTuple):
    """An SD-JWT or SD-JWT+KB split at ``~`` (RFC 9901 §4). Nothing here is verified.

    ``signed_prefix`` is the text ``sd_hash`` covers: everything up to and including the last
    ``~`` (§4.3.1).
    """

    issuer_jwt: str
    disclosures: tuple[str, ...]
    kb_jwt: str | None
    signed_prefix: str


def parse_compact(token: str, *, max_length: int = MAX_LENGTH) -> CompactParts:
    """``token`` split into the Issuer-signed JWT, the disclosures and the KB-JWT (if any).

    Raises ``TooLarge`` over ``max_length`` characters, and ``Malformed`` when it is not ASCII,
    has no ``~`` after the Issuer-signed JWT, or has an empty disclosure (RFC 9901 §4, §7.3
    step 2).
    """
    if type(token) is not str:
        raise Malformed("RFC 9901 §4: an SD-JWT is a string")
    if len(token) > max_length:
        raise TooLarge(f"kluis limit: {max_length} characters")
    if not token.isascii():
        raise Malformed("RFC 9901 §4: an SD-JWT is ASCII")
    parts = token.split("~")
    if len(parts) < 2:
        raise Malformed("RFC 9901 §4: an SD-JWT ends with '~' after the Issuer-signed JWT")
    last = parts[-1]
    disclosures = parts[1:-1]
    if "" in disclosures:
        raise Malformed("RFC 9901 §4: an empty disclosure ('~~')")
    cut = len(token) - len(last)
    return CompactParts(parts[0], tuple(disclosures), last or None, token[:cut])


def format_compact(issuer_jwt: str, disclosures: Iterable[str], kb_jwt: str | None = None) -> str:
    """The compact SD-JWT (``kb_jwt`` None) or SD-JWT+KB (RFC 9901 §4)."""
    return "~".join((issuer_jwt, *disclosures, kb_jwt or ""))


class DisclosedClaim(NamedTuple):
    """Where a disclosure landed: the claim's path in the processed claims, the disclosure,
    and the digest of the disclosure that contains its digest (None: the Issuer-signed JWT)."""

    path: ClaimPath
    disclosure: Disclosure
    parent: str | None


class Processed(NamedTuple):
    """The claims with every received disclosure put back, and where each one went."""

    claims: dict[str, Any]
    disclosed: tuple[DisclosedClaim, ...]


def index_disclosures(encoded: Iterable[str], hash_alg: str) -> dict[str, Disclosure]:
    """The received disclosures by digest (RFC 9901 §7.1 step 3).

    Raises the ``parse_disclosure`` errors, and ``DuplicateDisclosure`` when the same
    disclosure arrives twice (a holder MUST NOT send one twice, §7.2).
    """
    by_digest: dict[str, Disclosure] = {}
    for text in encoded:
        disclosure = parse_disclosure(text, hash_alg)
        if disclosure.digest in by_digest:
            raise DuplicateDisclosure("kluis policy, RFC 9901 §7.2: each disclosure is sent once")
        by_digest[disclosure.digest] = disclosure
    return by_digest


class _Walk:
    """One run of §7.1 step 3 over a payload: the digests seen so far and what was used."""

    __slots__ = ("by_digest", "seen", "disclosed")

    def __init__(self, by_digest: Mapping[str, Disclosure]) -> None:
        self.by_digest = by_digest
        self.seen: set[str] = set()
        self.disclosed: list[DisclosedClaim] = []

    def value(self, node: Any, path: ClaimPath, owner: str | None, depth: int) -> Any:
        kind = type(node)
        if kind is dict:
            return self.object(node, path, owner, depth + 1)
        if kind is list:
            return self.array(node, path, owner, depth + 1)
        return node

    def _take(self, digest: Any) -> Disclosure | None:
        if type(digest) is not str:
            raise Malformed("RFC 9901 §4.2.4: a digest is a string")
        if digest in self.seen:
            raise DuplicateDigest("RFC 9901 §7.1 step 4")
        self.seen.add(digest)
        return self.by_digest.get(digest)

    def object(self, node: dict[str, Any], path: ClaimPath, owner: str | None, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise Malformed(f"kluis limit: nesting deeper than {MAX_DEPTH}")
        out: dict[str, Any] = {}
        digests = None
        for key, item in node.items():
            if key == "_sd":
                digests = item
            elif key == "_sd_alg":
                if depth != 1:
                    raise Malformed("RFC 9901 §4.1.1: '_sd_alg' only at the top level")
            elif type(item) is dict or type(item) is list:
                out[key] = self.value(item, (*path, key), owner, depth)
            else:
                out[key] = item
        if digests is None:
            return out
        if type(digests) is not list:
            raise Malformed("RFC 9901 §4.2.4.1: '_sd' is an array of digests")
        seen, by_digest = self.seen, self.by_digest
        for digest in digests:  # _take, inlined: this loop runs for every digest in a payload
            if type(digest) is not str:
                raise Malformed("RFC 9901 §4.2.4: a digest is a string")
            if digest in seen:
                raise DuplicateDigest("RFC 9901 §7.1 step 4")
            seen.add(digest)
            found = by_digest.get(digest)
            if found is None:
                continue  # a decoy, or a claim the holder did not disclose (§7.1 step 3)
            name = found.name
            if name is None:
                raise DisclosureMisplaced("RFC 9901 §7.1 step 3: '_sd' needs [salt, name, value]")
            if name in out:
                raise ClaimNameClash(f"RFC 9901 §7.1 step 3: claim {name!r} already exists")
            child = (*path, name)
            self.disclosed.append(DisclosedClaim(child, found, owner))
            out[name] = self.value(found.value, child, found.digest, depth)
        return out

    def array(self, node: list[Any], path: ClaimPath, owner: str | None, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise Malformed(f"kluis limit: nesting deeper than {MAX_DEPTH}")
        out: list[Any] = []
        for item in node:
            if type(item) is dict and "..." in item:
                if len(item) != 1:
                    raise Malformed("RFC 9901 §4.2.4.2: '...' is the only key of its object")
                found = self._take(item["..."])
                if found is None:
                    continue  # undisclosed elements are removed (§7.1 step 3)
                if found.name is not None:
                    raise DisclosureMisplaced("RFC 9901 §7.1 step 3: '...' needs [salt, value]")
                child = (*path, len(out))
                self.disclosed.append(DisclosedClaim(child, found, owner))
                out.append(self.value(found.value, child, found.digest, depth))
            elif type(item) is dict or type(item) is list:
                out.append(self.value(item, (*path, len(out)), owner, depth))
            else:
                out.append(item)
        return out


def process_disclosures(
    payload: Mapping[str, Any], by_digest: Mapping[str, Disclosure]
) -> Processed:
    """The processed claims of ``payload`` (the Issuer-signed JWT's payload) with the
    disclosures ``by_digest`` put back (RFC 9901 §7.1 steps 3-5).

    Digests without a disclosure are ignored (decoys) and such array elements dropped; ``_sd``
    and the top-level ``_sd_alg`` are removed. Raises ``Malformed`` (bad ``_sd`` or ``...``),
    ``DuplicateDigest``, ``DisclosureMisplaced``, ``ClaimNameClash``, and
    ``DisclosureNotReferenced`` when a disclosure is not reachable from the payload.
    """
    walk = _Walk(by_digest)
    claims = walk.object(payload, (), None, 1)  # type: ignore[arg-type]  # read only; depth 1 drops the top-level _sd_alg
    if len(walk.disclosed) != len(by_digest):
        used = {entry.disclosure.digest for entry in walk.disclosed}
        stray = next(d for d in by_digest if d not in used)
        raise DisclosureNotReferenced(f"RFC 9901 §7.1 step 5: digest {stray}")
    return Processed(claims, tuple(walk.disclosed))


def sd_alg_of(payload: Mapping[str, Any], accepted: frozenset[str] | None = None) -> str:
    """The payload's ``_sd_alg`` (``sha-256`` when absent), if kluis supports it and it is in
    ``accepted``. Raises ``UnsupportedHash`` otherwise (RFC 9901 §4.1.1, §7.1 step 2)."""
    name = payload.get("_sd_alg", DEFAULT_HASH)
    hash_function(name)
    if accepted is not None and name not in accepted:
        raise UnsupportedHash(f"kluis policy: '_sd_alg' {name!r} is not accepted here")
    return str(name)


@dataclass(frozen=True, slots=True)
class SdJwt:
    """Everything in an SD-JWT(+KB), decoded and NOT verified: for display and for the
    holder's own bookkeeping only."""

    parts: CompactParts
    issuer: Jws
    hash_alg: str
    disclosures: tuple[Disclosure, ...]
    kb: Jws | None


def parse_sd_jwt(token: str, *, max_length: int = MAX_LENGTH) -> SdJwt:
    """``token`` taken apart and decoded, without checking any signature or digest link.

    Raises ``Malformed``/``TooLarge`` for the compact form, ``jws.malformed`` for a damaged
    JWT, and the ``parse_disclosure`` errors.
    """
    parts = parse_compact(token, max_length=max_length)
    issuer = parse_jws(parts.issuer_jwt, "Issuer-signed JWT")
    hash_alg = sd_alg_of(issuer.payload)
    disclosures = tuple(parse_disclosure(text, hash_alg) for text in parts.disclosures)
    kb = parse_jws(parts.kb_jwt, "KB-JWT") if parts.kb_jwt is not None else None
    return SdJwt(parts, issuer, hash_alg, disclosures, kb)
