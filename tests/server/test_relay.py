"""The relay over real HTTP (uvicorn on loopback, httpx and the wallet's client), on SQLite
and PostgreSQL: the happy paths, then every kind of bad input and abuse, each answered with
its problem document and leaving the store as it should be."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.problem import PROBLEM_JSON
from server.relay_app import create_relay_app
from server.settings import Settings
from server.store import Store, open_store
from verifiers.http_signature import HttpRequest, format_ed25519_jwk, sign_request
from wallet.mailbox import MailboxClient, RelayRefused, RelayUnavailable
from wallet.transport import HttpxTransport

REQUEST = {"content_type": "application/oauth-authz-req+jwt", "body": "eyJhbGciOi.e30.c2ln"}
TAG = "kluis-wallet"


@dataclass
class Relay:
    url: str
    store: Store
    transport: HttpxTransport

    def wallet(self, key: Ed25519PrivateKey | None = None, **options: Any) -> MailboxClient:
        key = key or Ed25519PrivateKey.generate()
        return MailboxClient(self.url, key, self.transport, **options)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.store.transaction(readonly=True) as tx:
            return tx.execute(sql, params)

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT count(*) FROM {table}")[0][0])


StartRelay = Callable[..., AbstractContextManager[Relay]]


@contextmanager
def _running(url: str, folder: Path, serve: Any, **overrides: Any) -> Iterator[Relay]:
    options: dict[str, Any] = {
        "data_dir": folder, "db_url": url, "relay_poll_interval_seconds": 0.05,
        "rate_limit_per_client": 100_000, "relay_rate_limit_per_address": 1000,
    }
    options.update(overrides)
    store = open_store(url)
    try:
        with serve(create_relay_app(Settings(**options), store)) as base, \
                HttpxTransport() as transport:
            yield Relay(base, store, transport)
    finally:
        store.close()


@pytest.fixture
def start_relay(store_url: str, tmp_path: Path, serve: Any) -> StartRelay:
    """``start_relay(**settings)``: a relay of its own, on this test's store backend."""
    return lambda **overrides: _running(store_url, tmp_path, serve, **overrides)


@pytest.fixture(scope="module")
def relay(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory, serve: Any
) -> Iterator[Relay]:
    """One relay per backend for the whole module: tests compare counts, never assume zero."""
    with _running(module_store_url, tmp_path_factory.mktemp("relay"), serve) as running:
        yield running


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"].endswith(f"/problems/{code}") and body["title"]
    return body


def _signed(
    method: str, url: str, key: Ed25519PrivateKey, body: bytes = b"", *, now: datetime | None = None
) -> HttpRequest:
    headers = (("Content-Type", "application/json"),) if body else ()
    return sign_request(
        HttpRequest(method, url, headers, body), key, tag=TAG, now=now or datetime.now(UTC)
    )


def _send(request: HttpRequest) -> httpx.Response:
    return httpx.request(
        request.method, request.url, headers=dict(request.headers), content=request.body or None
    )


# --- the happy paths ---------------------------------------------------------------------------


def test_register_is_idempotent_and_stores_only_the_public_key(relay: Relay) -> None:
    key = Ed25519PrivateKey.generate()
    wallet = relay.wallet(key)
    before = relay.count("relay_mailbox")
    assert wallet.register() is True
    assert wallet.register() is False
    assert relay.count("relay_mailbox") == before + 1
    ((public,),) = relay.rows(
        "SELECT public_key FROM relay_mailbox WHERE id = ?", (wallet.mailbox_id,)
    )
    assert bytes(public) == key.public_key().public_bytes_raw()


def test_addresses_open_list_and_close(relay: Relay) -> None:
    wallet = relay.wallet()
    wallet.register()
    first, second = wallet.open_address(), wallet.open_address()
    assert first.address != second.address and first.url.startswith(relay.url + "/a/")
    wallet.close_address(first.address)
    wallet.close_address(first.address)  # closing twice is fine
    listed = {a.address: a for a in wallet.addresses()}
    assert set(listed) == {first.address, second.address}
    assert listed[first.address].closed_at is not None and listed[second.address].closed_at is None
    _problem(httpx.post(first.url, json=REQUEST), 404, "relay.unknown_address")
    assert httpx.post(second.url, json=REQUEST).status_code == 202


def test_post_read_ack(relay: Relay) -> None:
    wallet = relay.wallet()
    wallet.register()
    address = wallet.open_address()
    bodies = [f"openid4vp://?request_uri=https%3A%2F%2Fagency.example%2Fr%2F{i}" for i in range(3)]
    ids = [
        httpx.post(address.url, json={"content_type": "text/uri-list", "body": b}).json()["id"]
        for b in bodies
    ]
    inbox = wallet.fetch()
    assert [m.id for m in inbox.messages] == ids and [m.body for m in inbox.messages] == bodies
    assert [m.seq for m in inbox.messages] == [1, 2, 3] and inbox.cursor == 3
    assert {m.address for m in inbox.messages} == {address.address}
    assert wallet.fetch(after=inbox.cursor).messages == ()
    assert wallet.ack(ids[:2]) == 2
    assert wallet.ack(ids[:2]) == 0
    assert [m.id for m in wallet.fetch().messages] == ids[2:]
    stored = relay.rows("SELECT id FROM relay_message WHERE mailbox_id = ?", (wallet.mailbox_id,))
    assert stored == [(ids[2],)]


def test_long_poll_wakes_when_a_message_arrives(relay: Relay) -> None:
    wallet = relay.wallet()
    wallet.register()
    address = wallet.open_address()
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(wallet.fetch(wait=20)))
    reader.start()
    posted = httpx.post(address.url, json=REQUEST).json()["id"]
    reader.join(30)
    assert [m.id for m in got[0].messages] == [posted]


def test_long_poll_wait_is_capped(start_relay: StartRelay) -> None:
    with start_relay(relay_long_poll_max_seconds=0.3) as relay:
        wallet = relay.wallet()
        wallet.register()
        # Uncapped, this would outlive the client's own timeout (wait + 15 s) and fail.
        assert wallet.fetch(wait=3600).messages == ()


def test_server_sent_events(relay: Relay) -> None:
    key = Ed25519PrivateKey.generate()
    wallet = relay.wallet(key)
    wallet.register()
    address = wallet.open_address()
    first = httpx.post(address.url, json=REQUEST).json()["id"]
    request = _signed("GET", f"{relay.url}/mailbox/events?after=0", key)
    events: list[dict[str, str]] = []
    with httpx.stream("GET", request.url, headers=dict(request.headers), timeout=20) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        for line in stream.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(":")
                event[name] = value.strip()
            elif not line and event:
                events.append(event)
                event = {}
                if len(events) == 1:
                    second = httpx.post(address.url, json=REQUEST).json()["id"]
                if len(events) == 2:
                    break
    assert [e["event"] for e in events] == ["message", "message"]
    assert [e["id"] for e in events] == ["1", "2"]
    assert [json.loads(e["data"])["id"] for e in events] == [first, second]


# --- bad input ---------------------------------------------------------------------------------


@pytest.fixture
def address(relay: Relay) -> str:
    wallet = relay.wallet()
    wallet.register()
    return wallet.open_address().url


def test_malformed_json_is_refused_and_not_stored(relay: Relay, address: str) -> None:
    before = relay.count("relay_message")
    response = httpx.post(address, content=b'{"content_type": "text/plain", "body": ',
                          headers={"Content-Type": "application/json"})
    _problem(response, 400, "http.malformed_json")
    assert relay.count("relay_message") == before


@pytest.mark.parametrize(
    "payload",
    [{}, {"body": "x"}, {"content_type": "text/plain"}, {**REQUEST, "extra": 1},
     {"content_type": "text/plain", "body": 5}, [REQUEST], "text"],
)
def test_envelope_of_the_wrong_shape_is_refused(
    relay: Relay, address: str, payload: Any
) -> None:
    before = relay.count("relay_message")
    _problem(httpx.post(address, json=payload), 400, "http.invalid_request")
    assert relay.count("relay_message") == before


@pytest.mark.parametrize(
    "raw",
    [b'{"content_type": "not a type", "body": "x"}',
     b'{"content_type": "text/plain", "body": "\\ud800 unpaired"}'],
    ids=["no_media_type", "unpaired_surrogate"],
)
def test_bad_envelope_is_refused(relay: Relay, address: str, raw: bytes) -> None:
    before = relay.count("relay_message")
    response = httpx.post(address, content=raw, headers={"Content-Type": "application/json"})
    _problem(response, 400, "relay.bad_envelope")
    assert relay.count("relay_message") == before


def test_body_sent_as_another_media_type_is_refused(relay: Relay, address: str) -> None:
    before = relay.count("relay_message")
    response = httpx.post(address, content=json.dumps(REQUEST).encode(),
                          headers={"Content-Type": "text/plain"})
    _problem(response, 400, "http.invalid_request")
    assert relay.count("relay_message") == before


def test_oversized_body_is_413_unread(start_relay: StartRelay) -> None:
    with start_relay(max_body_bytes=8 * 1024, relay_max_message_bytes=4 * 1024) as relay:
        wallet = relay.wallet()
        wallet.register()
        url = wallet.open_address().url
        huge = {"content_type": "text/plain", "body": "x" * 9000}
        _problem(httpx.post(url, json=huge), 413, "http.body_too_large")
        big = {"content_type": "text/plain", "body": "x" * 5000}
        _problem(httpx.post(url, json=big), 413, "relay.message_too_large")
        assert relay.count("relay_message") == 0
        at_limit = {"content_type": "text/plain", "body": "x" * 4096}
        assert httpx.post(url, json=at_limit).status_code == 202


def test_unknown_address_is_404(relay: Relay) -> None:
    before = relay.count("relay_message")
    response = httpx.post(f"{relay.url}/a/{'A' * 22}/messages", json=REQUEST)
    _problem(response, 404, "relay.unknown_address")
    _problem(httpx.post(f"{relay.url}/a/short/messages", json=REQUEST), 400,
             "http.invalid_request")
    assert relay.count("relay_message") == before


def test_registration_with_a_private_key_is_refused(relay: Relay) -> None:
    key = Ed25519PrivateKey.generate()
    private = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
    jwk = {**format_ed25519_jwk(key.public_key()), "d": private}
    before = relay.count("relay_mailbox")
    request = _signed("POST", f"{relay.url}/mailboxes", key, json.dumps({"jwk": jwk}).encode())
    _problem(_send(request), 400, "httpsig.bad_key")
    assert relay.count("relay_mailbox") == before


def test_registration_signed_by_another_key_is_refused(relay: Relay) -> None:
    """Proof of possession: a wallet cannot register a key it does not hold."""
    holder, claimed = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    before = relay.count("relay_mailbox")
    body = json.dumps({"jwk": format_ed25519_jwk(claimed.public_key())}).encode()
    _problem(_send(_signed("POST", f"{relay.url}/mailboxes", holder, body)), 403,
             "httpsig.unknown_key")
    assert relay.count("relay_mailbox") == before


# --- authentication ----------------------------------------------------------------------------


@pytest.fixture
def registered(relay: Relay) -> tuple[Ed25519PrivateKey, MailboxClient]:
    key = Ed25519PrivateKey.generate()
    wallet = relay.wallet(key)
    wallet.register()
    return key, wallet


def test_unsigned_mailbox_requests_are_refused(relay: Relay, registered: Any) -> None:
    before = relay.count("relay_address")
    for method, path in [("GET", "/mailbox/messages"), ("POST", "/mailbox/addresses"),
                         ("GET", "/mailbox/addresses"), ("GET", "/mailbox/events")]:
        _problem(httpx.request(method, relay.url + path), 403, "httpsig.unsigned")
    _problem(httpx.post(relay.url + "/mailbox/acks", json={"ids": ["x" * 22]}), 403,
             "httpsig.unsigned")
    assert relay.count("relay_address") == before


def test_tampered_signature_is_refused(relay: Relay, registered: Any) -> None:
    key, wallet = registered
    request = _signed("POST", f"{relay.url}/mailbox/addresses", key)
    forged = tuple(
        (k, v.replace(v[10:14], "AAAA") if k == "Signature" else v) for k, v in request.headers
    )
    _problem(_send(dataclasses.replace(request, headers=forged)), 422, "httpsig.bad_signature")
    assert wallet.addresses() == []


def test_tampered_body_is_refused(relay: Relay, registered: Any) -> None:
    key, wallet = registered
    address = wallet.open_address()
    posted = httpx.post(address.url, json=REQUEST).json()["id"]
    other_ids = json.dumps({"ids": ["y" * 22]}).encode()
    request = _signed("POST", f"{relay.url}/mailbox/acks", key, other_ids)
    swapped = dataclasses.replace(request, body=json.dumps({"ids": [posted]}).encode())
    _problem(_send(swapped), 422, "httpsig.digest_mismatch")
    assert [m.id for m in wallet.fetch().messages] == [posted]


def test_request_for_another_path_is_refused(relay: Relay, registered: Any) -> None:
    key, _ = registered
    request = _signed("GET", f"{relay.url}/mailbox/addresses", key)
    moved = dataclasses.replace(request, url=f"{relay.url}/mailbox/messages")
    _problem(_send(moved), 422, "httpsig.bad_signature")


def test_replayed_request_is_refused(relay: Relay, registered: Any) -> None:
    key, wallet = registered
    request = _signed("POST", f"{relay.url}/mailbox/addresses", key)
    assert _send(request).status_code == 201
    _problem(_send(request), 403, "httpsig.replayed")
    assert len(wallet.addresses()) == 1


@pytest.mark.parametrize("skew", [-120, 120])
def test_stale_or_future_created_is_refused(relay: Relay, registered: Any, skew: int) -> None:
    key, wallet = registered
    nonces = relay.count("seen_nonce")
    skewed = relay.wallet(key, clock=lambda: datetime.now(UTC) + timedelta(seconds=skew))
    with pytest.raises(RelayRefused) as refused:
        skewed.open_address()
    assert refused.value.fields["problem"] == "httpsig.stale"
    request = _signed("POST", f"{relay.url}/mailbox/addresses", key,
                      now=datetime.now(UTC) + timedelta(seconds=skew))
    _problem(_send(request), 422, "httpsig.stale")
    assert relay.count("seen_nonce") == nonces
    assert wallet.addresses() == []


def test_unregistered_key_is_refused(relay: Relay) -> None:
    stranger = relay.wallet()
    with pytest.raises(RelayRefused) as refused:
        stranger.fetch()
    assert refused.value.fields["problem"] == "httpsig.unknown_key"


def test_a_wallet_cannot_touch_another_mailbox(relay: Relay) -> None:
    owner_key = Ed25519PrivateKey.generate()
    owner, other = relay.wallet(owner_key), relay.wallet()
    owner.register()
    other.register()
    address = owner.open_address()
    posted = httpx.post(address.url, json=REQUEST).json()["id"]
    assert other.fetch().messages == ()
    assert other.addresses() == []
    assert other.ack([posted]) == 0
    with pytest.raises(RelayRefused) as refused:
        other.close_address(address.address)
    assert refused.value.fields["problem"] == "relay.unknown_address"
    # Signing with one's own key but naming the owner's keyid breaks the signature.
    request = _signed("GET", f"{relay.url}/mailbox/messages", Ed25519PrivateKey.generate())
    spoofed = tuple(
        (k, _swap_keyid(v, owner.mailbox_id) if k == "Signature-Input" else v)
        for k, v in request.headers
    )
    _problem(_send(dataclasses.replace(request, headers=spoofed)), 422, "httpsig.bad_signature")
    assert [m.id for m in owner.fetch().messages] == [posted]
    assert httpx.post(address.url, json=REQUEST).status_code == 202  # still open


def _swap_keyid(signature_input: str, keyid: str) -> str:
    head, _, rest = signature_input.partition('keyid="')
    return f'{head}keyid="{keyid}"{rest.partition(chr(34))[2]}'


# --- floods ------------------------------------------------------------------------------------


def test_flood_on_one_address_is_429(start_relay: StartRelay) -> None:
    with start_relay(relay_rate_limit_per_address=3) as relay:
        wallet = relay.wallet()
        wallet.register()
        url = wallet.open_address().url
        answers = [httpx.post(url, json=REQUEST) for _ in range(5)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
        _problem(answers[3], 429, "http.rate_limited")
        assert int(answers[3].headers["retry-after"]) >= 1
        assert relay.count("relay_message") == 3
        other = wallet.open_address().url  # the limit is per address
        assert httpx.post(other, json=REQUEST).status_code == 202


def test_flood_from_one_client_is_429(start_relay: StartRelay) -> None:
    with start_relay(rate_limit_per_client=6) as relay:
        wallet = relay.wallet()
        wallet.register()  # 1
        url = wallet.open_address().url  # 2
        statuses = [httpx.post(url, json=REQUEST).status_code for _ in range(6)]
        assert statuses == [202, 202, 202, 202, 429, 429]
        with pytest.raises(RelayUnavailable) as busy:
            wallet.fetch()
        assert busy.value.fields["problem"] == "http.rate_limited"
        assert busy.value.fields["retry_after"] >= 1
        assert relay.count("relay_message") == 4


def test_full_mailbox_is_503_until_read(start_relay: StartRelay) -> None:
    with start_relay(relay_max_pending_messages=2) as relay:
        wallet = relay.wallet()
        wallet.register()
        url = wallet.open_address().url
        assert [httpx.post(url, json=REQUEST).status_code for _ in range(2)] == [202, 202]
        _problem(httpx.post(url, json=REQUEST), 503, "relay.mailbox_full")
        wallet.ack([m.id for m in wallet.fetch().messages])
        assert httpx.post(url, json=REQUEST).status_code == 202


@pytest.mark.parametrize(
    "ids", [[], ["bad id with spaces"], ["x" * 22] * 101, "x", [1]]
)
def test_bad_ack_bodies_are_refused(relay: Relay, registered: Any, ids: Any) -> None:
    key, _ = registered
    request = _signed("POST", f"{relay.url}/mailbox/acks", key, json.dumps({"ids": ids}).encode())
    _problem(_send(request), 400, "http.invalid_request")


@pytest.mark.parametrize(
    "query", ["after=-1", "limit=0", "limit=101", "wait=-1", "after=x", f"after={2**64}"]
)
def test_bad_read_parameters_are_refused(relay: Relay, registered: Any, query: str) -> None:
    key, _ = registered
    _problem(_send(_signed("GET", f"{relay.url}/mailbox/messages?{query}", key)), 400,
             "http.invalid_request")


# --- what the relay can see --------------------------------------------------------------------


def test_relay_files_hold_no_claim_values_and_forget_read_messages(
    tmp_path: Path, serve: Any
) -> None:
    """The relay stores keys, addresses, counters and agencies' envelopes; nothing the wallet
    sends it carries a claim value or a private key, and an acknowledged envelope is wiped
    from the file (secure_delete), not just unlinked."""
    claims = {"family_name": "Jansen-Marker", "birthdate": "1961-02-03", "bsn": "999990019",
              "income_bracket": "BRACKET-MARKER-3"}
    db = tmp_path / "relay.db"
    store = open_store(f"sqlite:///{db}")
    settings = Settings(data_dir=tmp_path, db_url=f"sqlite:///{db}")
    key = Ed25519PrivateKey.generate()
    envelope_marker = "ENVELOPE-MARKER-7f3a"
    try:
        with serve(create_relay_app(settings, store)) as url, HttpxTransport() as transport:
            wallet = MailboxClient(url, key, transport)
            wallet.register()
            address = wallet.open_address()
            httpx.post(address.url, json={"content_type": "text/uri-list",
                                          "body": f"openid4vp://?request_uri={envelope_marker}"})
            inbox = wallet.fetch()
            # The wallet would now decide, using its vault (`claims`); the relay never sees it.
            assert inbox.messages and claims
            wallet.ack([m.id for m in inbox.messages])
            wallet.close_address(address.address)
        store.checkpoint()  # type: ignore[attr-defined]
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("relay.db*"))
    private = key.private_bytes_raw()
    secrets_and_claims = [private, private.hex().encode(), *(v.encode() for v in claims.values())]
    assert [s for s in secrets_and_claims if s in raw] == []
    assert envelope_marker.encode() not in raw
    assert key.public_key().public_bytes_raw() in raw  # the file is readable: the test can fail
