"""The server-side store: one small SQL interface over SQLite (embedded default) and PostgreSQL.

Relay and agency services keep their state here. SQL is written once, in a portable subset:
``?`` placeholders, ``INTEGER`` (always 64-bit), ``TEXT``, ``BLOB``, ``INSERT ... ON CONFLICT``
and ``RETURNING`` (SQLite >= 3.35). Migration scripts are translated per backend
(``BLOB`` -> ``BYTEA``, ``INTEGER`` -> ``BIGINT``, an autoincrement key -> an identity column);
statements at run time only get their placeholders translated. No ORM.

Writers are serialised per backend in the way each does best: SQLite's ``BEGIN IMMEDIATE``
takes the database write lock (so ``Transaction.lock`` is a no-op there); PostgreSQL runs at
READ COMMITTED and ``Transaction.lock`` takes a transaction-scoped advisory lock. Each component
declares its tables as a ``Schema`` of numbered migrations, applied at open and recorded in a
``schema_version`` table; on PostgreSQL the migration runs under an advisory lock, so two
processes starting at once apply each step exactly once.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import psycopg
import psycopg_pool

from vault import Conflict, InvalidInput, Unavailable

Row = tuple[Any, ...]
Params = Sequence[Any]


class BadStoreUrl(InvalidInput):
    code = "store.bad_url"
    en = "The database address is not understood. Use sqlite:///path or postgresql://host/db."
    nl = "Het databaseadres is niet te begrijpen. Gebruik sqlite:///pad of postgresql://host/db."


class StoreUnavailable(Unavailable):
    code = "store.unavailable"
    en = "The database cannot be reached or is busy. Try again in a moment."
    nl = "De database is niet bereikbaar of bezet. Probeer het zo nog eens."


class StoreConflict(Conflict):
    code = "store.conflict"
    en = "The change clashes with data that is already stored. Reload and try again."
    nl = (
        "De wijziging botst met gegevens die al zijn opgeslagen. "
        "Laad opnieuw en probeer het nog eens."
    )


class SchemaTooNew(Conflict):
    code = "store.schema_too_new"
    en = "The database was written by a newer version of kluis. Update kluis first."
    nl = "De database is gemaakt door een nieuwere versie van kluis. Werk kluis eerst bij."


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class Schema:
    """The tables of one component, as numbered migrations (migration i brings it to version i+1).

    Each migration is a script of statements separated by ``;`` (no ``;`` inside a statement).
    Released migrations never change; a change is a new migration at the end.
    """

    component: str
    migrations: tuple[str, ...]


class Transaction(Protocol):
    """One open transaction. Leaving the ``with`` block commits; an exception rolls back."""

    backend: Backend

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement; return its rows (empty for statements without a result)."""
        ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for each parameter row."""
        ...

    def lock(self, key: str) -> None:
        """Serialise with every other transaction that locks ``key``, until this one ends."""
        ...


class Store(Protocol):
    backend: Backend

    def transaction(self, *, readonly: bool = False) -> AbstractContextManager[Transaction]:
        """A transaction; ``readonly`` ones never take the SQLite write lock."""
        ...

    def migrate(self, schemas: Sequence[Schema]) -> None:
        """Bring every schema to its newest version; raises ``SchemaTooNew``."""
        ...

    def close(self) -> None: ...


def open_store(
    url: str, *, schemas: Sequence[Schema] = (), pool_size: int = 10, timeout: float = 10.0
) -> Store:
    """Open the store at ``url`` (``sqlite:///path`` or ``postgresql://...``) and migrate it.

    A relative SQLite path is relative to the working folder; ``sqlite:////abs/path`` is
    absolute. ``pool_size`` bounds PostgreSQL connections per process; ``timeout`` is how
    long to wait for a connection. Raises ``BadStoreUrl``, ``StoreUnavailable``,
    ``SchemaTooNew``.
    """
    store: Store
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path or path.startswith(":memory:") or "?" in path:
            raise BadStoreUrl("sqlite URL needs a file path")
        store = SqliteStore(Path(path))
    elif url.startswith(("postgresql://", "postgres://")):
        store = PostgresStore(url, pool_size=pool_size, timeout=timeout)
    else:
        raise BadStoreUrl("scheme must be sqlite:/// or postgresql://")
    try:
        store.migrate(schemas)
    except BaseException:
        store.close()
        raise
    return store


# --- SQL dialect -----------------------------------------------------------------------------

_AUTOINCREMENT = re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", re.I)
_INTEGER = re.compile(r"\bINTEGER\b", re.I)
_BLOB = re.compile(r"\bBLOB\b", re.I)


def _postgres_ddl(script: str) -> str:
    script = _AUTOINCREMENT.sub("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", script)
    return _BLOB.sub("BYTEA", _INTEGER.sub("BIGINT", script))


@lru_cache(maxsize=512)
def _postgres_placeholders(sql: str) -> str:
    # psycopg uses %s; a literal % must be doubled first. Statements keep ? out of literals.
    return sql.replace("%", "%%").replace("?", "%s")


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id for ``key`` (stable across processes and versions)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


def _migrate(tx: Transaction, schemas: Sequence[Schema], translate: Callable[[str], str]) -> None:
    tx.lock("kluis.schema_version")
    tx.execute(translate(_VERSION_TABLE))
    done: dict[str, int] = {
        str(component): int(version)
        for component, version in tx.execute("SELECT component, version FROM schema_version")
    }
    for schema in schemas:
        current = done.get(schema.component, 0)
        if current > len(schema.migrations):
            raise SchemaTooNew(f"{schema.component} is at version {current}")
        for number in range(current, len(schema.migrations)):
            for statement in _statements(translate(schema.migrations[number])):
                tx.execute(statement)
        if current < len(schema.migrations):
            tx.execute(
                "INSERT INTO schema_version (component, version) VALUES (?, ?) "
                "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (schema.component, len(schema.migrations)),
            )


# --- SQLite ----------------------------------------------------------------------------------


class _SqliteTransaction:
    backend = Backend.SQLITE

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        with _sqlite_errors():
            return self._connection.execute(sql, tuple(params)).fetchall()

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with _sqlite_errors():
            self._connection.executemany(sql, [tuple(row) for row in rows])

    def lock(self, key: str) -> None:
        """No-op: ``BEGIN IMMEDIATE`` already holds the database-wide write lock."""


@contextmanager
def _sqlite_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as error:
        raise StoreConflict(type(error).__name__) from None
    except sqlite3.OperationalError as error:
        raise StoreUnavailable(str(error)) from None


def _use_wal(connection: sqlite3.Connection, *, deadline: float) -> None:
    """Switch the database to WAL. Switching takes the database's exclusive lock and SQLite
    answers "database is locked" at once, without its busy handler, when another connection
    is switching at the same moment (several processes starting on a new database): wait
    for that up to ``deadline``."""
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


class SqliteStore:
    """SQLite in WAL mode: one connection per thread, writers serialised by ``BEGIN IMMEDIATE``.

    ``secure_delete`` is on, so deleted rows (acked messages, dropped ciphertext) are
    overwritten instead of lingering in free pages of the file.
    """

    backend = Backend.SQLITE

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._writer = threading.RLock()  # re-entered only to fail as SQLite would
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection()
        except OSError as error:
            raise StoreUnavailable(type(error).__name__) from None

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        if self._closed:
            raise StoreUnavailable("store is closed")
        with _sqlite_errors():
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so DDL stays transactional.
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False,
                timeout=self._busy_timeout_ms / 1000,
            )
            connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            _use_wal(connection, deadline=time.monotonic() + self._busy_timeout_ms / 1000)
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA secure_delete = ON")
        self._local.connection = connection
        with self._guard:
            self._all.append(connection)
        return connection

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Transaction]:
        if readonly:
            with self._transaction(readonly=True) as tx:
                yield tx
            return
        # Writers of this process queue on a lock instead of in SQLite's busy handler, which
        # sleeps in steps of up to 100 ms and so turns a short queue into long tail latencies.
        # Writers in other processes still meet at the database lock (BEGIN IMMEDIATE).
        with self._writer, self._transaction(readonly=False) as tx:
            yield tx

    @contextmanager
    def _transaction(self, *, readonly: bool) -> Iterator[Transaction]:
        connection = self._connection()
        with _sqlite_errors():
            connection.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")
        try:
            yield _SqliteTransaction(connection)
            with _sqlite_errors():
                connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def migrate(self, schemas: Sequence[Schema]) -> None:
        with self.transaction() as tx:
            _migrate(tx, schemas, lambda script: script)

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it (tests read the file's bytes)."""
        with _sqlite_errors():
            self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._guard:
            self._closed = True
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()


# --- PostgreSQL ------------------------------------------------------------------------------


class _PostgresTransaction:
    backend = Backend.POSTGRESQL

    def __init__(self, connection: psycopg.Connection[Row]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        with _postgres_errors():
            cursor = self._connection.execute(_postgres_placeholders(sql), tuple(params))
            return cursor.fetchall() if cursor.description is not None else []

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with _postgres_errors(), self._connection.cursor() as cursor:
            cursor.executemany(_postgres_placeholders(sql), [tuple(row) for row in rows])

    def lock(self, key: str) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?)", (_lock_id(key),))


@contextmanager
def _postgres_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.errors.IntegrityError as error:
        raise StoreConflict(type(error).__name__) from None
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as error:
        raise StoreUnavailable(type(error).__name__) from None


class PostgresStore:
    """PostgreSQL through a psycopg connection pool (one pool per process).

    The pool keeps a bounded number of open connections for the server's worker threads and
    fails with ``StoreUnavailable`` instead of hanging when the database is gone. Connections
    are not pinged on checkout (that would cost a round trip per transaction): after a
    database restart, the first transaction on each stale connection fails with
    ``StoreUnavailable`` and the pool drops that connection.
    """

    backend = Backend.POSTGRESQL

    def __init__(self, url: str, *, pool_size: int = 10, timeout: float = 10.0) -> None:
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]]
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            open=False,
            timeout=timeout,
            name="kluis",
        )
        with _postgres_errors():
            self._pool.open(wait=True, timeout=timeout)

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Transaction]:
        with _postgres_errors(), self._pool.connection() as connection:
            with connection.transaction():
                if readonly:
                    connection.execute("SET TRANSACTION READ ONLY")
                yield _PostgresTransaction(connection)

    def migrate(self, schemas: Sequence[Schema]) -> None:
        with self.transaction() as tx:
            _migrate(tx, schemas, _postgres_ddl)

    def close(self) -> None:
        self._pool.close()
