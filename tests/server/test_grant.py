"""Grants at the relay over real HTTP (uvicorn on loopback), on SQLite and PostgreSQL: the
wallet registers a grant and puts sealed items, the agency fetches with its key, and every
way of reading what it may not is refused with its code and leaves the right record."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.grant import GrantRelay
from server.problem import PROBLEM_JSON
from server.relay_app import create_relay_app
from server.settings import Settings
from server.store import Store, open_store
from verifiers.grant_fetch import (
    AGENCY_TAG,
    FetchRefused,
    fetch_item,
    fetch_url,
    sign_fetch,
    verify_fetch_receipt,
)
from verifiers.http_signature import HttpRequest, sign_request
from verifiers.jws import Alg, SigningKey, generate_signing_key
from verifiers.sealed_item import EncryptionKey, GrantedItem, seal_item
from wallet.grant_relay import GrantClient, GrantRefused
from wallet.transport import HttpxTransport

START = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
AGENCY = "https://utrecht.kluis.example"
STATEMENT = b'{"income_bracket":{"code":"2","label":"EUR 30.001 - 45.000"},"tax_year":2026}'


class Clock:
    """The relay's clock and the signers': moved by the test, never by the wall."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Relay:
    url: str
    store: Store
    transport: HttpxTransport
    clock: Clock

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.store.transaction(readonly=True) as tx:
            return tx.execute(sql, params)

    def count(self, table: str, where: str = "1 = 1", params: tuple[Any, ...] = ()) -> int:
        return int(self.rows(f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0])


@dataclass
class Agency:
    """An agency's grant keys: Ed25519 to sign fetches, X25519 to open items."""

    signing: SigningKey = field(default_factory=lambda: generate_signing_key(Alg.EDDSA))
    encryption: EncryptionKey = field(default_factory=EncryptionKey.generate)

    @property
    def private(self) -> Ed25519PrivateKey:
        key = self.signing.key
        assert isinstance(key, Ed25519PrivateKey)
        return key


@dataclass
class Grant:
    """One grant as the wallet holds it: id, owner key, signing key, items, client."""

    relay: Relay
    agency: Agency
    items: tuple[str, ...] = ("income", "payslip")
    valid_for: timedelta = timedelta(days=180)
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    owner: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    signer: SigningKey = field(default_factory=lambda: generate_signing_key(Alg.EDDSA))

    @property
    def client(self) -> GrantClient:
        return GrantClient(self.relay.url, self.id, self.owner, self.relay.transport,
                           clock=self.relay.clock)

    def create(self) -> Grant:
        created = self.client.create(agency_key=self.agency.private.public_key(),
                                     valid_until=self.relay.clock() + self.valid_for,
                                     items=self.items)
        assert created
        return self

    def sealed(self, item: str, version: int, content: bytes = STATEMENT) -> bytes:
        granted = GrantedItem(self.id, item, version, "application/json", content,
                              self.relay.clock())
        return seal_item(granted, signer=self.signer,
                         recipient=self.agency.encryption.public_bytes)

    def put(self, item: str = "income", version: int = 1, content: bytes = STATEMENT) -> None:
        self.client.upload(item, version=version, sealed=self.sealed(item, version, content))

    def fetch(self, item: str = "income", agency: Agency | None = None) -> Any:
        who = agency or self.agency
        return fetch_item(self.relay.transport, self.relay.url, self.id, item, agency=AGENCY,
                          signing_key=who.signing, encryption_key=who.encryption,
                          wallet_key=self.signer.public, now=self.relay.clock())


StartRelay = Callable[..., AbstractContextManager[Relay]]


@contextmanager
def _running(url: str, folder: Path, serve: Any, **overrides: Any) -> Iterator[Relay]:
    options: dict[str, Any] = {"data_dir": folder, "db_url": url,
                               "rate_limit_per_client": 100_000}
    options.update(overrides)
    store = open_store(url)
    clock = Clock()
    try:
        with serve(create_relay_app(Settings(**options), store, clock=clock)) as base, \
                HttpxTransport() as transport:
            yield Relay(base, store, transport, clock)
    finally:
        store.close()


@pytest.fixture
def relay(store_url: str, tmp_path: Path, serve: Any) -> Iterator[Relay]:
    with _running(store_url, tmp_path, serve) as running:
        yield running


@pytest.fixture
def grant(relay: Relay) -> Grant:
    made = Grant(relay, Agency()).create()
    made.put("income")
    return made


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code


def _send(request: HttpRequest) -> httpx.Response:
    return httpx.request(request.method, request.url, headers=dict(request.headers),
                         content=request.body or None)


def _refused(grant: Grant, code: str, item: str = "income", agency: Agency | None = None) -> None:
    with pytest.raises(FetchRefused) as caught:
        grant.fetch(item, agency)
    assert caught.value.fields["problem"] == code


# --- the happy path ---------------------------------------------------------------------------


def test_agency_reads_the_sealed_item_and_the_fetch_is_recorded(grant: Grant) -> None:
    fetched = grant.fetch()
    assert fetched.item.content == STATEMENT and fetched.item.version == 1
    receipt = verify_fetch_receipt(fetched.receipt, grant.agency.signing.public)
    assert (receipt.grant, receipt.item, receipt.fetch_id) == (grant.id, "income",
                                                              fetched.answer.fetch_id)
    (record,) = grant.client.fetches()
    assert (record.id, record.item, record.outcome, record.version, record.number) == (
        fetched.answer.fetch_id, "income", "served", 1, 1)
    assert record.keyid == grant.relay.rows(
        "SELECT agency_keyid FROM grant_grant WHERE id = ?", (grant.id,))[0][0]
    assert grant.client.ack([record.id, record.id]) == 1
    assert grant.client.fetches() == [] and grant.client.ack([record.id]) == 0


def test_a_new_version_replaces_the_old_one(grant: Grant) -> None:
    grant.put("income", 2, b'{"tax_year":2027}')
    fetched = grant.fetch()
    assert (fetched.item.version, fetched.item.content) == (2, b'{"tax_year":2027}')
    assert grant.relay.count("grant_item", "grant_id = ? AND sealed IS NOT NULL",
                             (grant.id,)) == 1


def test_registering_again_is_idempotent_and_other_terms_conflict(relay: Relay) -> None:
    made = Grant(relay, Agency()).create()
    assert made.client.create(agency_key=made.agency.private.public_key(),
                              valid_until=relay.clock() + made.valid_for,
                              items=made.items) is False
    with pytest.raises(GrantRefused) as caught:
        made.client.create(agency_key=made.agency.private.public_key(),
                           valid_until=relay.clock() + made.valid_for, items=("income",))
    assert caught.value.fields["problem"] == "grant.exists"
    squatter = Grant(relay, Agency(), id=made.id)
    with pytest.raises(GrantRefused):
        squatter.create()
    assert relay.count("grant_grant", "id = ?", (made.id,)) == 1


# --- what an agency may not read ------------------------------------------------------------


def test_an_item_outside_the_grant_is_refused_and_recorded(grant: Grant) -> None:
    _refused(grant, "grant.item_not_granted", item="bank-statement")
    (record,) = grant.client.fetches()
    assert (record.outcome, record.error, record.item) == (
        "refused", "grant.item_not_granted", "bank-statement")
    assert grant.relay.rows("SELECT served FROM grant_grant WHERE id = ?", (grant.id,)) == [(0,)]


def test_an_item_not_put_yet_is_unavailable(grant: Grant) -> None:
    _refused(grant, "grant.item_unavailable", item="payslip")


def test_another_agency_cannot_read_this_grant(grant: Grant) -> None:
    stranger = Agency()
    _refused(grant, "httpsig.unknown_key", agency=stranger)
    assert grant.client.fetches() == []


def test_an_agency_cannot_read_another_agencys_grant(relay: Relay) -> None:
    mine = Grant(relay, Agency()).create()
    mine.put()
    theirs = Grant(relay, Agency()).create()
    theirs.put()
    response = _send(sign_fetch(fetch_url(relay.url, theirs.id, "income"), mine.agency.private,
                                now=relay.clock()))
    _problem(response, 403, "httpsig.unknown_key")
    assert theirs.client.fetches() == [] and mine.client.fetches() == []


def test_an_unknown_grant_looks_like_an_unknown_key(grant: Grant) -> None:
    url = fetch_url(grant.relay.url, secrets.token_urlsafe(16), "income")
    _problem(_send(sign_fetch(url, grant.agency.private, now=grant.relay.clock())), 403,
             "httpsig.unknown_key")


def test_after_revocation_the_next_fetch_is_refused_and_the_item_is_gone(grant: Grant) -> None:
    grant.fetch()
    revoked = grant.client.revoke()
    assert revoked.served == 1
    assert grant.relay.count("grant_item", "grant_id = ?", (grant.id,)) == 0
    _refused(grant, "grant.revoked")
    response = _send(sign_fetch(fetch_url(grant.relay.url, grant.id, "income"),
                                grant.agency.private, now=grant.relay.clock()))
    _problem(response, 410, "grant.revoked")
    assert grant.client.revoke() == revoked  # again: the first revocation
    records = grant.client.fetches()
    assert [r.outcome for r in records] == ["served", "refused", "refused"]
    with pytest.raises(GrantRefused) as caught:
        grant.put("income", 2)
    assert caught.value.fields["problem"] == "grant.revoked"


def test_after_expiry_fetches_are_refused_and_the_sweeper_drops_the_items(grant: Grant) -> None:
    relay = grant.relay
    relay.clock.now = START + grant.valid_for - timedelta(seconds=1)
    assert grant.fetch().item.content == STATEMENT
    relay.clock.now = START + grant.valid_for
    _refused(grant, "grant.expired")
    grant.relay.clock.now += timedelta(minutes=1)
    GrantRelay(relay.store).sweep(now=relay.clock())
    assert relay.count("grant_item", "grant_id = ? AND sealed IS NOT NULL", (grant.id,)) == 0
    with pytest.raises(GrantRefused) as caught:
        grant.put("income", 2)
    assert caught.value.fields["problem"] == "grant.expired"


def test_a_replayed_fetch_is_refused(grant: Grant) -> None:
    signed = sign_fetch(fetch_url(grant.relay.url, grant.id, "income"), grant.agency.private,
                        now=grant.relay.clock())
    assert _send(signed).status_code == 200
    _problem(_send(signed), 403, "httpsig.replayed")
    assert [r.outcome for r in grant.client.fetches()] == ["served"]


def test_a_wallet_signature_does_not_open_an_item(grant: Grant) -> None:
    """The tag separates uses: the agency's key signing as a wallet is not a fetch."""
    url = fetch_url(grant.relay.url, grant.id, "income")
    wrong_tag = sign_request(HttpRequest("GET", url), grant.agency.private, tag="kluis-wallet",
                             now=grant.relay.clock())
    _problem(_send(wrong_tag), 422, "httpsig.bad_signature")
    owner_signed = sign_request(HttpRequest("GET", url), grant.owner, tag=AGENCY_TAG,
                                now=grant.relay.clock())
    _problem(_send(owner_signed), 403, "httpsig.unknown_key")


def test_unsigned_and_stale_fetches_are_refused(grant: Grant) -> None:
    url = fetch_url(grant.relay.url, grant.id, "income")
    _problem(httpx.get(url), 403, "httpsig.unsigned")
    stale = sign_fetch(url, grant.agency.private, now=grant.relay.clock() - timedelta(minutes=5))
    _problem(_send(stale), 422, "httpsig.stale")
    assert grant.client.fetches() == []


# --- the wallet's side ---------------------------------------------------------------------


def test_only_the_owner_key_changes_a_grant(grant: Grant) -> None:
    intruder = GrantClient(grant.relay.url, grant.id, Ed25519PrivateKey.generate(),
                           grant.relay.transport, clock=grant.relay.clock)
    for attempt in (intruder.revoke, intruder.fetches,
                    lambda: intruder.upload("income", version=9, sealed=b"x" * 64)):
        with pytest.raises(GrantRefused) as caught:
            attempt()
        assert caught.value.fields["problem"] == "httpsig.unknown_key"
    assert grant.fetch().item.version == 1


def test_an_older_version_is_refused(grant: Grant) -> None:
    grant.put("income", 3)
    with pytest.raises(GrantRefused) as caught:
        grant.put("income", 2)
    assert caught.value.fields["problem"] == "grant.stale_version"
    with pytest.raises(GrantRefused) as caught:
        grant.put("bank-statement", 1)
    assert caught.value.fields["problem"] == "grant.item_not_granted"
    assert grant.fetch().item.version == 3


def test_a_withdrawn_item_is_unavailable(grant: Grant) -> None:
    grant.client.withdraw("income")
    _refused(grant, "grant.item_unavailable")
    assert grant.relay.count("grant_item", "grant_id = ? AND sealed IS NOT NULL",
                             (grant.id,)) == 0


def test_oversized_items_and_bad_terms_are_refused(start: Any) -> None:
    with start(max_body_bytes=4096) as relay:
        made = Grant(relay, Agency()).create()
        with pytest.raises(GrantRefused) as caught:
            made.put("income", 1, b"x" * 5000)
        assert caught.value.fields["problem"] == "http.body_too_large"
        past = Grant(relay, Agency(), valid_for=timedelta(seconds=-1))
        with pytest.raises(GrantRefused) as caught:
            past.create()
        assert caught.value.fields["problem"] == "grant.bad_terms"
        far = Grant(relay, Agency(), valid_for=timedelta(days=4000))
        with pytest.raises(GrantRefused):
            far.create()
        assert relay.count("grant_grant") == 1


@pytest.fixture
def start(store_url: str, tmp_path: Path, serve: Any) -> StartRelay:
    return lambda **overrides: _running(store_url, tmp_path, serve, **overrides)


# --- consistency and what the relay's files hold --------------------------------------------


def test_revocation_during_fetches_leaves_a_consistent_record(relay: Relay) -> None:
    """Agencies fetch from several threads while the wallet revokes: every fetch the agency
    got is recorded as served before the revocation, every later one is refused, and the
    record has no gap: never served-but-unrecorded, never served-after-revocation."""
    made = Grant(relay, Agency()).create()
    made.put()
    got: list[str] = []
    refused: list[str] = []
    revoked = threading.Event()
    lock = threading.Lock()

    def agency() -> None:
        with HttpxTransport() as own:
            for _ in range(400):
                try:
                    fetched = fetch_item(own, relay.url, made.id, "income", agency=AGENCY,
                                         signing_key=made.agency.signing,
                                         encryption_key=made.agency.encryption,
                                         wallet_key=made.signer.public, now=relay.clock())
                except FetchRefused as error:
                    with lock:
                        refused.append(error.fields["problem"])
                    if revoked.is_set():
                        return
                    continue
                with lock:
                    got.append(fetched.answer.fetch_id)

    threads = [threading.Thread(target=agency) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(got) < 20 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(got) >= 20, refused[:5]
    revocation = made.client.revoke()
    revoked.set()
    for thread in threads:
        thread.join(60)
    assert set(refused) == {"grant.revoked"}
    records: list[Any] = []
    while batch := made.client.fetches(limit=100):
        records += batch
        made.client.ack([r.id for r in batch])
    served = [r for r in records if r.outcome == "served"]
    assert sorted(r.id for r in served) == sorted(got)
    assert sorted(r.number for r in served) == list(range(1, revocation.served + 1))
    assert all(r.fetched_at <= revocation.revoked_at for r in served)
    assert [r.seq for r in records] == sorted(r.seq for r in records)
    assert all(r.error == "grant.revoked" for r in records if r.outcome == "refused")
    assert relay.count("grant_item", "grant_id = ?", (made.id,)) == 0


def test_the_relay_holds_no_plaintext(relay: Relay, store_url: str, tmp_path: Path) -> None:
    """The sealed items, the fetch records and the grant rows hold no byte of the content:
    not in the database file, not in its write-ahead log (read before and after folding it
    in), not after revocation. (Item ids such as ``payslip`` are names the relay sees.)"""
    made = Grant(relay, Agency()).create()
    secret = b"Oudegracht 231, gross income 41250, ZZ-unique-" + secrets.token_hex(8).encode()
    made.put("income", 1, secret)
    made.put("payslip", 1, secret + b" second document")
    assert made.fetch().item.content == secret
    words = [secret, b"Oudegracht", b"41250", secret[-16:], b"second document"]

    def held() -> bytes:
        if not store_url.startswith("sqlite"):
            rows = relay.rows("SELECT sealed FROM grant_item WHERE sealed IS NOT NULL"
                              " UNION ALL SELECT item::bytea FROM grant_fetch")
            return b"".join(bytes(row[0]) for row in rows)
        files = [p for p in tmp_path.iterdir() if p.name.startswith("server.db")]
        assert any(p.name.endswith("-wal") for p in files)
        return b"".join(p.read_bytes() for p in files)

    for moment in ("in the log", "folded in"):
        if moment == "folded in" and store_url.startswith("sqlite"):
            relay.store.checkpoint()  # type: ignore[attr-defined]
        assert not [w for w in words if w in held()], moment
    made.client.revoke()
    if store_url.startswith("sqlite"):
        relay.store.checkpoint()  # type: ignore[attr-defined]
    assert not [w for w in words if w in held()]
    assert relay.count("grant_item", "sealed IS NOT NULL AND grant_id = ?", (made.id,)) == 0
