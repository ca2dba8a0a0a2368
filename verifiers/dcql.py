"""DCQL, the Digital Credentials Query Language of OpenID4VP 1.0 §6: parsing and formatting.

A verifier says which credentials and which claims it wants in a DCQL query; the wallet
parses it here (untrusted input: only ``dcql.*`` errors come out, each naming the rule it
breaks) and evaluates it with :func:`verifiers.dcql_match.match_dcql`. Unknown properties are
ignored, as §6 requires. Formats other than ``dc+sd-jwt`` parse but never match a credential
of ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vault import InvalidInput
from verifiers.claim_path import ClaimPath, format_claim_path, parse_claim_path

SD_JWT_VC = "dc+sd-jwt"
"""The one credential format kluis holds (OpenID4VP 1.0 §B.3.1)."""

_ID = re.compile(r"[A-Za-z0-9_-]+")

# Bounds on what a wallet evaluates, so a hostile query cannot make it work without end.
MAX_QUERY_BYTES = 256 * 1024
MAX_CREDENTIALS = 64
MAX_CLAIMS = 256  # over the whole query
MAX_VALUES = 64
MAX_CLAIM_SETS = 64
MAX_CREDENTIAL_SETS = 64
MAX_OPTIONS = 64
MAX_LIST = 64  # vct_values, trusted_authorities and their values
MAX_STRING = 1024

ClaimValue = str | int | bool


class MalformedQuery(InvalidInput):
    code = "dcql.malformed"
    en = "The request for data is not written correctly. Ask the organisation for a new one."
    nl = "Het verzoek om gegevens is niet goed opgesteld. Vraag de organisatie om een nieuw."


class BadId(InvalidInput):
    code = "dcql.bad_id"
    en = "The request for data has an invalid name for a part. Ask for a new request."
    nl = "Het verzoek om gegevens heeft een onderdeel met een ongeldige naam. Vraag om een nieuw."


class DuplicateId(InvalidInput):
    code = "dcql.duplicate_id"
    en = "The request for data uses the same name twice. Ask the organisation for a new one."
    nl = "Het verzoek om gegevens gebruikt dezelfde naam twee keer. Vraag om een nieuw verzoek."


class BadPath(InvalidInput):
    code = "dcql.bad_path"
    en = "The request for data points to a piece of data in an invalid way. Ask for a new one."
    nl = "Het verzoek wijst een gegeven op een ongeldige manier aan. Vraag om een nieuw verzoek."


class BadMeta(InvalidInput):
    code = "dcql.bad_meta"
    en = "The request for data does not say which kind of document it wants. Ask for a new one."
    nl = "Het verzoek zegt niet welk soort document het wil. Vraag om een nieuw verzoek."


class BadValues(InvalidInput):
    code = "dcql.bad_values"
    en = "The request for data lists expected values in an invalid way. Ask for a new one."
    nl = "Het verzoek noemt verwachte waarden op een ongeldige manier. Vraag om een nieuw verzoek."


class UnknownReference(InvalidInput):
    code = "dcql.unknown_reference"
    en = "The request for data refers to a part it does not contain. Ask for a new one."
    nl = "Het verzoek verwijst naar een onderdeel dat er niet in staat. Vraag om een nieuw verzoek."


class QueryTooLarge(InvalidInput):
    code = "dcql.too_large"
    en = "The request for data is too large to handle. Ask the organisation for a smaller one."
    nl = "Het verzoek om gegevens is te groot om te verwerken. Vraag om een kleiner verzoek."


@dataclass(frozen=True)
class ClaimsQuery:
    """One claim asked for (OpenID4VP 1.0 §6.3). ``values``: the only acceptable values, if any."""

    path: ClaimPath
    id: str | None = None
    values: tuple[ClaimValue, ...] | None = None


@dataclass(frozen=True)
class TrustedAuthority:
    """A Trusted Authorities Query (OpenID4VP 1.0 §6.1.1): a ``type`` and its values."""

    type: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class CredentialQuery:
    """One credential asked for (OpenID4VP 1.0 §6.1).

    ``vct_values`` is the SD-JWT VC ``meta.vct_values`` (§B.3.5); empty for other formats.
    ``claims`` is None when the query names no claims (only what is always disclosed is sent).
    """

    id: str
    format: str
    vct_values: tuple[str, ...] = ()
    claims: tuple[ClaimsQuery, ...] | None = None
    claim_sets: tuple[tuple[str, ...], ...] | None = None
    multiple: bool = False
    trusted_authorities: tuple[TrustedAuthority, ...] | None = None
    require_cryptographic_holder_binding: bool = True


@dataclass(frozen=True)
class CredentialSetQuery:
    """Alternative sets of credential query ids, one of which satisfies a need (§6.2)."""

    options: tuple[tuple[str, ...], ...]
    required: bool = True


@dataclass(frozen=True)
class DcqlQuery:
    """A parsed DCQL query (OpenID4VP 1.0 §6)."""

    credentials: tuple[CredentialQuery, ...]
    credential_sets: tuple[CredentialSetQuery, ...] | None = None

    def credential(self, query_id: str) -> CredentialQuery:
        """The credential query called ``query_id``; raises ``dcql.unknown_reference``."""
        for query in self.credentials:
            if query.id == query_id:
                return query
        raise UnknownReference(f"no credential query with id {query_id!r}")


def parse_dcql(obj: object) -> DcqlQuery:
    """The DCQL query in ``obj``: a JSON object as parsed, or its JSON text (str or bytes).

    Raises only ``dcql.*`` InvalidInput errors, whose detail names the rule of OpenID4VP 1.0 §6
    (or a kluis size limit) the query breaks. Unknown properties are ignored (§6).
    """
    if isinstance(obj, str | bytes):
        obj = _decode(obj)
    query = _object(obj, "OpenID4VP 1.0 §6: a DCQL query is a JSON object")
    credentials = _array(
        query.get("credentials"), MalformedQuery, "§6: credentials", MAX_CREDENTIALS
    )
    parsed = tuple(_credential_query(item) for item in credentials)
    _unique([c.id for c in parsed], "§6.1: credential query ids are unique")
    if sum(len(c.claims or ()) for c in parsed) > MAX_CLAIMS:
        raise QueryTooLarge(f"kluis limit: at most {MAX_CLAIMS} claims in one query")
    sets = None
    if "credential_sets" in query:
        raw = _array(
            query["credential_sets"], MalformedQuery, "§6: credential_sets", MAX_CREDENTIAL_SETS
        )
        known = {c.id for c in parsed}
        sets = tuple(_credential_set(item, known) for item in raw)
    return DcqlQuery(credentials=parsed, credential_sets=sets)


def format_dcql(query: DcqlQuery) -> dict[str, Any]:
    """The query as a JSON object (the inverse of :func:`parse_dcql`), for a request object."""
    out: dict[str, Any] = {"credentials": [_format_credential(c) for c in query.credentials]}
    if query.credential_sets is not None:
        out["credential_sets"] = [
            {"options": [list(o) for o in s.options], "required": s.required}
            for s in query.credential_sets
        ]
    return out


def _decode(text: str | bytes) -> object:
    if len(text) > MAX_QUERY_BYTES:
        raise QueryTooLarge(f"kluis limit: a DCQL query has at most {MAX_QUERY_BYTES} bytes")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedQuery("RFC 8259: the query is not JSON") from None


def _credential_query(obj: object) -> CredentialQuery:
    item = _object(obj, "OpenID4VP 1.0 §6.1: a credential query is an object")
    query_id = _id(item.get("id"), "§6.1: credential query id")
    fmt = _string(item.get("format"), MalformedQuery, "§6.1: format is a non-empty string")
    claims = _claims(item["claims"]) if "claims" in item else None
    return CredentialQuery(
        id=query_id,
        format=fmt,
        vct_values=_meta(item.get("meta"), fmt),
        claims=claims,
        claim_sets=_claim_sets(item["claim_sets"], claims) if "claim_sets" in item else None,
        multiple=_flag(item, "multiple", default=False),
        trusted_authorities=_authorities(item["trusted_authorities"])
        if "trusted_authorities" in item
        else None,
        require_cryptographic_holder_binding=_flag(
            item, "require_cryptographic_holder_binding", default=True
        ),
    )


def _meta(obj: object, fmt: str) -> tuple[str, ...]:
    if not isinstance(obj, Mapping):
        raise BadMeta("OpenID4VP 1.0 §6.1: meta is required and is an object")
    if fmt != SD_JWT_VC:
        return ()
    values = _array(obj.get("vct_values"), BadMeta, "§B.3.5: meta.vct_values", MAX_LIST)
    return tuple(_string(v, BadMeta, "§B.3.5: vct_values holds strings") for v in values)


def _claims(obj: object) -> tuple[ClaimsQuery, ...]:
    items = _array(obj, MalformedQuery, "§6.1: claims", MAX_CLAIMS)
    claims = tuple(_claims_query(item) for item in items)
    _unique([c.id for c in claims if c.id is not None], "§6.3: claim ids are unique")
    return claims


def _claims_query(obj: object) -> ClaimsQuery:
    item = _object(obj, "OpenID4VP 1.0 §6.3: a claims query is an object")
    claim_id = _id(item["id"], "§6.3: claim id") if "id" in item else None
    if "path" not in item:
        raise BadPath("OpenID4VP 1.0 §6.3: path is required")
    path = parse_claim_path(item["path"], fail=BadPath, too_large=QueryTooLarge)
    values = _values(item["values"]) if "values" in item else None
    return ClaimsQuery(path=path, id=claim_id, values=values)


def _values(obj: object) -> tuple[ClaimValue, ...]:
    items = _array(obj, BadValues, "§6.3: values", MAX_VALUES)
    for value in items:
        if not isinstance(value, str | int) or (isinstance(value, str) and len(value) > MAX_STRING):
            raise BadValues("OpenID4VP 1.0 §6.3: values are strings, integers or booleans")
    return tuple(items)


def _claim_sets(obj: object, claims: tuple[ClaimsQuery, ...] | None) -> tuple[tuple[str, ...], ...]:
    if claims is None:
        raise MalformedQuery("OpenID4VP 1.0 §6.4.1: claim_sets must not be present without claims")
    if any(c.id is None for c in claims):
        raise BadId("OpenID4VP 1.0 §6.3: every claim has an id when claim_sets is present")
    known = {c.id for c in claims}
    sets = _array(obj, MalformedQuery, "§6.1: claim_sets", MAX_CLAIM_SETS)
    return tuple(_references(s, known, "§6.1: claim_sets", "claim") for s in sets)


def _credential_set(obj: object, known: set[str]) -> CredentialSetQuery:
    item = _object(obj, "OpenID4VP 1.0 §6.2: a credential set query is an object")
    options = _array(item.get("options"), MalformedQuery, "§6.2: options", MAX_OPTIONS)
    return CredentialSetQuery(
        options=tuple(_references(o, known, "§6.2: options", "credential query") for o in options),
        required=_flag(item, "required", default=True),
    )


def _references(obj: object, known: Container[str | None], rule: str, what: str) -> tuple[str, ...]:
    ids = _array(obj, MalformedQuery, rule, MAX_OPTIONS)
    for ref in ids:
        if not isinstance(ref, str):
            raise MalformedQuery(f"OpenID4VP 1.0 {rule}: each option holds {what} ids (strings)")
        if ref not in known:
            raise UnknownReference(f"OpenID4VP 1.0 {rule}: {ref!r} names no {what} of this query")
    return tuple(ids)


def _authorities(obj: object) -> tuple[TrustedAuthority, ...]:
    items = _array(obj, MalformedQuery, "§6.1: trusted_authorities", MAX_LIST)
    out = []
    for raw in items:
        item = _object(raw, "OpenID4VP 1.0 §6.1.1: a trusted authorities query is an object")
        kind = _string(item.get("type"), MalformedQuery, "§6.1.1: type is a non-empty string")
        values = _array(item.get("values"), MalformedQuery, "§6.1.1: values", MAX_LIST)
        strings = tuple(_string(v, MalformedQuery, "§6.1.1: values") for v in values)
        out.append(TrustedAuthority(kind, strings))
    return tuple(out)


def _object(obj: object, rule: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise MalformedQuery(rule)
    return obj


def _array(obj: object, fail: type[InvalidInput], rule: str, limit: int) -> Sequence[Any]:
    if not isinstance(obj, list | tuple) or not obj:
        raise fail(f"OpenID4VP 1.0 {rule} is a non-empty array")
    if len(obj) > limit:
        raise QueryTooLarge(f"kluis limit: {rule.split(': ')[-1]} has at most {limit} entries")
    return obj


def _string(obj: object, fail: type[InvalidInput], rule: str) -> str:
    if not isinstance(obj, str) or not obj:
        raise fail(f"OpenID4VP 1.0 {rule}")
    if len(obj) > MAX_STRING:
        raise QueryTooLarge(f"kluis limit: strings have at most {MAX_STRING} characters")
    return obj


def _id(obj: object, rule: str) -> str:
    if not isinstance(obj, str) or not _ID.fullmatch(obj):
        raise BadId(f"OpenID4VP 1.0 {rule} is a non-empty string of A-Z, a-z, 0-9, _ and -")
    if len(obj) > MAX_STRING:
        raise QueryTooLarge(f"kluis limit: ids have at most {MAX_STRING} characters")
    return obj


def _flag(item: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = item.get(name, default)
    if not isinstance(value, bool):
        raise MalformedQuery(f"OpenID4VP 1.0 §6: {name} is a boolean")
    return value


def _unique(ids: list[str], rule: str) -> None:
    seen: set[str] = set()
    for one in ids:
        if one in seen:
            raise DuplicateId(f"OpenID4VP 1.0 {rule}: {one!r} appears twice")
        seen.add(one)


def _format_credential(query: CredentialQuery) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if query.format == SD_JWT_VC:
        meta["vct_values"] = list(query.vct_values)
    out: dict[str, Any] = {
        "id": query.id,
        "format": query.format,
        "meta": meta,
        "multiple": query.multiple,
        "require_cryptographic_holder_binding": query.require_cryptographic_holder_binding,
    }
    if query.claims is not None:
        out["claims"] = [_format_claim(c) for c in query.claims]
    if query.claim_sets is not None:
        out["claim_sets"] = [list(s) for s in query.claim_sets]
    if query.trusted_authorities is not None:
        out["trusted_authorities"] = [
            {"type": a.type, "values": list(a.values)} for a in query.trusted_authorities
        ]
    return out


def _format_claim(claim: ClaimsQuery) -> dict[str, Any]:
    out: dict[str, Any] = {"path": format_claim_path(claim.path)}
    if claim.id is not None:
        out["id"] = claim.id
    if claim.values is not None:
        out["values"] = list(claim.values)
    return out
