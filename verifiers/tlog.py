"""An append-only log of JSON entries: RFC 8785 lines, an RFC 9162 tree, C2SP checkpoints.

Both the citizen's consent log (in the vault) and an agency's receipt log (on a server store)
are this log over their own ``LogStore``. An entry is one JSON object in RFC 8785 canonical
form with an envelope of four members, ``v`` (1), ``seq`` (its 0-based position), ``time``
(RFC 3339 UTC, whole seconds) and ``kind``, and the members of its kind. Its bytes are a leaf
of the RFC 9162 tree (leaf hash ``SHA-256(0x00 || line)``), and every appended batch ends
with one signed C2SP checkpoint: checkpoints are signed, not entries, so replaying a log is
hash-bound, not signature-bound. Formats: ``specs/consent-log.md`` and
``specs/audit-log-formats.md``.

``append`` is the producer; ``parse_entry`` checks one line as an auditor reads it.
Canonical bytes come from ``orjson`` (sorted keys) where that provably equals RFC 8785 (no
floats, integers within ±(2**53 - 1), no character outside the Basic Multilingual Plane,
whose UTF-16 sort order differs) and from ``rfc8785`` otherwise.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from itertools import accumulate
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import Any, Protocol

import orjson
import rfc8785

from vault.errors import Conflict, InvalidInput, VerificationFailed
from verifiers._document import format_timestamp
from verifiers.checkpoint import Checkpoint, sign_checkpoint
from verifiers.merkle import MerkleTree
from verifiers.note import Signer

ENTRY_VERSION = 1
MAX_ENTRY_BYTES = 64 * 1024
"""An entry names claims and commitments, never documents: 64 KiB is far more than any needs."""
MAX_BATCH = 100_000
MAX_SAFE_INTEGER = 2**53 - 1
"""I-JSON (RFC 7493 §2.2) and RFC 8785 §3.2.2.3: integers beyond this are not exact."""
ENVELOPE = ("v", "seq", "time", "kind")

_KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_SORT = orjson.OPT_SORT_KEYS
_STRICT = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_FRACTION = re.compile(rb"\.0")
_EXPONENT = re.compile(rb"0e[-+]")
_BEFORE_NUMBER = frozenset(b":,[-")
# The lead bytes of 4-byte UTF-8 sequences: characters outside the BMP.
_BEYOND_BMP = re.compile(rb"[\xf0-\xf4]")


class BadRecord(InvalidInput):
    code = "log.bad_record"
    en = "This event cannot be written to the log: it holds data the log does not accept."
    nl = "Deze gebeurtenis kan niet in het logboek: er staan gegevens in die het niet aanneemt."


class EntryTooLarge(InvalidInput):
    code = "log.entry_too_large"
    en = "This event is too large for the log (at most 64 KiB). Split it or leave out details."
    nl = (
        "Deze gebeurtenis is te groot voor het logboek (hoogstens 64 KiB). "
        "Splits haar of laat details weg."
    )


class BadEntry(InvalidInput):
    code = "log.bad_entry"
    en = "A line of the log is not a valid entry. The log cannot be read as it is."
    nl = "Een regel van het logboek is geen geldige regel. Het logboek is zo niet te lezen."


class Damaged(VerificationFailed):
    code = "log.damaged"
    en = (
        "The stored log does not match its own checkpoint. Do not trust it; "
        "restore the vault from a backup and report this."
    )
    nl = (
        "Het opgeslagen logboek past niet bij het eigen controlepunt. Vertrouw het niet; "
        "zet de kluis terug uit een reservekopie en meld dit."
    )


class AttachmentClash(Conflict):
    code = "log.attachment_clash"
    en = "A document with this name is already kept with the log, with other content."
    nl = "Bij het logboek is al een document met deze naam bewaard, met een andere inhoud."


@dataclass(frozen=True, slots=True)
class Attachment:
    """A public document an entry refers to by hash, exported beside the log.

    ``kind`` is ``"receipt"`` (an agency's signed receipt, named by its receipt id) or
    ``"trust_list"`` (a signed trust list, named by its hash); ``content`` is the text as
    received.
    """

    kind: str
    name: str
    content: str


@dataclass(frozen=True)
class Record:
    """An entry to append: its ``kind`` and ``body`` (JSON members besides the envelope).

    ``openings`` are the disclosures of the commitments in ``body``: they stay in the store
    and never leave with an export. ``attachments`` leave with it.
    """

    kind: str
    body: Mapping[str, Any]
    openings: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An appended entry: its position, its exact bytes and leaf hash, and its side data."""

    seq: int
    line: bytes
    leaf_hash: bytes
    openings: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class LogHead:
    """What a store keeps besides the entries: the size, the tree's right edge
    (``MerkleTree.compact_range``) and the latest signed checkpoint (``""`` while empty)."""

    size: int
    compact_range: tuple[bytes, ...]
    checkpoint: str


EMPTY_HEAD = LogHead(0, (), "")


class LogStore(Protocol):
    """Where a log keeps its entries. Every call of one ``append`` runs inside the store's
    transaction, so entries and head change together or not at all."""

    def head(self) -> LogHead:
        """The stored head (``EMPTY_HEAD`` for a new log)."""
        ...

    def write(self, entries: Sequence[LogEntry], head: LogHead) -> None:
        """Store ``entries`` (with openings and attachments) and the new ``head``."""
        ...

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        """The leaf hashes of entries ``start`` up to (not including) ``end``."""
        ...

    def lines(self, start: int, end: int) -> Iterator[bytes]:
        """The entry lines ``start`` up to ``end``, in order, without newlines."""
        ...

    def attachments(self, start: int, end: int) -> Iterator[tuple[int, Attachment]]:
        """The attachments of entries ``start`` up to ``end``, by entry position."""
        ...


@dataclass(frozen=True)
class Appended:
    """The result of one ``append``: the new entries and the signed checkpoint after them."""

    entries: tuple[LogEntry, ...]
    checkpoint: Checkpoint
    note: str


def append(
    store: LogStore, signer: Signer, records: Sequence[Record], *, now: datetime
) -> Appended:
    """Append ``records`` as one batch at time ``now`` and sign one checkpoint after them.

    Call it inside the store's transaction. The checkpoint's origin is the signer's name
    (C2SP tlog-checkpoint: key name = origin). Returns the entries and the checkpoint.
    Raises ``log.bad_record`` (bad kind, a reserved member, a value JSON or RFC 8785 cannot
    carry, ``now`` without a time zone, an empty or oversized batch) and
    ``log.entry_too_large``.
    """
    if not 1 <= len(records) <= MAX_BATCH:
        raise BadRecord(f"a batch holds 1 to {MAX_BATCH} records")
    if now.tzinfo is None:
        raise BadRecord("RFC 3339 §5.6: the time of an entry says its time zone")
    time = format_timestamp(now)
    head = store.head()
    tree = MerkleTree.from_compact_range(head.size, head.compact_range)
    entries: list[LogEntry] = []
    for record in records:
        line = format_entry(tree.size, time, record)
        leaf = tree.append_entry(line)
        entries.append(LogEntry(tree.size - 1, line, leaf, record.openings, record.attachments))
    checkpoint = Checkpoint(signer.name, tree.size, tree.root())
    note = sign_checkpoint(checkpoint, signer)
    store.write(entries, LogHead(tree.size, tree.compact_range, note))
    return Appended(tuple(entries), checkpoint, note)


def format_entry(seq: int, time: str, record: Record) -> bytes:
    """The canonical bytes of ``record`` at position ``seq`` (``specs/consent-log.md`` §2).

    Raises ``log.bad_record`` and ``log.entry_too_large``.
    """
    if not _KIND.fullmatch(record.kind):
        raise BadRecord("specs/consent-log.md §2: a kind is snake_case ASCII")
    clash = [name for name in ENVELOPE if name in record.body]
    if clash:
        raise BadRecord(f"specs/consent-log.md §2: {clash[0]!r} is set by the log")
    obj = {**record.body, "v": ENTRY_VERSION, "seq": seq, "time": time, "kind": record.kind}
    _check_values(obj)
    line = canonical_json(obj)
    if len(line) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(f"{len(line)} bytes")
    return line


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 bytes of ``obj`` (JSON values without floats). Raises ``log.bad_record``."""
    try:
        fast = orjson.dumps(obj, option=_SORT)
    except (TypeError, orjson.JSONEncodeError):
        raise BadRecord("RFC 8259: only JSON objects, arrays, strings and integers") from None
    if fast.isascii() or not _BEYOND_BMP.search(fast):
        return fast
    try:  # a character outside the BMP: RFC 8785 §3.2.3 sorts keys by UTF-16 code units
        return bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        raise BadRecord("RFC 8785: not canonicalizable") from None


def parse_entry(
    line: bytes, *, seq: int | None = None, floats_checked: bool = False
) -> dict[str, Any]:
    """The entry in ``line`` (without its newline), checked as an auditor reads it.

    Checks that the line is one JSON object in RFC 8785 canonical form (re-serializing it
    gives the same bytes, so every entry has exactly one spelling), with integers within
    ±(2**53 - 1), ``v`` 1, ``seq`` equal to ``seq`` (when given), a ``time`` in
    ``YYYY-MM-DDThh:mm:ssZ`` form and a snake_case ``kind``. Returns the object; raises
    ``log.bad_entry`` naming the rule broken. ``floats_checked`` skips the float check for a
    line whose block ``lines_with_floats`` cleared (the hot path of a replay).
    """
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BadEntry(_at(seq, "RFC 8259: not JSON in UTF-8")) from None
    if type(obj) is not dict:
        raise BadEntry(_at(seq, "specs/consent-log.md §2: an entry is a JSON object"))
    try:
        again = orjson.dumps(obj, option=_STRICT)
    except orjson.JSONEncodeError:
        raise BadEntry(_at(seq, "RFC 7493 §2.2: integers within ±(2**53 - 1)")) from None
    if again != line and not _is_rfc8785(obj, line):
        raise BadEntry(_at(seq, "RFC 8785 §3: the line is not in canonical form"))
    if not floats_checked and _may_hold_a_float(line) and _holds_a_float(line):
        raise BadEntry(_at(seq, "specs/consent-log.md §2: numbers are integers, no fractions"))
    v, position, time, kind = obj.get("v"), obj.get("seq"), obj.get("time"), obj.get("kind")
    if v != ENTRY_VERSION or type(v) is not int:
        raise BadEntry(_at(seq, f"specs/consent-log.md §2: v is {ENTRY_VERSION}"))
    if seq is not None and (position != seq or type(position) is not int):
        raise BadEntry(_at(seq, "specs/consent-log.md §2: seq is the line's position"))
    if type(time) is not str or (time not in _TIMES and not _remember_time(time)):
        raise BadEntry(_at(seq, "specs/consent-log.md §2: time is YYYY-MM-DDThh:mm:ssZ"))
    if type(kind) is not str or (kind not in _KINDS and not _remember_kind(kind)):
        raise BadEntry(_at(seq, "specs/consent-log.md §2: kind is snake_case ASCII"))
    return obj


def lines_with_floats(block: Sequence[bytes]) -> list[int]:
    """The indices of the lines of ``block`` that hold a number with a fraction or an
    exponent (``specs/consent-log.md`` §2 forbids them).

    One pass over the whole block in C finds every '.' or exponent sign after a digit; only
    those whose digits follow a JSON delimiter (as a number's do, unlike "art. 2.3.2" in a
    text) point at a line, which then gets the exact check. Cheaper than each line alone.
    """
    shape = b"\n".join(block).translate(_DIGITS_AS_ZERO)
    hits = []
    for match in (*_FRACTION.finditer(shape), *_EXPONENT.finditer(shape)):
        at = match.start()
        if shape[at] == 0x2E:  # ".0": the digits end just before the dot
            at -= 1
        start = at
        while at >= 0 and shape[at] == 0x30:
            at -= 1
        if at < start and (at < 0 or shape[at] in _BEFORE_NUMBER):
            hits.append(match.start())
    if not hits:
        return []
    ends = list(accumulate(len(line) + 1 for line in block))
    suspects = sorted({bisect_right(ends, at) for at in hits})
    return [i for i in suspects if _holds_a_float(block[i])]


def _may_hold_a_float(line: bytes) -> bool:
    """Whether a fraction (".5") or an exponent ("1e-7") shows in ``line``, as in every float
    orjson writes: two literal-prefix searches with every digit read as "0". Cheap, and
    rarely true of a line without floats: only of text such as "art. 2.3.2", which
    ``_holds_a_float`` then clears."""
    shape = line.translate(_DIGITS_AS_ZERO)
    return _FRACTION.search(shape) is not None or _EXPONENT.search(shape) is not None


def _holds_a_float(line: bytes) -> bool:
    """Whether a canonical line holds a number with a fraction or an exponent.

    Outside its strings a canonical line has only structure, ``true``/``false``/``null``
    and numbers, so a '.' or 'e' there is a float. Strings are cut out at their quotes;
    a line with an escaped character takes the slow, exact road.
    """
    if b"\\" not in line:
        outside = b"".join(line.split(b'"')[0::2])
        if b"." in outside:
            return True
        return b"e" in outside and b"e" in outside.replace(b"true", b"").replace(b"false", b"")
    try:
        json.loads(line, parse_float=_refuse_float)
    except _FloatFound:
        return True
    except ValueError:
        return False
    return False


class _FloatFound(Exception):
    pass


def _refuse_float(text: str) -> Any:
    raise _FloatFound(text)


# Times and kinds already found valid: a batch shares one time and a log has few kinds, so
# most lines skip the checks. Bounded: cleared when full.
_TIMES: set[str] = set()
_KINDS: set[str] = set()


def _remember_time(time: str) -> bool:
    if _TIME.fullmatch(time) is None:
        return False
    try:
        datetime.strptime(time, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    if len(_TIMES) > 4096:
        _TIMES.clear()
    _TIMES.add(time)
    return True


def _remember_kind(kind: str) -> bool:
    if _KIND.fullmatch(kind) is None:
        return False
    if len(_KINDS) > 1024:
        _KINDS.clear()
    _KINDS.add(kind)
    return True


def root_of_lines(lines: Sequence[bytes]) -> bytes:
    """The RFC 9162 root over ``lines`` as entries (a test and bench reference)."""
    tree = MerkleTree()
    tree.extend_entries(lines)
    return tree.root()


def leaf_hash_of(line: bytes) -> bytes:
    """``SHA-256(0x00 || line)`` (RFC 9162 §2.1.1)."""
    return sha256(b"\x00" + line).digest()


def _at(seq: int | None, rule: str) -> str:
    return rule if seq is None else f"entry {seq}: {rule}"


def _is_rfc8785(obj: Any, line: bytes) -> bool:
    if not _BEYOND_BMP.search(line):
        return False
    try:
        return bool(rfc8785.dumps(obj) == line)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return False


def _check_values(obj: object) -> None:
    """Refuse what an entry must not hold: floats, unsafe integers, non-string keys, surrogates."""
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if type(key) is not str:
                    raise BadRecord("RFC 8259 §4: object member names are strings")
                stack.append(key)
                stack.append(value)
        elif isinstance(node, list | tuple):
            stack.extend(node)
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not -MAX_SAFE_INTEGER <= node <= MAX_SAFE_INTEGER:
                raise BadRecord("RFC 7493 §2.2: integers within ±(2**53 - 1)")
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRecord("RFC 7493 §2.1: strings are valid Unicode") from None
        else:
            raise BadRecord(f"RFC 8259: {type(node).__name__} is not a JSON value")


class MemoryLogStore:
    """A ``LogStore`` in memory: for tests, and the model of what a server store keeps."""

    def __init__(self) -> None:
        self._head = EMPTY_HEAD
        self._lines: list[bytes] = []
        self._leaves: list[bytes] = []
        self._openings: dict[int, tuple[str, ...]] = {}
        self._attachments: list[tuple[int, Attachment]] = []

    def head(self) -> LogHead:
        return self._head

    def write(self, entries: Sequence[LogEntry], head: LogHead) -> None:
        for entry in entries:
            self._lines.append(entry.line)
            self._leaves.append(entry.leaf_hash)
            if entry.openings:
                self._openings[entry.seq] = entry.openings
            self._attachments.extend((entry.seq, a) for a in entry.attachments)
        self._head = head

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        return self._leaves[start:end]

    def lines(self, start: int, end: int) -> Iterator[bytes]:
        return iter(self._lines[start:end])

    def attachments(self, start: int, end: int) -> Iterator[tuple[int, Attachment]]:
        return iter([(seq, a) for seq, a in self._attachments if start <= seq < end])

    def openings(self, seq: int) -> tuple[str, ...]:
        """The openings kept with entry ``seq``."""
        return self._openings.get(seq, ())
