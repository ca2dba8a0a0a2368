"""An open vault: put, get, list and remove items, stream documents, run transactions, and
tell subscribers about every change.

Get one from ``vault.open_vault``; use it as a context manager so it closes (and releases the
profile lock) whatever happens.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from vault.database import Database, Transaction
from vault.document import CHUNK_SIZE, new_file, open_input, read_chunks
from vault.event import EventKind, ItemEvent, Subscriber
from vault.item import (
    DEFAULT_MEDIA_TYPE,
    MAX_ATTRIBUTE_BYTES,
    MAX_NOTE_BYTES,
    Item,
    ItemInfo,
    ItemType,
    NoSuchItem,
    NotADocument,
    encode_text,
    format_time,
    parse_media_type,
    parse_name,
    parse_source,
    parse_time,
)
from vault.profile import ProfileLock
from vault.schema import schema_versions

_COLUMNS = "name, type, media_type, source, added, changed, size, sha256"
_INSERT_ITEM = (
    "INSERT INTO vault_item (name, type, media_type, source, added, changed, size, sha256, value)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The f-strings below only ever splice this constant into SQL (hence the noqa: S608).


def _info(row: tuple[Any, ...]) -> ItemInfo:
    name, kind, media_type, source, added, changed, size, digest = row[:8]
    return ItemInfo(
        name=name,
        type=ItemType(kind),
        media_type=media_type,
        source=source,
        added=parse_time(added),
        changed=parse_time(changed),
        size=int(size),
        sha256=bytes(digest).hex(),
    )


class Vault:
    """One open vault. Not thread-safe: use it from the thread that opened it."""

    def __init__(self, database: Database, *, root: Path, lock: ProfileLock | None) -> None:
        self._db = database
        self.root = root
        self._lock = lock
        self._subscribers: list[Subscriber] = []

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database and release the profile lock. Closing twice is harmless."""
        try:
            self._db.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the seam for later components ------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction for the block: every put/remove inside it (and every subscriber's
        write) commits together when the block ends, or none does if it raises. Nested use
        joins the open transaction. Also the way to batch many puts into one commit.
        """
        with self._db.transaction() as tx:
            yield tx

    def reader(self) -> Transaction:
        """A handle for reading (e.g. a component's own tables) outside a transaction."""
        return self._db.reader()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(event, tx)`` for every change, inside the change's transaction.

        Returns a function that unsubscribes. See ``vault.event``.
        """
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def schema_versions(self) -> dict[str, int]:
        """Each component's schema version in this vault (``{"vault": 1, ...}``)."""
        return schema_versions(self._db.reader())

    def check_integrity(self) -> list[str]:
        """Problems found by reading and authenticating every page (empty when sound)."""
        return self._db.check_integrity()

    # -- writing ----------------------------------------------------------------------------

    def put_attribute(
        self, name: str, value: str, *, source: str, now: datetime | None = None
    ) -> ItemInfo:
        """Store (or replace) the attribute ``name`` = ``value``; its metadata.

        Raises BadName, BadSource, BadValue (over 64 KiB, or not valid Unicode).
        """
        data = encode_text(value, limit=MAX_ATTRIBUTE_BYTES)
        return self._put_text(ItemType.ATTRIBUTE, name, value, data, source, now)

    def put_note(
        self, name: str, text: str, *, source: str, now: datetime | None = None
    ) -> ItemInfo:
        """Store (or replace) the note ``name``; its metadata. Raises like put_attribute (1 MiB)."""
        data = encode_text(text, limit=MAX_NOTE_BYTES)
        return self._put_text(ItemType.NOTE, name, text, data, source, now)

    def put_document(
        self,
        name: str,
        content: Path | BinaryIO,
        *,
        media_type: str = DEFAULT_MEDIA_TYPE,
        source: str,
        now: datetime | None = None,
    ) -> ItemInfo:
        """Store (or replace) the document ``name`` from a file path or a binary stream, read
        in chunks so memory stays flat for any size; its metadata.

        Raises BadName, BadSource, BadMediaType, NoFile (no such path), NotAFile (a folder).
        """
        name = parse_name(name)
        source = parse_source(source)
        media_type = parse_media_type(media_type)
        with open_input(content) as stream, self.transaction() as tx:
            return self._write(
                tx, name, ItemType.DOCUMENT, media_type, source, None, read_chunks(stream), now
            )

    def remove(self, name: str, *, now: datetime | None = None) -> ItemInfo:
        """Remove the item ``name``; what it was. Raises NoSuchItem."""
        name = parse_name(name)
        with self.transaction() as tx:
            row = tx.query_one(f"SELECT {_COLUMNS}, id FROM vault_item WHERE name = ?", (name,))  # noqa: S608
            if row is None:
                raise NoSuchItem(name=name)
            info = _info(row)
            tx.execute("DELETE FROM vault_chunk WHERE item_id = ?", (row[8],))
            tx.execute("DELETE FROM vault_item WHERE id = ?", (row[8],))
            self._emit(tx, ItemEvent.of(EventKind.REMOVED, info, _moment(now)))
        return info

    def _put_text(
        self, kind: ItemType, name: str, text: str, data: bytes, source: str, now: datetime | None
    ) -> ItemInfo:
        name = parse_name(name)
        source = parse_source(source)
        with self.transaction() as tx:
            return self._write(tx, name, kind, None, source, (text, data), None, now)

    def _write(
        self,
        tx: Transaction,
        name: str,
        kind: ItemType,
        media_type: str | None,
        source: str,
        text: tuple[str, bytes] | None,
        chunks: Iterable[bytes] | None,
        now: datetime | None,
    ) -> ItemInfo:
        """Insert or replace one item (text inline, or a document's chunks) and emit its event."""
        moment = _moment(now)
        stamp = format_time(moment)
        existing = tx.query_one("SELECT id, added, type FROM vault_item WHERE name = ?", (name,))
        if text is not None:
            size, digest, value = len(text[1]), hashlib.sha256(text[1]).digest(), text[0]
        else:
            size, digest, value = 0, b"", None
        if existing is None:
            event_kind, added = EventKind.ADDED, stamp
            item_id = tx.insert(
                _INSERT_ITEM,
                (name, kind.value, media_type, source, added, stamp, size, digest, value),
            )
        else:
            event_kind, added = EventKind.CHANGED, str(existing[1])
            item_id = int(existing[0])
            if existing[2] == ItemType.DOCUMENT:
                tx.execute("DELETE FROM vault_chunk WHERE item_id = ?", (item_id,))
        if chunks is not None:
            size, digest = _store_chunks(tx, item_id, chunks)
        if existing is not None or chunks is not None:
            tx.execute(
                "UPDATE vault_item SET type = ?, media_type = ?, source = ?, changed = ?, size = ?,"
                " sha256 = ?, value = ? WHERE id = ?",
                (kind.value, media_type, source, stamp, size, digest, value, item_id),
            )
        info = ItemInfo(
            name, kind, media_type, source, parse_time(added), parse_time(stamp), size, digest.hex()
        )
        self._emit(tx, ItemEvent.of(event_kind, info, moment))
        return info

    def _emit(self, tx: Transaction, event: ItemEvent) -> None:
        for subscriber in list(self._subscribers):
            subscriber(event, tx)

    # -- reading ----------------------------------------------------------------------------

    def get(self, name: str) -> Item:
        """The item ``name`` with its text (None for a document). Raises NoSuchItem, BadName."""
        name = parse_name(name)
        row = self._db.reader().query_one(
            f"SELECT {_COLUMNS}, value FROM vault_item WHERE name = ?",  # noqa: S608
            (name,),
        )
        if row is None:
            raise NoSuchItem(name=name)
        info = _info(row)
        return Item(**vars(info), text=row[8])

    def items(self) -> list[ItemInfo]:
        """Every item's metadata, sorted by name."""
        rows = self._db.reader().query(f"SELECT {_COLUMNS} FROM vault_item ORDER BY name")  # noqa: S608
        return [_info(row) for row in rows]

    def count(self) -> int:
        row = self._db.reader().query_one("SELECT count(*) FROM vault_item")
        return 0 if row is None else int(row[0])

    def read_document(self, name: str) -> Iterator[bytes]:
        """The content of document ``name``, chunk by chunk (one chunk in memory at a time).

        Raises NoSuchItem, NotADocument (when ``name`` is an attribute or note).
        """
        item_id = self._document_id(name)
        return self._chunks(item_id)

    def _document_id(self, name: str) -> int:
        name = parse_name(name)
        row = self._db.reader().query_one("SELECT id, type FROM vault_item WHERE name = ?", (name,))
        if row is None:
            raise NoSuchItem(name=name)
        if row[1] != ItemType.DOCUMENT:
            raise NotADocument(name=name)
        return int(row[0])

    def _chunks(self, item_id: int) -> Iterator[bytes]:
        # One query per chunk rather than one open cursor: the caller may write to the vault
        # between chunks without disturbing the read.
        reader = self._db.reader()
        seq = 0
        while (
            row := reader.query_one(
                "SELECT data FROM vault_chunk WHERE item_id = ? AND seq = ?", (item_id, seq)
            )
        ) is not None:
            yield bytes(row[0])
            seq += 1

    def save_document(self, name: str, out: Path) -> ItemInfo:
        """Write document ``name`` to the new file ``out`` (mode 0600, complete or absent).

        Raises NoSuchItem, NotADocument, FileExists (``out`` exists), NoFile (no such folder).
        """
        info = self.get(name)
        if info.type != ItemType.DOCUMENT:
            raise NotADocument(name=info.name)
        with new_file(out) as stream:
            for piece in self.read_document(info.name):
                stream.write(piece)
        return ItemInfo(**{k: v for k, v in vars(info).items() if k != "text"})


def _store_chunks(tx: Transaction, item_id: int, chunks: Iterable[bytes]) -> tuple[int, bytes]:
    """Write ``chunks`` as the item's content; its size and SHA-256."""
    digest = hashlib.sha256()
    size = 0
    seq = 0
    buffer = b""
    for piece in chunks:
        buffer += piece
        # Re-cut to CHUNK_SIZE so a stream returning tiny reads does not make tiny rows.
        while len(buffer) >= CHUNK_SIZE:
            block, buffer = buffer[:CHUNK_SIZE], buffer[CHUNK_SIZE:]
            _store_chunk(tx, item_id, seq, block, digest)
            size += len(block)
            seq += 1
    if buffer:
        _store_chunk(tx, item_id, seq, buffer, digest)
        size += len(buffer)
    return size, digest.digest()


def _store_chunk(tx: Transaction, item_id: int, seq: int, block: bytes, digest: Any) -> None:
    digest.update(block)
    tx.execute(
        "INSERT INTO vault_chunk (item_id, seq, data) VALUES (?, ?, ?)", (item_id, seq, block)
    )


def _moment(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now
