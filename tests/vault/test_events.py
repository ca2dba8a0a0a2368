"""The seam for the consent log: every change reaches each subscriber inside the change's own
transaction, so a subscriber's record and the change commit together or not at all."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from vault import EventKind, ItemEvent, ItemType, Schema, Transaction, Vault, open_vault

# A stand-in for the consent log: one row per event, written through the transaction handle.
LOG = Schema(
    "testlog",
    (
        """CREATE TABLE testlog_entry (
               seq INTEGER PRIMARY KEY,
               kind TEXT NOT NULL,
               name TEXT NOT NULL,
               sha256 TEXT NOT NULL
           )""",
    ),
)


def _record(event: ItemEvent, tx: Transaction) -> None:
    tx.execute(
        "INSERT INTO testlog_entry (kind, name, sha256) VALUES (?, ?, ?)",
        (event.kind.value, event.name, event.sha256),
    )


@pytest.fixture
def logged(profile: Path, passphrase: str) -> Iterator[Vault]:
    with open_vault(profile, passphrase, schemas=[LOG]) as vault:
        vault.subscribe(_record)
        yield vault


def _log(vault: Vault) -> list[tuple[str, str]]:
    return [
        (k, n) for k, n in vault.reader().query("SELECT kind, name FROM testlog_entry ORDER BY seq")
    ]


def test_every_change_is_an_event_with_digest_but_no_content(
    profile: Path, passphrase: str
) -> None:
    events: list[ItemEvent] = []
    with open_vault(profile, passphrase) as vault:
        vault.subscribe(lambda event, tx: events.append(event))
        vault.put_attribute("bsn", "123456782", source="BRP")
        vault.put_attribute("bsn", "999999990", source="BRP")
        vault.put_document(
            "scan", io.BytesIO(b"%PDF-1.7"), media_type="application/pdf", source="me"
        )
        vault.remove("bsn")
    assert [(e.kind, e.name, e.item_type) for e in events] == [
        (EventKind.ADDED, "bsn", ItemType.ATTRIBUTE),
        (EventKind.CHANGED, "bsn", ItemType.ATTRIBUTE),
        (EventKind.ADDED, "scan", ItemType.DOCUMENT),
        (EventKind.REMOVED, "bsn", ItemType.ATTRIBUTE),
    ]
    assert events[2].sha256 == hashlib.sha256(b"%PDF-1.7").hexdigest()
    assert (events[2].size, events[2].media_type) == (8, "application/pdf")
    assert events[3].sha256 == hashlib.sha256(b"999999990").hexdigest()  # what was removed
    assert all("123456782" not in repr(e) for e in events)


def test_subscriber_writes_commit_with_the_change(logged: Vault) -> None:
    logged.put_note("n", "text", source="me")
    logged.remove("n")
    assert _log(logged) == [("added", "n"), ("removed", "n")]


def test_failing_subscriber_rolls_back_the_change(logged: Vault) -> None:
    logged.put_attribute("kept", "1", source="me")

    def refuse(event: ItemEvent, tx: Transaction) -> None:
        raise RuntimeError("log is full")

    unsubscribe = logged.subscribe(refuse)
    with pytest.raises(RuntimeError):
        logged.put_attribute("kept", "2", source="me")
    with pytest.raises(RuntimeError):
        logged.put_document("new", io.BytesIO(b"x" * 10), source="me")
    assert logged.get("kept").text == "1"
    assert [i.name for i in logged.items()] == ["kept"]
    assert _log(logged) == [("added", "kept")]  # neither the changes nor their records
    unsubscribe()
    logged.put_attribute("kept", "3", source="me")
    assert _log(logged)[-1] == ("changed", "kept")


def test_failed_transaction_undoes_changes_and_records_together(logged: Vault) -> None:
    with pytest.raises(KeyError):
        with logged.transaction():
            logged.put_attribute("a", "1", source="me")
            logged.put_attribute("b", "2", source="me")
            raise KeyError("caller gave up")
    assert logged.items() == [] and _log(logged) == []


def test_transaction_batches_and_joins(logged: Vault) -> None:
    with logged.transaction() as tx:
        for i in range(5):
            logged.put_attribute(f"a{i}", str(i), source="me")
        tx.execute("INSERT INTO testlog_entry (kind, name, sha256) VALUES ('note', 'batch', '')")
        assert not logged._db.closed
    assert len(logged.items()) == 5
    assert _log(logged)[-1] == ("note", "batch")


def test_inner_failure_caught_by_the_caller_undoes_only_the_inner_block(logged: Vault) -> None:
    with logged.transaction():
        logged.put_attribute("outer", "1", source="me")
        try:
            with logged.transaction():
                logged.put_attribute("inner", "2", source="me")
                raise ValueError("inner gave up")
        except ValueError:
            pass
    assert [i.name for i in logged.items()] == ["outer"]
    assert _log(logged) == [("added", "outer")]


def test_transaction_handle_is_dead_after_the_block(logged: Vault) -> None:
    from vault.database import Closed

    with logged.transaction() as tx:
        pass
    with pytest.raises(Closed):
        tx.execute("SELECT 1")
