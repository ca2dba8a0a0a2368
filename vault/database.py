"""The SQLCipher connection: opening with the raw data key, the settings, transactions, and
turning SQLite's corruption errors into ``vault.corrupt``.

Settings (measured with ``bench/vault.py``; the reasons are beside each constant):

- ``PRAGMA key = "x'<hex>'"``: a raw 256-bit key, so opening costs no PBKDF2 (the Argon2id
  in ``vault.keyring`` already stretched the passphrase).
- ``cipher_page_size`` / ``page_size`` = 4096 and ``cipher_hmac_algorithm`` = HMAC_SHA256:
  see PAGE_SIZE and HMAC_ALGORITHM below.
- ``journal_mode = WAL`` with ``synchronous = NORMAL``: a commit appends the changed pages to
  the WAL without waiting for fsync. A committed transaction survives a crash of kluis (the
  crash test kills the writer with SIGKILL); a power cut or kernel crash may lose the last
  few commits, never the database's consistency. SQLCipher encrypts the WAL frames too.
- ``temp_store = MEMORY``: sorts and temporary tables never reach a temp file on disk.
- ``cipher_memory_security`` stays OFF (the default since SQLCipher 4.5). ON makes SQLCipher
  lock and wipe every allocation it makes; measured here it made puts 3.6-7x and warm reads
  1.7-4x slower than the plain baseline. The gain is small for a vault on the citizen's own
  device: while it is open, the decrypted pages sit in SQLite's page cache and the values in
  Python objects, neither of which that setting protects, and swap is best covered by
  encrypting the disk.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlcipher3 import dbapi2  # type: ignore[import-untyped]

from vault.errors import Conflict, VerificationFailed
from vault.keyring import DataKey
from vault.profile import Busy

log = logging.getLogger("kluis.vault")

# 4096 bytes. Every commit encrypts and authenticates whole pages, so the page size sets the
# cost of the common case, one small attribute per transaction: with 16 KiB pages those puts
# ran at half the rate and 1.55x the plain baseline (4 KiB: 1.2x); 1 KiB pages made 1 MB
# documents 1.8x slower. ``bench/vault.py --explore`` prints the comparison.
PAGE_SIZE = 4096
# HMAC-SHA256 instead of SQLCipher 4's default HMAC-SHA512: SHA-256 has CPU instructions on
# current x86 and ARM (SHA-NI, ARMv8 SHA2), so page authentication costs less (measured: small
# puts 1.47x -> 1.2x, 1 MB document puts 1.9x -> 1.3x the plain baseline) at the same 256-bit
# strength as the data key. Fixed at creation: every open must use it.
HMAC_ALGORITHM = "HMAC_SHA256"
# Page cache in KiB (negative = KiB for SQLite). Pages in the cache are already decrypted, so
# reads of recently used items cost no decryption at all.
CACHE_KIB = 32 * 1024

Params = Sequence[Any]
# The binding's base error, for callers that must turn a rejected statement into their own error.
SqlError: type[Exception] = dbapi2.Error
Row = tuple[Any, ...]

# SQLite result codes meaning the file is not (or no longer) a sound database.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_SQLITE_BUSY = 5


class Corrupt(VerificationFailed):
    code = "vault.corrupt"
    en = (
        "Your vault's database file is damaged or incomplete. Restore it from a backup or an "
        "export."
    )
    nl = (
        "Het databasebestand van uw kluis is beschadigd of onvolledig. Zet het terug uit een "
        "reservekopie of een export."
    )


class Closed(Conflict):
    code = "vault.closed"
    en = "This vault is closed. Open it again to continue."
    nl = "Deze kluis is gesloten. Open hem opnieuw om verder te gaan."


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn SQLite's 'not a database' and 'malformed' errors into Corrupt."""
    try:
        yield
    except dbapi2.DatabaseError as error:
        code = getattr(error, "sqlite_errorcode", None)
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            raise Corrupt(str(error)) from None
        if code == _SQLITE_BUSY:
            raise Busy() from None
        raise


class Transaction:
    """A handle on the open transaction: the one way components run their own SQL.

    Valid only inside the ``with`` block that produced it.
    """

    def __init__(self, connection: Any) -> None:
        self._connection: Any = connection

    def _live(self) -> Any:
        if self._connection is None:
            raise Closed("transaction has ended")
        return self._connection

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        with translate_errors():
            return int(self._live().execute(sql, params).rowcount)

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; the rowid of the new row."""
        with translate_errors():
            return int(self._live().execute(sql, params).lastrowid)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with translate_errors():
            self._live().executemany(sql, rows)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        with translate_errors():
            return [tuple(row) for row in self._live().execute(sql, params).fetchall()]

    def query_one(self, sql: str, params: Params = ()) -> Row | None:
        with translate_errors():
            row = self._live().execute(sql, params).fetchone()
        return None if row is None else tuple(row)

    def iterate(self, sql: str, params: Params = ()) -> Iterator[Row]:
        """Rows one at a time, for tables too large to hold in memory."""
        with translate_errors():
            cursor = self._live().execute(sql, params)
            while (row := cursor.fetchone()) is not None:
                yield tuple(row)

    def _end(self) -> None:
        self._connection = None


class Database:
    """One connection to the vault's database, with nested transactions."""

    def __init__(self, connection: Any, path: Path) -> None:
        self._connection: Any = connection
        self.path = path
        self._current: Transaction | None = None
        self._depth = 0

    @classmethod
    def open(cls, path: Path, key: DataKey | None, *, create: bool = False) -> Database:
        """The database at ``path`` opened with ``key`` (``None``: an unencrypted database,
        for the benchmark's baseline only).

        Raises Corrupt when the file is missing (unless ``create``), empty, or not a database
        this key opens.
        """
        if not create:
            _check_file(path)
        connection = dbapi2.connect(str(path), isolation_level=None, check_same_thread=True)
        try:
            with translate_errors():
                _configure(connection, key)
        except BaseException:
            connection.close()
            raise
        return cls(connection, path)

    def close(self) -> None:
        """Close the connection; SQLite checkpoints and removes the WAL. Closing twice is fine."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def closed(self) -> bool:
        return self._connection is None

    def _live(self) -> Any:
        if self._connection is None:
            raise Closed()
        return self._connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One SQLite transaction: committed when the block ends, rolled back if it raises.

        Inside an open transaction this joins it through a SAVEPOINT: an error that the outer
        block catches undoes only the inner block's work, and nothing is committed until the
        outermost block ends. ``BEGIN IMMEDIATE`` takes the write lock at the start, so a
        transaction never fails half-way for lack of it.
        """
        connection = self._live()
        if self._current is not None:
            name = f"nested_{self._depth}"
            self._depth += 1
            with translate_errors():
                connection.execute(f"SAVEPOINT {name}")
            try:
                yield self._current
            except BaseException:
                with translate_errors():
                    connection.execute(f"ROLLBACK TO {name}")
                    connection.execute(f"RELEASE {name}")
                raise
            finally:
                self._depth -= 1
            with translate_errors():
                connection.execute(f"RELEASE {name}")
            return
        with translate_errors():
            connection.execute("BEGIN IMMEDIATE")
        handle = Transaction(connection)
        self._current = handle
        try:
            yield handle
            with translate_errors():
                connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            self._current = None
            handle._end()

    @property
    def in_transaction(self) -> bool:
        return self._current is not None

    def reader(self) -> Transaction:
        """A handle for reads outside a transaction (each statement sees committed data)."""
        return self._current or Transaction(self._live())

    def check_integrity(self) -> list[str]:
        """Problems found by SQLCipher's page HMAC check and SQLite's integrity check (empty
        when the database is sound). Reads every page: slow on a large vault."""
        connection = self._live()
        with translate_errors():
            problems = [str(row[0]) for row in connection.execute("PRAGMA cipher_integrity_check")]
        try:
            with translate_errors():
                checked = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
        except Corrupt as error:  # a page so damaged that the check itself cannot read it
            checked = [error.detail]
        return problems + [line for line in checked if line != "ok"]


def _check_file(path: Path) -> None:
    """Refuse a missing or empty database file: SQLite would silently start a new, empty one."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise Corrupt("database file missing") from None
    if size < PAGE_SIZE:
        raise Corrupt("database file empty or truncated")


def _configure(connection: Any, key: DataKey | None) -> None:
    if key is not None:
        # Before the key: SQLCipher would otherwise log HMAC failures to stderr.
        connection.execute("PRAGMA cipher_log_level = NONE")
        connection.execute(f"PRAGMA key = \"x'{key.raw.hex()}'\"")
        connection.execute(f"PRAGMA cipher_page_size = {PAGE_SIZE}")
        connection.execute(f"PRAGMA cipher_hmac_algorithm = {HMAC_ALGORITHM}")
    else:
        connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    # The first read decrypts page 1: a wrong key or a damaged file fails here.
    connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    connection.execute("PRAGMA journal_mode = WAL").fetchone()
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA temp_store = MEMORY")
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    connection.execute("PRAGMA foreign_keys = ON")
