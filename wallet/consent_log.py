"""The citizen's consent log: ``verifiers.tlog`` over tables in the vault.

Component ``consent`` (``specs/consent-log.md``):

- ``consent_entry(seq, line, leaf_hash)``: the entries, exactly as hashed;
- ``consent_state``: one row, the size, the tree's right edge and the latest checkpoint;
- ``consent_checkpoint(size, note)``: checkpoints this log handed out (in an export), which
  every later export carries so an auditor can check that the log never forked;
- ``consent_opening(seq, commitment, disclosure)``: the openings of each entry's
  commitments: the released values, which never leave with an export;
- ``consent_attachment(seq, kind, name)`` and ``consent_document(kind, name, content)``:
  the receipts and trust lists entries refer to (a trust list is kept once however many
  entries name it);
- ``consent_key``: the Ed25519 log key, in Go's ``PRIVATE+KEY`` form, only ever in here.

Every append runs in a vault transaction (the caller's, or its own), so an entry, its
openings and the new checkpoint commit together with whatever the caller changed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from vault import FileExists, ItemEvent, NoFile, NotFound, Transaction, Vault
from vault.event import EventKind
from vault.schema import Schema
from verifiers.audit_export import EarlierCheckpoint, ExportSummary, write_export
from verifiers.checkpoint import Checkpoint, verify_checkpoint
from verifiers.disclosure import digest_of
from verifiers.log_entry import ExportKind, Kind, export_made, item_event
from verifiers.merkle import HASH_SIZE, MerkleTree, prove_consistency, prove_inclusion
from verifiers.note import (
    Signer,
    VerifierKey,
    format_signer_key,
    format_verifier_key,
    parse_signer_key,
)
from verifiers.opening import Opening
from verifiers.tlog import (
    EMPTY_HEAD,
    Appended,
    Attachment,
    AttachmentClash,
    Damaged,
    LogEntry,
    LogHead,
    Record,
    append,
    parse_entry,
)

ORIGIN_PREFIX = "kluis.local/log/"
_READ_CHUNK = 4096

_V1 = """
CREATE TABLE consent_entry (
    seq INTEGER PRIMARY KEY,
    line BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);
CREATE TABLE consent_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    compact_range BLOB NOT NULL,
    checkpoint TEXT NOT NULL
);
INSERT INTO consent_state (id, size, compact_range, checkpoint) VALUES (1, 0, x'', '');
CREATE TABLE consent_checkpoint (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
CREATE TABLE consent_opening (
    seq INTEGER NOT NULL,
    commitment TEXT NOT NULL,
    disclosure TEXT NOT NULL,
    PRIMARY KEY (seq, commitment)
);
CREATE TABLE consent_document (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE consent_attachment (
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (seq, kind, name)
);
CREATE TABLE consent_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    signer TEXT NOT NULL
);
"""

SCHEMA = Schema("consent", (_V1,))
"""The consent log's tables: pass it to ``open_vault`` / ``create_profile`` (``wallet.SCHEMAS``)."""

_EVENT_KINDS = {
    EventKind.ADDED: Kind.ITEM_ADDED,
    EventKind.CHANGED: Kind.ITEM_CHANGED,
    EventKind.REMOVED: Kind.ITEM_REMOVED,
}


class NoSuchEntry(NotFound):
    code = "log.no_such_entry"
    en = "The log has no entry number {seq}. See 'kluis audit show' for the entries."
    nl = "Het logboek heeft geen regel nummer {seq}. Zie 'kluis audit show' voor de regels."


class VaultLogStore:
    """``verifiers.tlog.LogStore`` over the ``consent_*`` tables, inside one transaction."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def head(self) -> LogHead:
        row = self._tx.query_one("SELECT size, compact_range, checkpoint FROM consent_state")
        if row is None:
            return EMPTY_HEAD
        size, edge, note = int(row[0]), bytes(row[1]), str(row[2])
        if len(edge) != HASH_SIZE * size.bit_count():
            raise Damaged(f"the stored right edge does not fit size {size}")
        hashes = tuple(edge[i : i + HASH_SIZE] for i in range(0, len(edge), HASH_SIZE))
        return LogHead(size, hashes, note)

    def write(self, entries: Sequence[LogEntry], head: LogHead) -> None:
        tx = self._tx
        tx.executemany(
            "INSERT INTO consent_entry (seq, line, leaf_hash) VALUES (?, ?, ?)",
            [(e.seq, e.line, e.leaf_hash) for e in entries],
        )
        openings = [(e.seq, digest_of(o), o) for e in entries for o in e.openings]
        if openings:
            tx.executemany(
                "INSERT INTO consent_opening (seq, commitment, disclosure) VALUES (?, ?, ?)",
                openings,
            )
        for entry in entries:
            for attachment in entry.attachments:
                self._attach(entry.seq, attachment)
        tx.execute(
            "UPDATE consent_state SET size = ?, compact_range = ?, checkpoint = ? WHERE id = 1",
            (head.size, b"".join(head.compact_range), head.checkpoint),
        )

    def _attach(self, seq: int, attachment: Attachment) -> None:
        row = self._tx.query_one(
            "SELECT content FROM consent_document WHERE kind = ? AND name = ?",
            (attachment.kind, attachment.name),
        )
        if row is None:
            self._tx.execute(
                "INSERT INTO consent_document (kind, name, content) VALUES (?, ?, ?)",
                (attachment.kind, attachment.name, attachment.content),
            )
        elif str(row[0]) != attachment.content:
            raise AttachmentClash(f"{attachment.kind} {attachment.name!r}")
        self._tx.execute(
            "INSERT OR IGNORE INTO consent_attachment (seq, kind, name) VALUES (?, ?, ?)",
            (seq, attachment.kind, attachment.name),
        )

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        rows = self._tx.query(
            "SELECT leaf_hash FROM consent_entry WHERE seq >= ? AND seq < ? ORDER BY seq",
            (start, end),
        )
        return [bytes(row[0]) for row in rows]

    def lines(self, start: int, end: int) -> Iterator[bytes]:
        # In chunks, each its own query: bounded memory, and no cursor left open across calls.
        for low in range(start, end, _READ_CHUNK):
            rows = self._tx.query(
                "SELECT line FROM consent_entry WHERE seq >= ? AND seq < ? ORDER BY seq",
                (low, min(low + _READ_CHUNK, end)),
            )
            for row in rows:
                yield bytes(row[0])

    def attachments(self, start: int, end: int) -> Iterator[tuple[int, Attachment]]:
        rows = self._tx.query(
            "SELECT a.seq, a.kind, a.name, d.content FROM consent_attachment a"
            " JOIN consent_document d ON d.kind = a.kind AND d.name = a.name"
            " WHERE a.seq >= ? AND a.seq < ? ORDER BY a.seq, a.kind, a.name",
            (start, end),
        )
        for seq, kind, name, content in rows:
            yield int(seq), Attachment(str(kind), str(name), str(content))

    def openings(self, seq: int) -> tuple[str, ...]:
        rows = self._tx.query(
            "SELECT disclosure FROM consent_opening WHERE seq = ? ORDER BY commitment", (seq,)
        )
        return tuple(str(row[0]) for row in rows)


class ConsentLog:
    """The consent log of one open vault. Get it from ``wallet.open_wallet``."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._signer = _load_or_create_signer(vault)

    # -- identity ---------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """The log's origin: its checkpoints' first line and its key's name."""
        return self._signer.name

    @property
    def verifier_key(self) -> VerifierKey:
        return self._signer.verifier_key

    @property
    def verifier_key_text(self) -> str:
        """The public key as an auditor pins it (``log.vkey``)."""
        return format_verifier_key(self._signer.verifier_key)

    # -- writing ----------------------------------------------------------------------------

    def append(
        self, records: Sequence[Record], *, now: datetime, tx: Transaction | None = None
    ) -> Appended:
        """Append ``records`` as one batch with one signed checkpoint.

        In ``tx`` when given (the entry commits with the caller's change, or not at all),
        else in a transaction of its own. Returns the entries and checkpoint. Raises
        ``log.bad_record``, ``log.entry_too_large``, ``log.attachment_clash``, ``log.damaged``.
        """
        if tx is not None:
            return append(VaultLogStore(tx), self._signer, records, now=now)
        with self._vault.transaction() as own:
            return append(VaultLogStore(own), self._signer, records, now=now)

    def install(self) -> None:
        """Log every vault item change, inside the change's own transaction."""
        self._vault.subscribe(self._on_item_event)

    def _on_item_event(self, event: ItemEvent, tx: Transaction) -> None:
        record = item_event(
            _EVENT_KINDS[event.kind],
            event.name,
            event.item_type.value,
            event.media_type,
            event.size,
            event.sha256,
        )
        self.append([record], now=event.time, tx=tx)

    def publish(self, note: str, tx: Transaction) -> None:
        """Remember a checkpoint that left the vault: later exports carry it."""
        checkpoint = verify_checkpoint(note, self.verifier_key, origin=self.origin)
        tx.execute(
            "INSERT OR IGNORE INTO consent_checkpoint (size, note) VALUES (?, ?)",
            (checkpoint.size, note),
        )

    def export(self, target: Path, *, now: datetime) -> ExportSummary:
        """Export the log for an auditor to the new folder (or ``.tar``) ``target``.

        Log first: an ``export_made`` entry is appended and its checkpoint recorded as handed
        out before anything is written, so the export includes its own record and every
        later export proves it extends this one. Returns what was written. Raises
        ``vault.file_exists`` / ``vault.no_file`` for a taken name or a missing folder.
        """
        if target.exists() or target.is_symlink():
            raise FileExists(path=str(target))
        if not target.parent.is_dir():
            raise NoFile(path=str(target.parent))
        with self._vault.transaction() as tx:
            earlier = self.published()
            done = self.append([export_made(ExportKind.AUDIT)], now=now, tx=tx)
            self.publish(done.note, tx)
        size = done.checkpoint.size
        proofs = []
        for note in earlier:
            old = verify_checkpoint(note, self.verifier_key, origin=self.origin)
            if old.size < size:
                proofs.append(EarlierCheckpoint(note, old.size, self.prove_consistency(old.size,
                                                                                    size)))
        return write_export(
            target,
            lines=self.lines(0, size),
            size=size,
            attachments=self.attachments(0, size),
            checkpoint=done.note,
            verifier_key=self.verifier_key_text,
            earlier=proofs,
        )

    # -- reading ----------------------------------------------------------------------------

    def head(self) -> LogHead:
        return VaultLogStore(self._vault.reader()).head()

    @property
    def size(self) -> int:
        return self.head().size

    def checkpoint(self) -> Checkpoint | None:
        """The latest checkpoint, verified with the log's own key (None while empty)."""
        note = self.head().checkpoint
        return verify_checkpoint(note, self.verifier_key, origin=self.origin) if note else None

    def lines(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The entries' bytes, in order (a snapshot of the size when called)."""
        return VaultLogStore(self._vault.reader()).lines(start, self.size if end is None else end)

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[dict[str, Any]]:
        """The entries, parsed and checked (``log.bad_entry`` for a damaged line)."""
        for seq, line in enumerate(self.lines(start, end), start):
            yield parse_entry(line, seq=seq)

    def entry(self, seq: int) -> dict[str, Any]:
        """Entry ``seq``; raises ``log.no_such_entry``."""
        if not 0 <= seq < self.size:
            raise NoSuchEntry(seq=seq)
        return next(self.entries(seq, seq + 1))

    def openings(self, seq: int) -> tuple[str, ...]:
        """The openings kept with entry ``seq`` (empty for an entry without commitments)."""
        if not 0 <= seq < self.size:
            raise NoSuchEntry(seq=seq)
        return VaultLogStore(self._vault.reader()).openings(seq)

    def open_entry(self, seq: int) -> Opening:
        """Entry ``seq`` with the openings of its commitments, for an auditor
        (``verifiers.opening``). The values it reveals are personal data: hand it over only
        to whoever must see them. Raises ``log.no_such_entry``."""
        line = next(self.lines(seq, seq + 1), None) if 0 <= seq < self.size else None
        if line is None:
            raise NoSuchEntry(seq=seq)
        return Opening(self.origin, seq, line, self.openings(seq))

    def attachments(self, start: int, end: int) -> Iterator[tuple[int, Attachment]]:
        return VaultLogStore(self._vault.reader()).attachments(start, end)

    def published(self) -> list[str]:
        """The checkpoints that left the vault, oldest first."""
        rows = self._vault.reader().query("SELECT note FROM consent_checkpoint ORDER BY size")
        return [str(row[0]) for row in rows]

    def prove_inclusion(self, seq: int, size: int | None = None) -> tuple[bytes, ...]:
        """RFC 9162 §2.1.3.1 path for entry ``seq`` in the tree of ``size`` (default: now)."""
        size = self.size if size is None else size
        return prove_inclusion(seq, size, VaultLogStore(self._vault.reader()))

    def prove_consistency(self, size1: int, size2: int | None = None) -> tuple[bytes, ...]:
        """RFC 9162 §2.1.4.1 proof from ``size1`` to ``size2`` (default: now)."""
        size2 = self.size if size2 is None else size2
        return prove_consistency(size1, size2, VaultLogStore(self._vault.reader()))

    def check(self) -> Checkpoint | None:
        """Recompute every leaf and the root from the stored entries and compare them with
        the stored leaf hashes, right edge and latest checkpoint.

        Returns the latest checkpoint; raises ``log.damaged`` on any difference.
        """
        reader = self._vault.reader()
        head = VaultLogStore(reader).head()
        tree = MerkleTree()
        for row in reader.iterate("SELECT seq, line, leaf_hash FROM consent_entry ORDER BY seq"):
            if int(row[0]) != tree.size:
                raise Damaged(f"entry {tree.size} is missing")
            if tree.append_entry(bytes(row[1])) != bytes(row[2]):
                raise Damaged(f"entry {row[0]}: the stored leaf hash differs")
        if tree.size != head.size or tree.compact_range != head.compact_range:
            raise Damaged(f"{tree.size} entries stored, the state says {head.size}")
        if not head.checkpoint:
            if tree.size:
                raise Damaged("entries without a checkpoint")
            return None
        checkpoint = verify_checkpoint(head.checkpoint, self.verifier_key, origin=self.origin)
        if checkpoint.size != tree.size or checkpoint.root_hash != tree.root():
            raise Damaged("the latest checkpoint is not of the stored entries")
        return checkpoint


def _load_or_create_signer(vault: Vault) -> Signer:
    """The log key from the vault; made (random origin, key name = origin) on first use."""
    with vault.transaction() as tx:
        row = tx.query_one("SELECT signer FROM consent_key WHERE id = 1")
        if row is not None:
            return parse_signer_key(str(row[0]))
        signer = Signer.generate(ORIGIN_PREFIX + secrets.token_hex(16))
        tx.execute(
            "INSERT INTO consent_key (id, signer) VALUES (1, ?)", (format_signer_key(signer),)
        )
        return signer
