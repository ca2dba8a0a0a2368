"""Reconciling a citizen's consent log with an agency's receipt log (``specs/audit-export.md``
§5): the releases one side holds and the other does not.

Both exports are verified first (``verify_export``). The citizen's releases are its
``presentation_sent`` entries with outcome ``sent``, one per presentation hash; the agency's
records are its ``receipt`` entries. They match on ``presentation_hash``; a receipt the
citizen holds matches the agency's entry on ``receipt_id``. An agency log holds receipts of
many citizens and names none of them, so only its receipts for requests the citizen's log
knows (same request id) are this citizen's; the others are counted, not listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifiers.audit_export import (
    ENTRIES,
    ExportReader,
    VerifiedExport,
    entry_blocks,
    verify_export,
)
from verifiers.log_entry import Kind
from verifiers.note import VerifierKey
from verifiers.replay import ALWAYS_DISCLOSED
from verifiers.tlog import BadEntry, parse_entry


@dataclass(frozen=True)
class Release:
    """One presentation the citizen sent, as its log says."""

    seq: int
    request: str
    verifier: str
    presentation_hash: str
    vct: str
    claims: tuple[tuple[Any, ...], ...]
    time: str


@dataclass(frozen=True)
class AgencyRecord:
    """One receipt in the agency's log."""

    seq: int
    receipt_id: str
    request: str
    verifier: str
    presentation_hash: str
    vct: str
    claims: tuple[tuple[Any, ...], ...]
    time: str


@dataclass(frozen=True)
class ClaimsDiffer:
    """A release both sides hold, with different claims."""

    release: Release
    record: AgencyRecord


@dataclass(frozen=True)
class Reconciliation:
    """What each side holds that the other does not."""

    citizen: VerifiedExport
    agency: VerifiedExport
    matched: int
    citizen_only: tuple[Release, ...]
    """Sent by the citizen; no receipt in the agency's log."""
    agency_only: tuple[AgencyRecord, ...]
    """A receipt in the agency's log, for a request of this citizen, that no release of the
    citizen's log accounts for."""
    receipts_not_logged: tuple[str, ...]
    """Receipt ids the citizen holds that the agency's log does not have."""
    claims_differ: tuple[ClaimsDiffer, ...]
    other_receipts: int
    """Agency receipts for requests this citizen's log does not know (other citizens)."""

    @property
    def consistent(self) -> bool:
        return not (self.citizen_only or self.agency_only or self.receipts_not_logged
                    or self.claims_differ)


def reconcile_exports(
    citizen: Path,
    agency: Path,
    *,
    citizen_key: VerifierKey | None = None,
    agency_key: VerifierKey | None = None,
) -> Reconciliation:
    """Verify both exports and compare the citizen's releases with the agency's receipts.

    Returns the ``Reconciliation``. Raises what ``verify_export`` raises for either export
    and ``log.bad_entry`` for a line that is not an entry.
    """
    citizen_verified = verify_export(citizen, key=citizen_key)
    agency_verified = verify_export(agency, key=agency_key)
    releases: dict[str, Release] = {}
    requests: set[str] = set()
    held_receipts: dict[str, str] = {}
    for entry in _entries(citizen):
        kind = entry["kind"]
        if kind == Kind.REQUEST_RECEIVED:
            requests.add(_text(entry, "request"))
        elif kind == Kind.PRESENTATION_SENT and entry.get("outcome") == "sent":
            for release in _releases(entry):
                releases[release.presentation_hash] = release
                requests.add(release.request)
        elif kind == Kind.RECEIPT_RECEIVED:
            held_receipts[_text(entry, "receipt_id")] = _text(entry, "request")
    matched, others = 0, 0
    agency_only: list[AgencyRecord] = []
    differ: list[ClaimsDiffer] = []
    logged_receipts: set[str] = set()
    for entry in _entries(agency):
        if entry["kind"] != Kind.RECEIPT:
            continue
        record = _record(entry)
        logged_receipts.add(record.receipt_id)
        if record.presentation_hash in releases:
            release = releases.pop(record.presentation_hash)
            matched += 1
            if _compared(release.claims) != _compared(record.claims) or release.vct != record.vct:
                differ.append(ClaimsDiffer(release, record))
        elif record.request in requests:
            agency_only.append(record)
        else:
            others += 1
    return Reconciliation(
        citizen_verified,
        agency_verified,
        matched,
        tuple(sorted(releases.values(), key=lambda r: r.seq)),
        tuple(agency_only),
        tuple(sorted(r for r in held_receipts if r not in logged_receipts)),
        tuple(differ),
        others,
    )


def _compared(claims: tuple[tuple[Any, ...], ...]) -> set[tuple[Any, ...]]:
    """The claims to compare: a receipt names what the agency asked for and kept, the
    citizen's log also what the credential always shows (``iss``, ``vct``, ``cnf``, ...)."""
    return {claim for claim in claims if not (claim[:1] and claim[0] in ALWAYS_DISCLOSED)}


def _entries(path: Path) -> Iterator[dict[str, Any]]:
    with ExportReader(path) as export, export.open(ENTRIES) as stream:
        seq = 0
        for block in entry_blocks(stream):
            for line in block:
                yield parse_entry(line, seq=seq)
                seq += 1


def _releases(entry: dict[str, Any]) -> Iterator[Release]:
    verifier = entry.get("verifier")
    verifier_id = verifier.get("id") if isinstance(verifier, dict) else None
    presentations = entry.get("presentations")
    if not isinstance(verifier_id, str) or not isinstance(presentations, list):
        raise BadEntry(f"entry {entry['seq']}: presentation_sent names verifier, presentations")
    for presentation in presentations:
        if not isinstance(presentation, dict):
            raise BadEntry(f"entry {entry['seq']}: a presentation is an object")
        yield Release(entry["seq"], _text(entry, "request"), verifier_id,
                      _text(presentation, "hash", entry["seq"]),
                      _text(presentation, "vct", entry["seq"]),
                      _paths(presentation.get("claims"), entry["seq"]), entry["time"])


def _record(entry: dict[str, Any]) -> AgencyRecord:
    seq = entry["seq"]
    return AgencyRecord(seq, _text(entry, "receipt_id"), _text(entry, "request_id"),
                        _text(entry, "verifier"), _text(entry, "presentation_hash"),
                        _text(entry, "vct"), _paths(entry.get("claims"), seq), entry["time"])


def _text(obj: dict[str, Any], name: str, seq: int | None = None) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        where = obj.get("seq", seq)
        raise BadEntry(f"entry {where}: {name} is a string")
    return value


def _paths(value: object, seq: int) -> tuple[tuple[Any, ...], ...]:
    if not isinstance(value, list) or not all(isinstance(p, list) and p for p in value):
        raise BadEntry(f"entry {seq}: claims is a list of paths")
    return tuple(tuple(p) for p in value)
