"""The kinds of entries in kluis logs, their builders, and commitments to released values.

Each builder returns a ``tlog.Record``: the members of one entry kind, the openings of its
commitments (kept in the vault, never exported) and the public documents it refers to
(exported beside it). An entry holds claim *paths* and salted commitments, never a value:
a commitment is an SD-JWT disclosure digest (RFC 9901 §4.2.1, §4.2.3) over
``[salt, name, value]`` with a fresh 144-bit salt, where ``name`` is the claim path as
compact JSON (``["address","postal_code"]``) or ``"sha256"`` for an item's content digest.
The disclosure is the *opening*: whoever holds it can show the value to an auditor, who
recomputes the digest and finds it in the exported entry. Member tables:
``specs/consent-log.md`` §3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from vault.errors import VerificationFailed
from verifiers._document import LegalBasis, LocalizedText, format_timestamp
from verifiers.claim_path import ClaimPath, ConcretePath
from verifiers.disclosure import BadDisclosure, digest_of, format_disclosure, new_salts
from verifiers.disclosure import parse_disclosure as _parse_disclosure
from verifiers.jws import b64url_encode
from verifiers.receipt import Receipt, Retention, receipt_entry
from verifiers.tlog import Attachment, BadRecord, Record
from verifiers.trustlist import Agency, trust_list_hash


class Kind(StrEnum):
    """Every entry kind kluis writes. Later issues add ``session_opened`` and
    ``session_closed`` (``specs/consent-log.md`` §3.8); readers treat a kind they do not know
    as an opaque event."""

    CREDENTIAL_RECEIVED = "credential_received"
    REQUEST_RECEIVED = "request_received"
    REQUEST_BLOCKED = "request_blocked"
    REQUEST_APPROVED = "request_approved"
    REQUEST_REFUSED = "request_refused"
    PRESENTATION_SENT = "presentation_sent"
    RECEIPT_RECEIVED = "receipt_received"
    ITEM_ADDED = "item_added"
    ITEM_CHANGED = "item_changed"
    ITEM_REMOVED = "item_removed"
    KEY_ROTATED = "key_rotated"
    EXPORT_MADE = "export_made"
    GRANT_CREATED = "grant_created"
    GRANT_USED = "grant_used"
    GRANT_REVOKED = "grant_revoked"
    RECEIPT = "receipt"
    """An agency's receipt log: one entry per receipt it signed."""


class BlockReason(StrEnum):
    NOT_REGISTERED = "not_registered"
    """The verifier is not on the trust list as a verifier."""
    UNKNOWN_PURPOSE = "unknown_purpose"
    """The verifier has no registration for the purpose it gives."""
    OVER_ASKING = "over_asking"
    """The request asks for claims beyond the registration for that purpose."""
    INVALID_REQUEST = "invalid_request"
    """The request is malformed, badly signed or expired."""


class Outcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"


class FetchOutcome(StrEnum):
    """What the relay did with an agency's fetch of a granted item (``grant_used``)."""

    SERVED = "served"
    REFUSED = "refused"


class KeyRole(StrEnum):
    LOG = "log"
    HOLDER = "holder"


class ExportKind(StrEnum):
    AUDIT = "audit"
    """``kluis audit export``: the log for an auditor."""
    ARCHIVE = "archive"
    """``kluis vault export``: the whole vault, encrypted."""


class BadOpening(VerificationFailed):
    code = "audit.bad_opening"
    en = "This opening does not match the log entry. The value shown is not the one logged."
    nl = (
        "Deze opening past niet bij de regel in het logboek. "
        "De getoonde waarde is niet de gelogde waarde."
    )


# --- what entries name --------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """An agency as the log names it: its id (the https URL on the trust list, or the client
    id of a verifier that is not on it) and, when known, its names."""

    id: str
    nl: str | None = None
    en: str | None = None

    @classmethod
    def of(cls, agency: Agency) -> Party:
        return cls(agency.id, agency.names.nl, agency.names.en)

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.nl is not None and self.en is not None:
            out["name"] = {"nl": self.nl, "en": self.en}
        return out


@dataclass(frozen=True)
class ClaimRef:
    """A claim of a credential type: ``vct`` and a claims path pointer (OpenID4VP 1.0 §7)."""

    vct: str
    path: ClaimPath
    optional: bool = False

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"vct": self.vct, "path": list(self.path)}
        if self.optional:
            out["optional"] = True
        return out


@dataclass(frozen=True)
class Purpose:
    """Why a verifier asks: its registration id, a W3C DPV purpose and its own words."""

    id: str
    dpv: str
    description: LocalizedText

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "dpv": self.dpv, "description": _dump(self.description)}


@dataclass(frozen=True)
class ReleasedCredential:
    """What the citizen approved from one credential: each claim path and its value."""

    credential_id: str
    vct: str
    claims: Sequence[tuple[ConcretePath, Any]]


@dataclass(frozen=True)
class SentPresentation:
    """One presentation string sent: its credential, its hash (``receipt.hash_presentation``)
    and the claim paths it discloses."""

    credential_id: str
    vct: str
    presentation_hash: str
    claims: Sequence[ConcretePath]

    def json(self) -> dict[str, Any]:
        return {
            "credential": self.credential_id,
            "vct": self.vct,
            "hash": self.presentation_hash,
            "claims": [list(path) for path in self.claims],
        }


# --- builders -----------------------------------------------------------------------------


def credential_received(
    credential_id: str, vct: str, issuer: Party, claims: Sequence[ConcretePath]
) -> Record:
    """The wallet stored a credential: which type, from whom, holding which claims."""
    body = {
        "credential": {"id": credential_id, "vct": vct, "issuer": issuer.json()},
        "claims": [list(path) for path in claims],
    }
    return Record(Kind.CREDENTIAL_RECEIVED, body)


def request_received(
    request_id: str,
    verifier: Party,
    *,
    registered: bool,
    purpose: Purpose,
    legal_basis: LegalBasis,
    retention: Retention,
    processing_activity: str,
    expires_at: datetime,
    claims: Sequence[ClaimRef],
    trust_list: tuple[int, str] | None = None,
) -> Record:
    """A request arrived and was checked against the trust list.

    ``registered`` says whether the verifier is registered for this purpose;
    ``trust_list`` is ``(sequence, signed JWS)`` of the list used: its hash goes in the
    entry and the list itself is exported beside the log.
    """
    body: dict[str, Any] = {
        "request": request_id,
        "verifier": verifier.json(),
        "registered": registered,
        "purpose": purpose.json(),
        "legal_basis": _dump(legal_basis),
        "retention": _dump(retention),
        "processing_activity": processing_activity,
        "expires_at": _time(expires_at),
        "claims": [claim.json() for claim in claims],
    }
    attachments: tuple[Attachment, ...] = ()
    if trust_list is not None:
        sequence, signed = trust_list
        digest = trust_list_hash(signed)
        body["trust_list"] = {"sequence": sequence, "hash": digest}
        attachments = (Attachment("trust_list", digest, signed),)
    return Record(Kind.REQUEST_RECEIVED, body, attachments=attachments)


def request_blocked(
    request_id: str, verifier: Party, reason: BlockReason, over_asked: Sequence[ClaimRef] = ()
) -> Record:
    """The wallet blocked a request before showing it; ``over_asked``: claims beyond the
    verifier's registration (for ``over_asking``)."""
    body: dict[str, Any] = {"request": request_id, "verifier": verifier.json(), "reason": reason}
    if over_asked:
        body["claims"] = [claim.json() for claim in over_asked]
    return Record(Kind.REQUEST_BLOCKED, body)


def request_approved(
    request_id: str,
    verifier: Party,
    released: Sequence[ReleasedCredential],
    left_out: Sequence[ClaimRef] = (),
) -> Record:
    """The citizen approved: exactly these claims of these credentials may leave, once.

    Each value is committed (fresh salt) and its opening kept with the entry. Raises
    ``log.bad_record`` when a value is not JSON or a claim appears twice in one credential.
    """
    count = sum(len(c.claims) for c in released)
    salts = iter(new_salts(count)) if count else iter(())
    credentials = []
    openings = []
    for credential in released:
        claims = []
        seen: set[str] = set()
        for path, value in credential.claims:
            name = path_name(path)
            if name in seen:
                raise BadRecord(f"claim {name} is released twice from one credential")
            seen.add(name)
            opening = _disclose(next(salts), name, value)
            claims.append({"path": list(path), "commitment": digest_of(opening)})
            openings.append(opening)
        credentials.append(
            {"credential": credential.credential_id, "vct": credential.vct, "claims": claims}
        )
    body: dict[str, Any] = {
        "request": request_id,
        "verifier": verifier.json(),
        "credentials": credentials,
    }
    if left_out:
        body["left_out"] = [claim.json() for claim in left_out]
    return Record(Kind.REQUEST_APPROVED, body, openings=tuple(openings))


def request_refused(request_id: str, verifier: Party) -> Record:
    """The citizen refused the request: nothing leaves."""
    return Record(Kind.REQUEST_REFUSED, {"request": request_id, "verifier": verifier.json()})


def presentation_sent(
    request_id: str,
    verifier: Party,
    presentations: Sequence[SentPresentation],
    outcome: Outcome,
    error: str | None = None,
) -> Record:
    """The outcome of sending an approved release: ``sent``, or ``failed`` with an error code."""
    body: dict[str, Any] = {
        "request": request_id,
        "verifier": verifier.json(),
        "presentations": [p.json() for p in presentations],
        "outcome": outcome,
    }
    if error is not None:
        body["error"] = error
    return Record(Kind.PRESENTATION_SENT, body)


def receipt_received(request_id: str, token: str, receipt: Receipt) -> Record:
    """A verified receipt (``verifiers.receipt.verify_receipt``) for a release: the entry
    holds its payload and hash, and the token travels with the export."""
    return Record(
        Kind.RECEIPT_RECEIVED,
        {
            "request": request_id,
            "receipt_id": receipt.receipt_id,
            "receipt_hash": receipt_hash(token),
            "receipt": _receipt_members(receipt),
        },
        attachments=(Attachment("receipt", receipt.receipt_id, token),),
    )


def agency_receipt(token: str, receipt: Receipt) -> Record:
    """An agency's receipt log entry: the receipt's members (``specs/receipt.md`` §5) plus
    its hash; the token travels with the agency's export."""
    body = {**_receipt_members(receipt), "receipt_hash": receipt_hash(token)}
    attachment = Attachment("receipt", receipt.receipt_id, token)
    return Record(Kind.RECEIPT, body, attachments=(attachment,))


def item_event(
    kind: Kind, name: str, item_type: str, media_type: str | None, size: int, sha256: str
) -> Record:
    """An item was added, changed or removed: its name, type and size, and a commitment to
    the SHA-256 (hex) of its content; never the content."""
    if kind not in (Kind.ITEM_ADDED, Kind.ITEM_CHANGED, Kind.ITEM_REMOVED):
        raise BadRecord(f"{kind} is not an item event")
    opening = _disclose(new_salts(1)[0], "sha256", sha256)
    item: dict[str, Any] = {"name": name, "type": item_type, "size": size}
    if media_type is not None:
        item["media_type"] = media_type
    item["commitment"] = digest_of(opening)
    return Record(kind, {"item": item}, openings=(opening,))


def key_rotated(role: KeyRole, new_key: str, old_key: str | None = None) -> Record:
    """A key was replaced; ``new_key``/``old_key`` are public names of the keys (a log's
    verifier key text, a holder key's RFC 7638 thumbprint), never private material."""
    body: dict[str, Any] = {"key": role, "new_key": new_key}
    if old_key is not None:
        body["old_key"] = old_key
    return Record(Kind.KEY_ROTATED, body)


def export_made(what: ExportKind) -> Record:
    """The citizen exported the log (``audit``) or the whole vault (``archive``)."""
    return Record(Kind.EXPORT_MADE, {"export": what})


@dataclass(frozen=True)
class GrantItem:
    """One item of a grant as the log names it: its id at the relay (``item``) and either the
    credential claims it carries or the name of the vault item it copies."""

    item: str
    claims: Sequence[ClaimRef] = ()
    vault_item: str | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.item}
        if self.vault_item is not None:
            out["vault_item"] = self.vault_item
        else:
            out["claims"] = [claim.json() for claim in self.claims]
        return out


def grant_created(
    grant_id: str,
    agency: Party,
    *,
    purpose: Purpose,
    legal_basis: LegalBasis,
    processing_activity: str,
    valid_until: datetime,
    items: Sequence[GrantItem],
    request_id: str | None = None,
) -> Record:
    """The citizen let ``agency`` keep reading ``items`` for ``purpose`` until
    ``valid_until`` (``specs/grant.md`` §1); ``request_id`` when it answers a grant request.
    Names claims and item names, never values. Raises ``log.bad_record`` for no items or an
    item id given twice."""
    ids = [item.item for item in items]
    if not ids or len(set(ids)) != len(ids):
        raise BadRecord("a grant has one or more items with distinct ids")
    body: dict[str, Any] = {
        "grant": grant_id,
        "agency": agency.json(),
        "purpose": purpose.json(),
        "legal_basis": _dump(legal_basis),
        "processing_activity": processing_activity,
        "valid_until": _time(valid_until),
        "items": [item.json() for item in items],
    }
    if request_id is not None:
        body["request"] = request_id
    return Record(Kind.GRANT_CREATED, body)


def grant_used(
    grant_id: str,
    agency: Party,
    *,
    item: str,
    fetch_id: str,
    fetched_at: datetime,
    outcome: FetchOutcome,
    number: int | None = None,
    version: int | None = None,
    error: str | None = None,
) -> Record:
    """The relay recorded a fetch of ``item`` by the grant's agency at ``fetched_at`` (the
    relay's clock): ``served`` (the ``number``-th item served under the grant, at
    ``version``) or ``refused`` with the ``error`` code the agency got."""
    body: dict[str, Any] = {
        "grant": grant_id,
        "agency": agency.json(),
        "item": item,
        "fetch": fetch_id,
        "fetched_at": _time(fetched_at),
        "outcome": outcome,
    }
    if outcome is FetchOutcome.SERVED:
        if number is None or version is None:
            raise BadRecord("a served fetch has its number and the item's version")
        body["number"] = number
        body["version"] = version
    elif error is not None:
        body["error"] = error
    return Record(Kind.GRANT_USED, body)


def grant_revoked(grant_id: str, agency: Party, *, revoked_at: datetime, served: int) -> Record:
    """The relay confirmed the revocation at ``revoked_at`` (its clock), after it had served
    ``served`` fetches under the grant: any served fetch numbered above it, or fetched after
    that moment, breaks the policy."""
    return Record(
        Kind.GRANT_REVOKED,
        {"grant": grant_id, "agency": agency.json(), "revoked_at": _time(revoked_at),
         "served": served},
    )


# --- commitments --------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """One commitment opened: which entry, what it names, and the value committed to.

    ``path`` is the claim path for a released claim, ``None`` for an item's content digest.
    """

    seq: int
    kind: str
    commitment: str
    credential: str | None
    vct: str | None
    path: tuple[Any, ...] | None
    value: Any


def path_name(path: ClaimPath | list[Any]) -> str:
    """The name a claim's commitment is made under: the path as compact JSON."""
    return orjson.dumps(list(path)).decode()


def commitments(entry: Mapping[str, Any]) -> list[tuple[str, str, str | None, str | None]]:
    """``(commitment, name, credential id, vct)`` for each commitment in a parsed entry."""
    found: list[tuple[str, str, str | None, str | None]] = []
    kind = entry.get("kind")
    if kind == Kind.REQUEST_APPROVED:
        for credential in _list(entry.get("credentials")):
            if not isinstance(credential, dict):
                continue
            cid, vct = credential.get("credential"), credential.get("vct")
            for claim in _list(credential.get("claims")):
                if isinstance(claim, dict) and isinstance(claim.get("commitment"), str):
                    path = claim.get("path")
                    if isinstance(path, list):
                        found.append((claim["commitment"], path_name(path), _str(cid), _str(vct)))
    elif kind in (Kind.ITEM_ADDED, Kind.ITEM_CHANGED, Kind.ITEM_REMOVED):
        item = entry.get("item")
        if isinstance(item, dict) and isinstance(item.get("commitment"), str):
            found.append((item["commitment"], "sha256", None, None))
    return found


def check_opening(entry: Mapping[str, Any], opening: str) -> Opened:
    """Check an opening (a disclosure) against a parsed entry and return what it reveals.

    Returns the ``Opened`` value; raises ``audit.bad_opening`` when the opening is not a
    disclosure, its digest is no commitment of the entry, or it names another claim than
    the one committed at that place (RFC 9901 §4.2.3: the digest is over the text as given).
    """
    try:
        disclosure = _parse_disclosure(opening)
    except (BadDisclosure, VerificationFailed):
        raise BadOpening("RFC 9901 §4.2.1: an opening is a disclosure [salt, name, value]") \
            from None
    for commitment, name, credential, vct in commitments(entry):
        if commitment != disclosure.digest:
            continue
        if disclosure.name != name:
            raise BadOpening(f"the opening names {disclosure.name!r}, the entry commits to {name}")
        path = None if name == "sha256" else tuple(orjson.loads(name))
        seq = entry.get("seq")
        return Opened(
            seq if isinstance(seq, int) else -1,
            str(entry.get("kind")),
            commitment,
            credential,
            vct,
            path,
            disclosure.value,
        )
    raise BadOpening("RFC 9901 §4.2.3: the opening's digest is not a commitment of this entry")


def receipt_hash(token: str) -> str:
    """base64url SHA-256 of a receipt token as received (ASCII)."""
    return b64url_encode(hashlib.sha256(token.encode("utf-8")).digest())


# --- private ------------------------------------------------------------------------------


def _disclose(salt: str, name: str, value: Any) -> str:
    try:
        return format_disclosure(salt, name, value).encoded
    except (TypeError, ValueError):
        raise BadRecord("RFC 8259: a committed value is JSON") from None


def _receipt_members(receipt: Receipt) -> dict[str, Any]:
    members = receipt_entry(receipt)
    members.pop("kind", None)
    return members


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise BadRecord("RFC 3339 §5.6: a time says its time zone")
    return format_timestamp(moment)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
