"""An agency's receipt log: ``verifiers.tlog`` over the server store (specs/consent-log.md
§3.7, specs/openid4vp.md §6).

Every receipt a verifying agency signs becomes one entry of kind ``receipt`` in an append-only
log of RFC 8785 lines hashed into an RFC 9162 tree, with a signed C2SP checkpoint after each
batch: the same format as the citizen's consent log, so an auditor checks both with the same
tools and matches them on ``presentation_hash``. ``ReceiptLog.export`` writes the audit export
(``entries.jsonl``, ``checkpoint``, ``log.vkey``, ``receipts.jsonl``) that
``verifiers.audit_export.verify_export`` verifies.

Tables (component ``receipt_log``): the entries exactly as hashed; one state row per log (size,
the tree's right edge, the latest checkpoint and the log's Ed25519 signer key, made on first
use); the receipt tokens entries refer to. Appends take the log's lock, so two nodes on one
PostgreSQL database append in turn and never fork the log. The signer key is a secret of the
agency's service and lives beside the log it signs, like any service key in its database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from server.store import Schema, Store, Transaction
from verifiers.audit_export import ExportSummary, write_export
from verifiers.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from verifiers.merkle import EMPTY_ROOT, HASH_SIZE, MerkleTree
from verifiers.note import (
    Signer,
    format_signer_key,
    format_verifier_key,
    parse_signer_key,
    parse_verifier_key,
)
from verifiers.tlog import (
    EMPTY_HEAD,
    Appended,
    Attachment,
    Damaged,
    LogEntry,
    LogHead,
    Record,
    append,
)

RECEIPT_LOG_SCHEMA = Schema(
    "receipt_log",
    (
        "CREATE TABLE receipt_log_entry ("
        " log TEXT NOT NULL, seq INTEGER NOT NULL, line BLOB NOT NULL, leaf_hash BLOB NOT NULL,"
        " PRIMARY KEY (log, seq));"
        "CREATE TABLE receipt_log_state ("
        " log TEXT PRIMARY KEY, size INTEGER NOT NULL, compact_range BLOB NOT NULL,"
        " checkpoint TEXT NOT NULL, signer TEXT NOT NULL);"
        "CREATE TABLE receipt_log_attachment ("
        " log TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,"
        " content TEXT NOT NULL, PRIMARY KEY (log, seq, kind, name))",
    ),
)

_CHUNK = 4096


class StoreLogStore:
    """``verifiers.tlog.LogStore`` over the ``receipt_log_*`` tables of log ``log``, inside
    one server-store transaction."""

    def __init__(self, tx: Transaction, log: str) -> None:
        self._tx = tx
        self._log = log

    def head(self) -> LogHead:
        rows = self._tx.execute(
            "SELECT size, compact_range, checkpoint FROM receipt_log_state WHERE log = ?",
            (self._log,),
        )
        if not rows:
            return EMPTY_HEAD
        size, edge, note = int(rows[0][0]), bytes(rows[0][1]), str(rows[0][2])
        if len(edge) != HASH_SIZE * size.bit_count():
            raise Damaged(f"the stored right edge does not fit size {size}")
        return LogHead(size, tuple(edge[i:i + HASH_SIZE] for i in range(0, len(edge), HASH_SIZE)),
                       note)

    def write(self, entries: Sequence[LogEntry], head: LogHead) -> None:
        self._tx.executemany(
            "INSERT INTO receipt_log_entry (log, seq, line, leaf_hash) VALUES (?, ?, ?, ?)",
            [(self._log, e.seq, e.line, e.leaf_hash) for e in entries],
        )
        attached = [(self._log, e.seq, a.kind, a.name, a.content)
                    for e in entries for a in e.attachments]
        if attached:
            self._tx.executemany(
                "INSERT INTO receipt_log_attachment (log, seq, kind, name, content)"
                " VALUES (?, ?, ?, ?, ?)", attached,
            )
        self._tx.execute(
            "UPDATE receipt_log_state SET size = ?, compact_range = ?, checkpoint = ?"
            " WHERE log = ?", (head.size, b"".join(head.compact_range), head.checkpoint, self._log),
        )

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        rows = self._tx.execute(
            "SELECT leaf_hash FROM receipt_log_entry WHERE log = ? AND seq >= ? AND seq < ?"
            " ORDER BY seq", (self._log, start, end),
        )
        return [bytes(row[0]) for row in rows]

    def lines(self, start: int, end: int) -> Iterator[bytes]:
        for low in range(start, end, _CHUNK):
            rows = self._tx.execute(
                "SELECT line FROM receipt_log_entry WHERE log = ? AND seq >= ? AND seq < ?"
                " ORDER BY seq", (self._log, low, min(low + _CHUNK, end)),
            )
            for row in rows:
                yield bytes(row[0])

    def attachments(self, start: int, end: int) -> Iterator[tuple[int, Attachment]]:
        rows = self._tx.execute(
            "SELECT seq, kind, name, content FROM receipt_log_attachment"
            " WHERE log = ? AND seq >= ? AND seq < ? ORDER BY seq, kind, name",
            (self._log, start, end),
        )
        for seq, kind, name, content in rows:
            yield int(seq), Attachment(str(kind), str(name), str(content))


class ReceiptLog:
    """The receipt log ``log`` in ``store`` (migrated to ``RECEIPT_LOG_SCHEMA``); ``origin``
    names it in its checkpoints and is its signer key's name (C2SP tlog-checkpoint)."""

    def __init__(self, store: Store, log: str, origin: str) -> None:
        self._store = store
        self.log = log
        self.origin = origin

    def append(self, tx: Transaction, records: Sequence[Record], *, now: datetime) -> Appended:
        """Append ``records`` as one batch inside ``tx`` (so they commit with the caller's
        change, or not at all), under the log's lock. Returns the entries and checkpoint.
        Raises the ``tlog.append`` errors."""
        tx.lock(f"receipt_log:{self.log}")
        signer = self._signer(tx)
        return append(StoreLogStore(tx, self.log), signer, records, now=now)

    def _signer(self, tx: Transaction) -> Signer:
        """The log's signer, made on first use (the caller holds the log's lock)."""
        rows = tx.execute("SELECT signer FROM receipt_log_state WHERE log = ?", (self.log,))
        if rows:
            return parse_signer_key(str(rows[0][0]))
        signer = Signer.generate(self.origin)
        tx.execute(
            "INSERT INTO receipt_log_state (log, size, compact_range, checkpoint, signer)"
            " VALUES (?, 0, ?, '', ?)", (self.log, b"", format_signer_key(signer)),
        )
        return signer

    def verifier_key_text(self) -> str:
        """The log's public key as an auditor pins it (``log.vkey``); makes the key on first
        use."""
        with self._store.transaction() as tx:
            tx.lock(f"receipt_log:{self.log}")
            return format_verifier_key(self._signer(tx).verifier_key)

    def head(self) -> LogHead:
        with self._store.transaction(readonly=True) as tx:
            return StoreLogStore(tx, self.log).head()

    def lines(self, start: int = 0, end: int | None = None) -> list[bytes]:
        """The entries' bytes from ``start`` to ``end`` (default: the current size)."""
        with self._store.transaction(readonly=True) as tx:
            logs = StoreLogStore(tx, self.log)
            return list(logs.lines(start, logs.head().size if end is None else end))

    def check(self) -> Checkpoint | None:
        """Recompute every leaf and the root from the stored lines and compare them with the
        stored leaf hashes, the right edge and the signed checkpoint. Returns the checkpoint
        (None while empty); raises ``log.damaged``."""
        key = self.verifier_key_text()
        with self._store.transaction(readonly=True) as tx:
            head = StoreLogStore(tx, self.log).head()
            rows = tx.execute(
                "SELECT seq, line, leaf_hash FROM receipt_log_entry WHERE log = ? ORDER BY seq",
                (self.log,),
            )
        tree = MerkleTree()
        for seq, line, leaf in rows:
            if int(seq) != tree.size or tree.append_entry(bytes(line)) != bytes(leaf):
                raise Damaged(f"entry {seq} is missing or its leaf hash differs")
        if tree.size != head.size or tree.compact_range != head.compact_range:
            raise Damaged(f"{tree.size} entries stored, the state says {head.size}")
        if not head.checkpoint:
            return None
        checkpoint = verify_checkpoint(head.checkpoint, parse_verifier_key(key), origin=self.origin)
        if checkpoint.size != tree.size or checkpoint.root_hash != tree.root():
            raise Damaged("the latest checkpoint is not of the stored entries")
        return checkpoint

    def export(self, target: Path) -> ExportSummary:
        """The audit export of the whole log at the new folder (or ``.tar``) ``target``
        (specs/audit-export.md). Raises ``FileExistsError`` when ``target`` exists."""
        key = self.verifier_key_text()
        with self._store.transaction(readonly=True) as tx:
            logs = StoreLogStore(tx, self.log)
            head = logs.head()
            lines = list(logs.lines(0, head.size))
            attachments = list(logs.attachments(0, head.size))
        checkpoint = head.checkpoint or self._empty_checkpoint()
        return write_export(target, lines=lines, size=head.size, attachments=attachments,
                            checkpoint=checkpoint, verifier_key=key)

    def _empty_checkpoint(self) -> str:
        """A signed checkpoint of the empty tree (C2SP tlog-checkpoint allows size 0), so a log
        with no receipt yet still exports, and an auditor can verify that it is empty."""
        with self._store.transaction() as tx:
            tx.lock(f"receipt_log:{self.log}")
            return sign_checkpoint(Checkpoint(self.origin, 0, EMPTY_ROOT), self._signer(tx))
