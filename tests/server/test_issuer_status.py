"""The issuer's status lists in the store, on SQLite and PostgreSQL: random indices never
handed out twice (also when draws collide, and under concurrent issuance), the transition
rules of Token Status List §7.1, and the token serving exactly the stored statuses."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from issuer_service import agency
from jwcrypto.jwk import JWK

from server import issuer_status
from server.issuer import SCHEMAS
from server.issuer_status import LIST_SIZE, StatusLists
from server.store import Store
from vault import KluisError
from verifiers.status_array import StatusValue
from verifiers.status_token import verify_status_list_token

NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
URL = "http://127.0.0.1:8471"


@pytest.fixture
def lists(store: Store) -> StatusLists:
    store.migrate(SCHEMAS)
    return StatusLists(store, agency(), URL)


def _allocate(store: Store, lists: StatusLists, offer: str, configuration: str = "diploma") -> int:
    with store.transaction() as tx:
        claim = lists.allocate(tx, offer_id=offer, configuration=configuration, now=NOW)
    index: int = claim["status_list"]["idx"]
    assert claim["status_list"]["uri"] == f"{URL}/status/1"
    return index


def _count(store: Store) -> int:
    with store.transaction(readonly=True) as tx:
        return int(tx.execute("SELECT count(*) FROM issuer_issued")[0][0])


def test_a_collision_draws_again(
    store: Store, lists: StatusLists, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = iter([5, 5, 5, 9])
    monkeypatch.setattr(issuer_status.secrets, "randbelow", lambda n: next(draws))
    assert _allocate(store, lists, "o1") == 5
    assert _allocate(store, lists, "o2") == 9
    assert _count(store) == 2


def test_a_full_list_is_refused_and_nothing_recorded(
    store: Store, lists: StatusLists, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(issuer_status.secrets, "randbelow", lambda n: 7)
    _allocate(store, lists, "o1")
    with pytest.raises(KluisError) as caught:
        _allocate(store, lists, "o2")
    assert caught.value.code == "status.list_full"
    assert _count(store) == 1


def test_indices_are_spread_over_the_whole_list(store: Store, lists: StatusLists) -> None:
    indices = [_allocate(store, lists, f"o{n}") for n in range(40)]
    assert len(set(indices)) == 40 and all(0 <= i < LIST_SIZE for i in indices)
    assert max(indices) > LIST_SIZE // 2  # not handed out in order from 0


def _token_value(lists: StatusLists, index: int) -> int:
    token = lists.token("1", now=NOW, ttl=300, lifetime=3600)
    key = JWK(**lists._agency.public_jwk)  # noqa: SLF001 - the test's own agency
    verified = verify_status_list_token(token, [key], uri=f"{URL}/status/1",
                                        now=int(NOW.timestamp()))
    return verified.statuses[index]


def _change(store: Store, lists: StatusLists, index: int, action: str) -> int:
    with store.transaction() as tx:
        return lists.change(tx, "1", index, action, now=NOW)


def test_transitions_and_the_token(store: Store, lists: StatusLists) -> None:
    index = _allocate(store, lists, "o1")
    other = _allocate(store, lists, "o2")
    assert _token_value(lists, index) == StatusValue.VALID
    assert _change(store, lists, index, "suspend") == StatusValue.SUSPENDED
    assert _token_value(lists, index) == StatusValue.SUSPENDED
    assert _change(store, lists, index, "reinstate") == StatusValue.VALID
    assert _change(store, lists, other, "revoke") == StatusValue.INVALID
    assert _token_value(lists, other) == StatusValue.INVALID
    assert _token_value(lists, index) == StatusValue.VALID

    def code(action: str, at: int) -> str:
        with pytest.raises(KluisError) as caught:
            _change(store, lists, at, action)
        return caught.value.code

    assert code("reinstate", index) == "status.bad_transition"
    assert code("reinstate", other) == "status.already_revoked"
    assert code("suspend", other) == "status.already_revoked"
    assert code("revoke", other) == "status.already_revoked"
    assert _token_value(lists, other) == StatusValue.INVALID


def test_unknown_list(lists: StatusLists) -> None:
    with pytest.raises(KluisError) as caught:
        lists.token("2", now=NOW, ttl=300, lifetime=3600)
    assert caught.value.code == "issuer.unknown_status_list"


def test_concurrent_issuance_never_shares_an_index(
    store: Store, lists: StatusLists, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight threads draw from 60 indices for 40 credentials, so they collide often: every
    index is still recorded once."""
    real = issuer_status.secrets.randbelow
    monkeypatch.setattr(issuer_status.secrets, "randbelow", lambda n: real(60))
    got: list[int] = []
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for n in range(5):
                got.append(_allocate(store, lists, f"t{thread}-{n}"))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(got) == 40 and len(set(got)) == 40
    assert _count(store) == 40


def test_status_claim_shape(store: Store, lists: StatusLists) -> None:
    with store.transaction() as tx:
        claim: dict[str, Any] = lists.allocate(tx, offer_id="o", configuration="c", now=NOW)
    assert set(claim) == {"status_list"} and set(claim["status_list"]) == {"idx", "uri"}
