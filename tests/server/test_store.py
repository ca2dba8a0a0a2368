"""The store interface behaves the same on SQLite and PostgreSQL: migrations, transactions,
locks, types and errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from server.store import (
    BadStoreUrl,
    Schema,
    SchemaTooNew,
    SqliteStore,
    Store,
    StoreConflict,
    StoreUnavailable,
    open_store,
)

NOTES_V1 = Schema(
    "notes",
    (
        "CREATE TABLE note (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL, n INTEGER);"
        "CREATE TABLE tally (name TEXT PRIMARY KEY, hits INTEGER NOT NULL)",
    ),
)
# Version 2 adds a column and seeds a row: a second run must not seed it again.
NOTES_V2 = Schema(
    "notes",
    NOTES_V1.migrations
    + ("ALTER TABLE note ADD COLUMN tag TEXT; INSERT INTO tally (name, hits) VALUES ('seed', 0)",),
)
OTHER = Schema("other", ("CREATE TABLE other_thing (k TEXT PRIMARY KEY)",))


def _versions(store: Store) -> dict[str, int]:
    with store.transaction(readonly=True) as tx:
        return dict(tx.execute("SELECT component, version FROM schema_version"))


def test_migrations_apply_once_and_record_versions(store_url: str) -> None:
    for _ in range(3):
        store = open_store(store_url, schemas=[NOTES_V1, OTHER])
        store.close()
    store = open_store(store_url, schemas=[NOTES_V2, OTHER])
    store.migrate([NOTES_V2, OTHER])
    try:
        assert _versions(store) == {"notes": 2, "other": 1}
        with store.transaction() as tx:
            assert tx.execute("SELECT name, hits FROM tally") == [("seed", 0)]
            tx.execute("INSERT INTO note (body, tag) VALUES (?, ?)", (b"x", "t"))
    finally:
        store.close()


def test_older_code_refuses_a_newer_database(store_url: str) -> None:
    open_store(store_url, schemas=[NOTES_V2]).close()
    with pytest.raises(SchemaTooNew):
        open_store(store_url, schemas=[NOTES_V1])


def test_concurrent_starts_migrate_exactly_once(store_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def boot() -> None:
        try:
            start.wait()
            open_store(store_url, schemas=[NOTES_V2, OTHER]).close()
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=boot) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = open_store(store_url)
    try:
        assert _versions(store) == {"notes": 2, "other": 1}
        with store.transaction() as tx:
            assert tx.execute("SELECT count(*) FROM tally") == [(1,)]
    finally:
        store.close()


def test_exception_rolls_the_transaction_back(store: Store) -> None:
    store.migrate([NOTES_V1])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.execute("INSERT INTO tally (name, hits) VALUES (?, ?)", ("a", 1))
        raise RuntimeError("boom")
    with store.transaction(readonly=True) as tx:
        assert tx.execute("SELECT count(*) FROM tally") == [(0,)]


def test_duplicate_key_is_a_conflict_and_undoes_the_whole_transaction(store: Store) -> None:
    store.migrate([NOTES_V1])
    with store.transaction() as tx:
        tx.execute("INSERT INTO tally (name, hits) VALUES (?, ?)", ("a", 1))
    with pytest.raises(StoreConflict), store.transaction() as tx:
        tx.execute("INSERT INTO tally (name, hits) VALUES (?, ?)", ("b", 1))
        tx.execute("INSERT INTO tally (name, hits) VALUES (?, ?)", ("a", 2))
    with store.transaction(readonly=True) as tx:
        assert tx.execute("SELECT name, hits FROM tally ORDER BY name") == [("a", 1)]


def test_types_round_trip(store: Store) -> None:
    store.migrate([NOTES_V1])
    every_byte = bytes(range(256))
    with store.transaction() as tx:
        first = tx.execute(
            "INSERT INTO note (body, n) VALUES (?, ?) RETURNING id", (every_byte, 2**62)
        )
        tx.executemany("INSERT INTO note (body, n) VALUES (?, ?)", [(b"", -1), (b"\x00", None)])
        second = tx.execute("INSERT INTO note (body) VALUES (?) RETURNING id", (b"z",))
    assert second[0][0] == first[0][0] + 3
    with store.transaction(readonly=True) as tx:
        rows = tx.execute("SELECT body, n FROM note ORDER BY id")
        literal = tx.execute("SELECT '100%' || ? || '%'", ("x",))
    assert [(bytes(body), n) for body, n in rows] == [
        (every_byte, 2**62), (b"", -1), (b"\x00", None), (b"z", None)
    ]
    assert literal == [("100%x%",)]


def test_lock_serialises_read_modify_write(store: Store) -> None:
    """Without the lock, two READ COMMITTED transactions on PostgreSQL lose updates."""
    store.migrate([NOTES_V1])
    with store.transaction() as tx:
        tx.execute("INSERT INTO tally (name, hits) VALUES ('c', 0)")

    def bump() -> None:
        for _ in range(25):
            with store.transaction() as tx:
                tx.lock("tally:c")
                (hits,), = tx.execute("SELECT hits FROM tally WHERE name = 'c'")
                tx.execute("UPDATE tally SET hits = ? WHERE name = 'c'", (hits + 1,))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store.transaction(readonly=True) as tx:
        assert tx.execute("SELECT hits FROM tally WHERE name = 'c'") == [(100,)]


def test_sqlite_writers_of_one_process_queue_instead_of_failing(tmp_path: Path) -> None:
    """Threads of one process wait for each other's write transactions in turn: with a busy
    timeout too short for SQLite's own waiting, none of them fails for the database lock."""
    store = SqliteStore(tmp_path / "busy.db", busy_timeout_ms=1)
    try:
        store.migrate([NOTES_V1])
        errors: list[Exception] = []

        def write() -> None:
            try:
                for n in range(40):
                    with store.transaction() as tx:
                        tx.execute("INSERT INTO note (body, n) VALUES (?, ?)", (b"x" * 64, n))
                        tx.execute("SELECT count(*) FROM note")
            except StoreUnavailable as error:
                errors.append(error)

        threads = [threading.Thread(target=write) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with store.transaction(readonly=True) as tx:
            assert tx.execute("SELECT count(*) FROM note") == [(320,)]
    finally:
        store.close()


@pytest.mark.parametrize(
    "url", ["mysql://x/y", "sqlite:///", "sqlite:///:memory:", "sqlite://relative.db", ""]
)
def test_unknown_url_is_refused(url: str) -> None:
    with pytest.raises(BadStoreUrl):
        open_store(url)


def test_unreachable_postgres_is_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", timeout=1)


def test_unwritable_sqlite_path_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite:///{blocker / 'server.db'}")


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_postgres_recovers_after_its_connections_are_cut(store_url: str) -> None:
    """A database restart breaks pooled connections: one transaction fails as unavailable,
    the pool drops the connection, and the next transaction works."""
    import psycopg

    store = open_store(store_url, schemas=[NOTES_V1], pool_size=1)
    try:
        with store.transaction() as tx:
            (pid,), = tx.execute("SELECT pg_backend_pid()")
        with psycopg.connect(store_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreUnavailable), store.transaction() as tx:
            tx.execute("SELECT 1")
        with store.transaction() as tx:
            assert tx.execute("SELECT count(*) FROM note") == [(0,)]
    finally:
        store.close()
