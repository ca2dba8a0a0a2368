"""Openings: the citizen reveals the values behind one entry's commitments to an auditor.

An opening file (``specs/audit-export.md`` §6) names the log (origin), the entry (its
position and exact line) and holds the entry's disclosures. The auditor checks it against
an export it has verified: the line must be the export's line at that position, and every
disclosure must hash to one of that entry's commitments and name the claim committed there.
Nothing else of the log is revealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from vault.errors import InvalidInput
from verifiers.audit_export import ENTRIES, ExportReader, entry_blocks, verify_export
from verifiers.log_entry import BadOpening, Opened, check_opening
from verifiers.note import VerifierKey
from verifiers.tlog import canonical_json, parse_entry

FORMAT = "kluis-opening"
MAX_OPENING_BYTES = 1024 * 1024
SPEC = "specs/audit-export.md"


class MalformedOpening(InvalidInput):
    code = "audit.malformed_opening"
    en = "The opening file is not in the expected form. Ask for a fresh one."
    nl = "Het openingsbestand heeft niet de verwachte vorm. Vraag om een nieuw bestand."


@dataclass(frozen=True)
class Opening:
    """The openings of one entry: log origin, position, the line, its disclosures."""

    origin: str
    seq: int
    line: bytes
    disclosures: tuple[str, ...]


def format_opening(opening: Opening) -> bytes:
    """The opening file: RFC 8785 JSON and a newline."""
    return canonical_json({
        "format": FORMAT,
        "v": 1,
        "origin": opening.origin,
        "seq": opening.seq,
        "entry": opening.line.decode("utf-8"),
        "openings": list(opening.disclosures),
    }) + b"\n"


def parse_opening(data: bytes) -> Opening:
    """An opening file's content. Raises ``audit.malformed_opening``."""
    if len(data) > MAX_OPENING_BYTES:
        raise MalformedOpening(f"{SPEC} §6: at most {MAX_OPENING_BYTES} bytes")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedOpening(f"{SPEC} §6: not JSON") from None
    if (
        not isinstance(obj, dict)
        or obj.get("format") != FORMAT
        or obj.get("v") != 1
        or not isinstance(obj.get("origin"), str)
        or type(obj.get("seq")) is not int
        or obj["seq"] < 0
        or not isinstance(obj.get("entry"), str)
        or not isinstance(obj.get("openings"), list)
        or not all(isinstance(o, str) for o in obj["openings"])
    ):
        raise MalformedOpening(f"{SPEC} §6: {{format, v, origin, seq, entry, openings}}")
    return Opening(obj["origin"], obj["seq"], obj["entry"].encode("utf-8"),
                   tuple(obj["openings"]))


def check_openings(
    export: Path, opening: Opening, *, key: VerifierKey | None = None
) -> list[Opened]:
    """Verify ``export``, then check ``opening`` against its entry; what each disclosure
    reveals, in order.

    Raises what ``verify_export`` raises, and ``audit.bad_opening`` when the opening is for
    another log or position, its line is not the export's, or a disclosure does not open a
    commitment of that entry.
    """
    verified = verify_export(export, key=key)
    if opening.origin != verified.origin:
        raise BadOpening(f"{SPEC} §6: the opening is for log {opening.origin!r}")
    if opening.seq >= verified.checkpoint.size:
        raise BadOpening(f"{SPEC} §6: the export has no entry {opening.seq}")
    line = _line_at(export, opening.seq)
    if line != opening.line:
        raise BadOpening(f"{SPEC} §6: entry {opening.seq} in the export is another line")
    entry = parse_entry(line, seq=opening.seq)
    return _open_all(entry, opening.disclosures)


def _open_all(entry: dict[str, object], disclosures: Sequence[str]) -> list[Opened]:
    if not disclosures:
        raise BadOpening(f"{SPEC} §6: the opening holds no disclosure")
    return [check_opening(entry, disclosure) for disclosure in disclosures]


def _line_at(export: Path, seq: int) -> bytes:
    with ExportReader(export) as reader, reader.open(ENTRIES) as stream:
        first = 0
        for block in entry_blocks(stream):
            if seq < first + len(block):
                return block[seq - first]
            first += len(block)
    raise BadOpening(f"{SPEC} §6: the export has no entry {seq}")
