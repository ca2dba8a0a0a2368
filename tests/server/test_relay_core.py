"""The relay's domain logic and the signed-request authenticator, on both store backends,
without HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.authenticator import NONCE_SCHEMA, Authenticator, ReplayedRequest
from server.doorbell import Doorbell
from server.relay import (
    RELAY_SCHEMA,
    BadEnvelope,
    Envelope,
    MailboxFull,
    MessageTooLarge,
    Relay,
    RelayPolicy,
    UnknownAddress,
)
from server.store import Store
from verifiers.http_signature import HttpRequest, UnknownKey, key_thumbprint, sign_request

NOW = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)
REQUEST = Envelope("application/oauth-authz-req+jwt", "eyJhbGciOiJFUzI1NiJ9.e30.sig")


@pytest.fixture
def relay(store: Store) -> Iterator[Relay]:
    store.migrate([NONCE_SCHEMA, RELAY_SCHEMA])
    yield Relay(store, RelayPolicy(max_message_bytes=1024, max_pending_messages=5))


def _mailbox(relay: Relay) -> str:
    mailbox, _ = relay.open_mailbox(Ed25519PrivateKey.generate().public_key(), now=NOW)
    return mailbox


def test_mailbox_is_named_by_its_key_and_opened_once(relay: Relay) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    assert relay.open_mailbox(key, now=NOW) == (key_thumbprint(key), True)
    assert relay.open_mailbox(key, now=NOW) == (key_thumbprint(key), False)
    found = relay.public_key(key_thumbprint(key))
    assert found is not None and found.public_bytes_raw() == key.public_bytes_raw()
    assert relay.public_key("x" * 43) is None


def test_posts_are_numbered_per_mailbox_and_read_in_order(relay: Relay) -> None:
    one, two = _mailbox(relay), _mailbox(relay)
    a1 = relay.open_address(one, now=NOW).address
    a2 = relay.open_address(two, now=NOW).address
    seqs = [relay.post(a, REQUEST, now=NOW).seq for a in (a1, a2, a1, a1, a2)]
    assert seqs == [1, 1, 2, 3, 2]
    assert [m.seq for m in relay.read(one)] == [1, 2, 3]
    assert [m.seq for m in relay.read(one, after=1, limit=1)] == [2]
    assert relay.read(one)[0].envelope == REQUEST and relay.read(one)[0].address == a1


def test_addresses_are_random_and_128_bits(relay: Relay) -> None:
    mailbox = _mailbox(relay)
    addresses = {relay.open_address(mailbox, now=NOW).address for _ in range(50)}
    assert len(addresses) == 50
    assert all(len(a) == 22 for a in addresses)  # 16 bytes, base64url without padding


def test_closed_address_takes_no_posts_but_keeps_its_messages(relay: Relay) -> None:
    mailbox = _mailbox(relay)
    address = relay.open_address(mailbox, now=NOW).address
    relay.post(address, REQUEST, now=NOW)
    relay.close_address(mailbox, address, now=NOW + timedelta(hours=1))
    relay.close_address(mailbox, address, now=NOW + timedelta(hours=2))  # no-op
    with pytest.raises(UnknownAddress):
        relay.post(address, REQUEST, now=NOW)
    assert len(relay.read(mailbox)) == 1
    (listed,) = relay.addresses(mailbox)
    assert listed.closed_at == NOW + timedelta(hours=1)


def test_another_mailbox_cannot_close_or_ack(relay: Relay) -> None:
    owner, stranger = _mailbox(relay), _mailbox(relay)
    address = relay.open_address(owner, now=NOW).address
    posted = relay.post(address, REQUEST, now=NOW)
    with pytest.raises(UnknownAddress):
        relay.close_address(stranger, address, now=NOW)
    assert relay.ack(stranger, [posted.id]) == 0
    assert relay.read(stranger) == []
    assert [m.id for m in relay.read(owner)] == [posted.id]
    relay.post(address, REQUEST, now=NOW)  # still open


@pytest.mark.parametrize("address", ["", "short", "x" * 65, "has space in it xxxxxxxx", "Zm9v" * 6])
def test_unknown_or_malformed_address_is_unknown(relay: Relay, address: str) -> None:
    with pytest.raises(UnknownAddress):
        relay.post(address, REQUEST, now=NOW)


@pytest.mark.parametrize(
    "content_type",
    ["", "json", "application/", "/json", "text/plain\r\nX: y", "a/b; charset", "ä/b", "a/b c"],
)
def test_bad_media_type_is_refused(relay: Relay, content_type: str) -> None:
    address = relay.open_address(_mailbox(relay), now=NOW).address
    with pytest.raises(BadEnvelope):
        relay.post(address, Envelope(content_type, "x"), now=NOW)


@pytest.mark.parametrize(
    "content_type",
    ["application/oauth-authz-req+jwt", "text/uri-list", "application/json; charset=utf-8",
     'text/plain;format="flowed"'],
)
def test_good_media_types_pass(relay: Relay, content_type: str) -> None:
    address = relay.open_address(_mailbox(relay), now=NOW).address
    relay.post(address, Envelope(content_type, "x"), now=NOW)


def test_message_size_is_counted_in_bytes(relay: Relay) -> None:
    address = relay.open_address(_mailbox(relay), now=NOW).address
    relay.post(address, Envelope("text/plain", "x" * 1024), now=NOW)
    with pytest.raises(MessageTooLarge):
        relay.post(address, Envelope("text/plain", "é" * 513), now=NOW)  # 1026 bytes


def test_full_mailbox_refuses_until_acknowledged(relay: Relay) -> None:
    mailbox = _mailbox(relay)
    address = relay.open_address(mailbox, now=NOW).address
    ids = [relay.post(address, REQUEST, now=NOW).id for _ in range(5)]
    with pytest.raises(MailboxFull):
        relay.post(address, REQUEST, now=NOW)
    assert relay.ack(mailbox, ids[:2] + ids[:2] + ["unknown-id-xxxxxxxxx"]) == 2
    assert relay.ack(mailbox, ids[:2]) == 0
    # Two places are free again; the refused post used no number.
    assert [relay.post(address, REQUEST, now=NOW).seq for _ in range(2)] == [6, 7]
    with pytest.raises(MailboxFull):
        relay.post(address, REQUEST, now=NOW)


def test_concurrent_posts_get_every_number_once(relay: Relay) -> None:
    mailbox = _mailbox(relay)
    relay.policy = RelayPolicy(max_pending_messages=1000)
    address = relay.open_address(mailbox, now=NOW).address
    seqs: list[int] = []

    def post_many() -> None:
        for _ in range(20):
            seqs.append(relay.post(address, REQUEST, now=NOW).seq)

    threads = [threading.Thread(target=post_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seqs) == list(range(1, 81))
    assert [m.seq for m in relay.read(mailbox, limit=100)] == list(range(1, 81))


# --- authenticator --------------------------------------------------------------------------


def _signed(key: Ed25519PrivateKey, *, at: datetime = NOW) -> HttpRequest:
    request = HttpRequest("GET", "http://relay.test/mailbox/messages?after=0")
    return sign_request(request, key, tag="kluis-wallet", now=at)


def test_a_signed_request_is_accepted_once(store: Store) -> None:
    store.migrate([NONCE_SCHEMA])
    key = Ed25519PrivateKey.generate()
    auth = Authenticator(store, tag="kluis-wallet", window_seconds=60)
    lookup = {key_thumbprint(key.public_key()): key.public_key()}.get
    request = _signed(key)
    assert auth.authenticate(request, public_key=lookup, now=NOW).keyid == key_thumbprint(
        key.public_key()
    )
    with pytest.raises(ReplayedRequest):
        auth.authenticate(request, public_key=lookup, now=NOW + timedelta(seconds=30))
    # A second authenticator on the same store (another node) refuses it too.
    other_node = Authenticator(store, tag="kluis-wallet", window_seconds=60)
    with pytest.raises(ReplayedRequest):
        other_node.authenticate(request, public_key=lookup, now=NOW)


def test_unverified_requests_spend_no_nonce(store: Store) -> None:
    store.migrate([NONCE_SCHEMA])
    key = Ed25519PrivateKey.generate()
    auth = Authenticator(store, tag="kluis-wallet", window_seconds=60)
    request = _signed(key)
    with pytest.raises(UnknownKey):
        auth.authenticate(request, public_key=lambda keyid: None, now=NOW)
    with store.transaction(readonly=True) as tx:
        assert tx.execute("SELECT count(*) FROM seen_nonce") == [(0,)]


def test_sweep_forgets_nonces_only_once_they_are_stale(store: Store) -> None:
    store.migrate([NONCE_SCHEMA])
    key = Ed25519PrivateKey.generate()
    auth = Authenticator(store, tag="kluis-wallet", window_seconds=60)
    lookup = {key_thumbprint(key.public_key()): key.public_key()}.get
    request = _signed(key)
    auth.authenticate(request, public_key=lookup, now=NOW)
    assert auth.sweep(now=NOW + timedelta(seconds=60)) == 0
    with pytest.raises(ReplayedRequest):
        auth.authenticate(request, public_key=lookup, now=NOW + timedelta(seconds=60))
    assert auth.sweep(now=NOW + timedelta(seconds=121)) == 1


def test_doorbell_ring_between_look_and_wait_is_not_lost() -> None:
    async def scenario() -> tuple[bool, bool]:
        bell = Doorbell()
        ticket = bell.ticket("m")
        bell.ring("m")  # lands before the wait starts
        rung = await bell.wait(ticket, 5.0)
        silent = await bell.wait(bell.ticket("m"), 0.01)
        return rung, silent

    assert asyncio.run(scenario()) == (True, False)


def test_watcher_wakes_a_waiting_reader_and_streams_in_order(relay: Relay) -> None:
    from server.watcher import Watcher

    mailbox = _mailbox(relay)
    address = relay.open_address(mailbox, now=NOW).address
    # A long poll interval: only the doorbell can wake the reader in time.
    watcher = Watcher(relay, poll_interval=60)

    async def scenario() -> tuple[list[int], list[int], list[list[int]]]:
        assert await watcher.wait_for(mailbox, after=0, limit=10, wait=0) == []

        async def post_soon() -> None:
            await asyncio.sleep(0.05)
            await watcher.post(address, REQUEST, now=NOW)

        poster = asyncio.create_task(post_soon())
        woken = await watcher.wait_for(mailbox, after=0, limit=10, wait=30)
        await poster
        await watcher.post(address, REQUEST, now=NOW)
        later = await watcher.wait_for(mailbox, after=woken[-1].seq, limit=10, wait=0)
        streamed = []
        async for batch in watcher.follow(mailbox, after=0, seconds=0.3, heartbeat=0.1):
            streamed.append([m.seq for m in batch])
        return [m.seq for m in woken], [m.seq for m in later], streamed

    woken, later, streamed = asyncio.run(scenario())
    assert (woken, later) == ([1], [2])
    assert streamed[0] == [1, 2] and [] in streamed[1:]  # then heartbeats only
    assert all(batch == [] for batch in streamed[1:])
