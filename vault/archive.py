"""Export and import of a whole vault (GDPR art. 20): one portable, encrypted file.

Inside the envelope of ``vault.envelope`` is a POSIX tar stream (readable by any tar tool once
decrypted) holding, in this order:

- ``manifest.json``: format, version, creation time, every component's schema version;
- ``items.jsonl``: one JSON object per item, metadata and attribute/note text;
- ``documents/<sha256>``: each distinct document content once;
- ``tables/<component>/<table>.jsonl``: the rows of every table a later component added
  (wallet credentials, the consent log, ...), so they travel with the vault.

Export and import both stream: memory stays flat for any vault size, and no plaintext touches
the disk. specs/archive.md is the full format.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from vault import keyring
from vault.access import create_database
from vault.database import Corrupt, SqlError, Transaction
from vault.document import CHUNK_SIZE, new_file, open_input
from vault.envelope import OpenedReader, UnsupportedArchive, open_stream, seal_stream
from vault.errors import KluisError, VerificationFailed
from vault.item import (
    MAX_ATTRIBUTE_BYTES,
    MAX_NOTE_BYTES,
    ItemType,
    encode_text,
    format_time,
    parse_media_type,
    parse_name,
    parse_source,
    parse_time,
)
from vault.keyring import (
    DataKey,
    KdfParams,
    RecoveryCode,
    check_new_passphrase,
    format_key_file,
    new_profile_id,
    seal_key_file,
)
from vault.profile import ProfileExists, staged_profile, write_private_file
from vault.schema import (
    VAULT_SCHEMA,
    Schema,
    apply_migrations,
    component_tables,
    migrate,
    schema_versions,
)
from vault.vault import Vault

FORMAT = "kluis-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ITEMS = "items.jsonl"
_MAX_LINE = 8 << 20  # a 1 MiB note, JSON-escaped, fits with room to spare
_MAX_MANIFEST = 1 << 20
_INSERT_ITEM = (
    "INSERT INTO vault_item"
    " (id, name, type, media_type, source, added, changed, size, sha256, value)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ITEM_KEYS = {
    "id",
    "name",
    "type",
    "media_type",
    "source",
    "added",
    "changed",
    "size",
    "sha256",
    "value",
}


class BadContent(VerificationFailed):
    code = "archive.bad_content"
    en = (
        "The export file opens, but what is inside is not a valid kluis export. It may come from a "
        "faulty program."
    )
    nl = (
        "Het exportbestand gaat open, maar de inhoud is geen geldige kluis-export. Misschien komt "
        "het van een fout programma."
    )


@dataclass(frozen=True)
class ArchiveSummary:
    """What an export wrote or an import restored."""

    items: int
    documents: int
    tables: int


@dataclass(frozen=True)
class ImportResult:
    summary: ArchiveSummary
    recovery_code: RecoveryCode


# -- export ---------------------------------------------------------------------------------


def _json_line(value: Any) -> bytes:
    return (
        json.dumps(
            value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        + "\n"
    ).encode()


class _IterReader:
    """A file-like ``read`` over an iterator of byte strings (what tarfile copies from)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buffer += piece
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _add(tar: tarfile.TarFile, name: str, size: int, pieces: Iterator[bytes], mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o600
    tar.addfile(info, _IterReader(pieces))


def _add_lines(
    tar: tarfile.TarFile, name: str, lines: Callable[[], Iterable[bytes]], mtime: float
) -> None:
    # tar needs the size before the content: count in a first pass, stream in a second, so
    # nothing is held in memory or spooled to disk.
    size = sum(len(line) for line in lines())
    _add(tar, name, size, iter(lines()), mtime)


def _item_lines(tx: Transaction) -> Iterator[bytes]:
    for row in tx.iterate(
        "SELECT id, name, type, media_type, source, added, changed, size, sha256, value"
        " FROM vault_item ORDER BY id"
    ):
        keys = (
            "id",
            "name",
            "type",
            "media_type",
            "source",
            "added",
            "changed",
            "size",
            "sha256",
            "value",
        )
        record = dict(zip(keys, row, strict=True))
        record["sha256"] = bytes(record["sha256"]).hex()
        yield _json_line(record)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _columns(tx: Transaction, table: str) -> list[str]:
    return [str(row[1]) for row in tx.query(f"PRAGMA table_info({_quote(table)})")]


def _encode_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"blob": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return {"real": repr(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"blob"} and isinstance(value["blob"], str):
            try:
                return base64.b64decode(value["blob"], validate=True)
            except ValueError:
                raise BadContent("table value: bad base64") from None
        if set(value) == {"real"} and value["real"] in ("inf", "-inf"):
            return float(value["real"])
        raise BadContent("table value: unknown object")
    if isinstance(value, list):
        raise BadContent("table value: list")
    return value


def _table_lines(tx: Transaction, table: str) -> Iterator[bytes]:
    columns = _columns(tx, table)
    select = ", ".join(_quote(c) for c in columns)
    for row in tx.iterate(f"SELECT {select} FROM {_quote(table)}"):  # noqa: S608 - names from sqlite_schema
        yield _json_line({c: _encode_value(v) for c, v in zip(columns, row, strict=True)})


def _table_source(tx: Transaction, table: str) -> Callable[[], Iterable[bytes]]:
    return lambda: _table_lines(tx, table)


def _document_pieces(tx: Transaction, item_id: int, size: int, sha256: bytes) -> Iterator[bytes]:
    digest = hashlib.sha256()
    seq = written = 0
    while (
        row := tx.query_one(
            "SELECT data FROM vault_chunk WHERE item_id = ? AND seq = ?", (item_id, seq)
        )
    ) is not None:
        piece = bytes(row[0])
        digest.update(piece)
        written += len(piece)
        seq += 1
        yield piece
    if written != size or digest.digest() != sha256:
        raise Corrupt(f"document content of item {item_id} does not match its digest")


def export_archive(
    vault: Vault,
    out: Path,
    passphrase: str,
    *,
    now: datetime | None = None,
    _kdf: KdfParams | None = None,
) -> ArchiveSummary:
    """Write the whole vault to the new file ``out``, encrypted under ``passphrase``.

    Runs in one transaction (a consistent snapshot; a caller may log the export in the same
    transaction by calling this inside ``vault.transaction()``). ``out`` appears complete or
    not at all. Raises WeakPassphrase, FileExists, NoFile (no such folder), Corrupt.
    """
    passphrase = check_new_passphrase(passphrase)
    moment = now or datetime.now(UTC)
    mtime = moment.timestamp()
    with new_file(out) as file, vault.transaction() as tx:
        writer = seal_stream(file, passphrase, _kdf or keyring.PASSPHRASE_KDF)
        versions = schema_versions(tx)
        counts = tx.query_one("SELECT count(*) FROM vault_item")
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created": format_time(moment),
            "schemas": versions,
            "items": int(counts[0]) if counts else 0,
        }
        tables = 0
        tar = tarfile.open(
            fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=CHUNK_SIZE
        )  # type: ignore[call-overload]
        with tar:
            data = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
            _add(tar, MANIFEST, len(data), iter([data]), mtime)
            _add_lines(tar, ITEMS, lambda: _item_lines(tx), mtime)
            documents = tx.query(
                "SELECT sha256, size, min(id) FROM vault_item WHERE type = 'document'"
                " GROUP BY sha256 ORDER BY sha256"
            )
            for digest, size, item_id in documents:
                pieces = _document_pieces(tx, int(item_id), int(size), bytes(digest))
                _add(tar, f"documents/{bytes(digest).hex()}", int(size), pieces, mtime)
            for component in sorted(versions):
                if component == VAULT_SCHEMA.component:
                    continue
                for table in component_tables(tx, component):
                    _add_lines(
                        tar, f"tables/{component}/{table}.jsonl", _table_source(tx, table), mtime
                    )
                    tables += 1
        writer.finish()
    return ArchiveSummary(
        items=int(counts[0]) if counts else 0, documents=len(documents), tables=tables
    )


# -- import ---------------------------------------------------------------------------------


def _member_file(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    if not member.isfile():
        raise BadContent(f"{member.name}: not a regular file")
    stream = tar.extractfile(member)
    if stream is None:
        raise BadContent(f"{member.name}: unreadable")
    return stream


def _lines(stream: IO[bytes], name: str) -> Iterator[Any]:
    while line := stream.readline(_MAX_LINE):
        if not line.endswith(b"\n"):
            raise BadContent(f"{name}: line too long or unterminated")
        try:
            yield json.loads(line)
        except ValueError:
            raise BadContent(f"{name}: not JSON") from None


def _check_manifest(stream: IO[bytes], schemas: Sequence[Schema]) -> tuple[dict[str, int], int]:
    data = stream.read(_MAX_MANIFEST + 1)
    if len(data) > _MAX_MANIFEST:
        raise BadContent("manifest: too large")
    try:
        manifest = json.loads(data)
    except ValueError:
        raise BadContent("manifest: not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadContent("manifest: format")
    if manifest.get("version") != FORMAT_VERSION:
        raise UnsupportedArchive(f"archive content version {manifest.get('version')!r}")
    versions = manifest.get("schemas")
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in versions.items()
    ):
        raise BadContent("manifest: schemas")
    known = {s.component: s for s in (VAULT_SCHEMA, *schemas)}
    for component, version in versions.items():
        if component not in known or version > known[component].version:
            raise UnsupportedArchive(f"component {component!r} at version {version}")
    items = manifest.get("items")
    if type(items) is not int:
        raise BadContent("manifest: items")
    return versions, items


class _Restore:
    """The state of one import: which documents are still expected, and where they go."""

    def __init__(self, tx: Transaction, schemas: Sequence[Schema]) -> None:
        self.tx = tx
        self.schemas = schemas
        self.versions: dict[str, int] | None = None
        self.expected_items = 0
        self.items = 0
        self.pending: dict[str, list[tuple[int, int]]] = {}  # sha256 hex -> [(item id, size)]
        self.documents = 0
        self.tables = 0
        self.seen: set[str] = set()

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name
        if name in self.seen:
            raise BadContent(f"{name}: twice")
        self.seen.add(name)
        stream = _member_file(tar, member)
        if self.versions is None:
            if name != MANIFEST:
                raise BadContent("manifest.json must come first")
            self.versions, self.expected_items = _check_manifest(stream, self.schemas)
            known = {s.component: s for s in (VAULT_SCHEMA, *self.schemas)}
            for component, version in self.versions.items():
                apply_migrations(self.tx, known[component], up_to=version)
        elif name == ITEMS:
            for record in _lines(stream, name):
                self._item(record)
        elif name.startswith("documents/") and ITEMS in self.seen:
            self._document(name.removeprefix("documents/"), stream, member.size)
        elif name.startswith("tables/") and name.endswith(".jsonl") and ITEMS in self.seen:
            self._table(name, stream)
        else:
            raise BadContent(f"{name}: unexpected member")

    def _item(self, record: Any) -> None:
        if not isinstance(record, dict) or set(record) != _ITEM_KEYS:
            raise BadContent("items.jsonl: fields")
        value, size, item_id, media_type = (
            record["value"],
            record["size"],
            record["id"],
            record["media_type"],
        )
        try:
            kind = ItemType(record["type"])
            name = parse_name(record["name"])
            parse_source(record["source"])
            for stamp in (record["added"], record["changed"]):
                parse_time(stamp)
            digest = bytes.fromhex(record["sha256"])
            if kind == ItemType.DOCUMENT:
                parse_media_type(media_type)
                text = None
            else:
                limit = MAX_ATTRIBUTE_BYTES if kind == ItemType.ATTRIBUTE else MAX_NOTE_BYTES
                text = encode_text(value, limit=limit)
        except (ValueError, TypeError) as error:
            raise BadContent(f"items.jsonl: {type(error).__name__}") from None
        except KluisError as error:
            raise BadContent(f"items.jsonl: {error.code}") from None
        if (
            name != record["name"]
            or len(digest) != 32
            or type(size) is not int
            or type(item_id) is not int
        ):
            raise BadContent("items.jsonl: name, digest, size or id")
        if text is None:
            if value is not None:
                raise BadContent("items.jsonl: document with text")
            self.pending.setdefault(digest.hex(), []).append((item_id, size))
        elif media_type is not None or len(text) != size or hashlib.sha256(text).digest() != digest:
            raise BadContent("items.jsonl: text does not match its size or digest")
        self._execute(
            "items.jsonl",
            _INSERT_ITEM,
            (
                item_id,
                name,
                kind.value,
                media_type,
                record["source"],
                record["added"],
                record["changed"],
                size,
                digest,
                value,
            ),
        )
        self.items += 1

    def _execute(self, where: str, sql: str, params: Sequence[Any]) -> None:
        try:
            self.tx.execute(sql, params)
        except SqlError:  # a constraint the rows break: duplicate id or name, wrong type
            raise BadContent(f"{where}: row rejected") from None

    def _document(self, sha: str, stream: IO[bytes], size: int) -> None:
        targets = self.pending.pop(sha, None)
        if targets is None:
            raise BadContent(f"documents/{sha}: no item refers to it")
        if any(expected != size for _, expected in targets):
            raise BadContent(f"documents/{sha}: size differs from the item's")
        first = targets[0][0]
        digest = hashlib.sha256()
        seq = 0
        while piece := stream.read(CHUNK_SIZE):
            digest.update(piece)
            self.tx.execute(
                "INSERT INTO vault_chunk (item_id, seq, data) VALUES (?, ?, ?)", (first, seq, piece)
            )
            seq += 1
        if digest.hexdigest() != sha:
            raise BadContent(f"documents/{sha}: content does not match its digest")
        for item_id, _ in targets[1:]:
            self.tx.execute(
                "INSERT INTO vault_chunk (item_id, seq, data)"
                " SELECT ?, seq, data FROM vault_chunk WHERE item_id = ?",
                (item_id, first),
            )
        self.documents += 1

    def _table(self, name: str, stream: IO[bytes]) -> None:
        parts = name.split("/")
        if (
            len(parts) != 3
            or parts[1] not in (self.versions or {})
            or parts[1] == VAULT_SCHEMA.component
        ):
            raise BadContent(f"{name}: unknown component")
        table = parts[2].removesuffix(".jsonl")
        if table not in component_tables(self.tx, parts[1]):
            raise BadContent(f"{name}: no such table")
        columns = set(_columns(self.tx, table))
        # The archive is the authority for the table's rows, even those a migration seeded.
        self.tx.execute(f"DELETE FROM {_quote(table)}")  # noqa: S608 - checked against sqlite_schema
        for record in _lines(stream, name):
            if not isinstance(record, dict) or not set(record) <= columns or not record:
                raise BadContent(f"{name}: columns")
            keys = sorted(record)
            sql = (
                f"INSERT INTO {_quote(table)} ({', '.join(_quote(k) for k in keys)})"  # noqa: S608
                f" VALUES ({', '.join('?' for _ in keys)})"
            )
            self._execute(name, sql, [_decode_value(record[k]) for k in keys])
        self.tables += 1

    def finish(self) -> ArchiveSummary:
        if self.versions is None or ITEMS not in self.seen:
            raise BadContent("manifest.json or items.jsonl missing")
        if self.pending:
            raise BadContent(f"{len(self.pending)} document(s) missing")
        if self.items != self.expected_items:
            raise BadContent("manifest: item count differs from items.jsonl")
        migrate(self.tx, self.schemas)
        return ArchiveSummary(items=self.items, documents=self.documents, tables=self.tables)


def import_archive(
    archive: Path,
    root: Path,
    archive_passphrase: str,
    new_passphrase: str,
    *,
    schemas: Sequence[Schema] = (),
    now: datetime | None = None,
    _kdf: KdfParams | None = None,
) -> ImportResult:
    """Create a new profile at ``root``, protected by ``new_passphrase``, holding everything in
    ``archive`` byte for byte (metadata included); the summary and the new recovery code.

    Either the whole profile appears at ``root`` or nothing does. Raises ProfileExists,
    WeakPassphrase, NoFile, NotAFile, NotAnArchive, UnsupportedArchive, WrongArchivePassphrase,
    Truncated, Tampered, BadContent.
    """
    new_passphrase = check_new_passphrase(new_passphrase)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ProfileExists(path=str(root))
    with open_input(archive) as source:
        reader = open_stream(
            source, archive_passphrase
        )  # passphrase checked before anything is made
        recovery = RecoveryCode.generate()
        data_key = DataKey.generate()
        with staged_profile(root) as paths:
            database = create_database(paths, data_key)
            try:
                with database.transaction() as tx:
                    summary = _restore(reader, _Restore(tx, schemas))
            finally:
                database.close()
            key_file = seal_key_file(
                data_key,
                new_passphrase,
                recovery,
                profile_id=new_profile_id(),
                created=format_time(now or datetime.now(UTC)),
                kdf=_kdf or keyring.PASSPHRASE_KDF,
            )
            write_private_file(paths.key, format_key_file(key_file))
    return ImportResult(summary, recovery)


def _restore(reader: OpenedReader, restore: _Restore) -> ArchiveSummary:
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                restore.member(tar, member)
    except tarfile.TarError as error:
        raise BadContent(f"tar: {error}") from None
    reader.drain()  # the FINAL tag must be there, even after tar's end marker
    return restore.finish()
