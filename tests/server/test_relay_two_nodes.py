"""Two relay processes on one database serve the same mailbox: concurrent agencies post to
both, one wallet polls and acknowledges through both, and every message arrives exactly once,
in order. Also: a signed request used on one node is refused on the other."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.store import open_store
from verifiers.http_signature import HttpRequest, sign_request
from wallet.mailbox import InboxMessage, MailboxClient
from wallet.transport import HttpxTransport

ROOT = Path(__file__).resolve().parents[2]
POSTERS, PER_POSTER = 4, 40


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _nodes(db_url: str, folder: Path, count: int) -> Iterator[list[str]]:
    """``count`` relay processes (``uvicorn --factory server.relay_app:create_relay_app``) on
    one database, started side by side; yields their base URLs."""
    env = {
        **os.environ,
        "KLUIS_DB_URL": db_url,
        "KLUIS_DATA_DIR": str(folder),
        "KLUIS_RATE_LIMIT_PER_CLIENT": "1000000",
        "KLUIS_RELAY_RATE_LIMIT_PER_ADDRESS": "1000000",
        "KLUIS_RELAY_POLL_INTERVAL_SECONDS": "0.05",
        "KLUIS_DB_POOL_SIZE": "8",
    }
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for number in range(count):
            port, log = _free_port(), folder / f"node-{number}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    [sys.executable, "-m", "uvicorn", "--factory",
                     "server.relay_app:create_relay_app", "--host", "127.0.0.1",
                     "--port", str(port), "--log-level", "warning"],
                    cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                )
            started.append((process, f"http://127.0.0.1:{port}", log))
        for process, url, log in started:
            _wait_until_up(process, url, log)
        yield [url for _, url, _ in started]
    finally:
        for process, _, _ in started:
            process.terminate()
        for process, _, _ in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/problems/relay.unknown_address", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"relay node did not start: {log.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def two_nodes(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    open_store(module_store_url).close()  # migrate once; each node's migration is then a no-op
    with _nodes(module_store_url, tmp_path_factory.mktemp("nodes"), 2) as (node_a, node_b):
        yield node_a, node_b


@pytest.mark.slow
def test_every_message_is_delivered_exactly_once(
    two_nodes: tuple[str, str], module_store_url: str
) -> None:
    key = Ed25519PrivateKey.generate()
    with HttpxTransport(timeout=10) as transport:
        wallets = [MailboxClient(url, key, transport) for url in two_nodes]
        wallets[0].register()
        addresses = [wallets[i % 2].open_address().address for i in range(POSTERS)]

        posted: list[str] = []
        failures: list[BaseException] = []
        lock = threading.Lock()

        def agency(number: int) -> None:
            try:
                with httpx.Client(timeout=10) as client:
                    for i in range(PER_POSTER):
                        node = two_nodes[(number + i) % 2]
                        answer = client.post(
                            f"{node}/a/{addresses[number]}/messages",
                            json={"content_type": "text/uri-list", "body": f"req-{number}-{i}"},
                        )
                        answer.raise_for_status()
                        with lock:
                            posted.append(answer.json()["id"])
            except BaseException as error:  # reported by the main thread
                failures.append(error)

        received: list[InboxMessage] = []

        def wallet_reader() -> None:
            try:
                cursor, turn = 0, 0
                deadline = time.monotonic() + 60
                while len(received) < POSTERS * PER_POSTER and time.monotonic() < deadline:
                    inbox = wallets[turn % 2].fetch(after=cursor, wait=2, limit=25)
                    received.extend(inbox.messages)
                    cursor = inbox.cursor
                    if inbox.messages:  # acknowledge through the other node
                        wallets[(turn + 1) % 2].ack([m.id for m in inbox.messages])
                    turn += 1
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=wallet_reader)]
        threads += [threading.Thread(target=agency, args=(n,)) for n in range(POSTERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert failures == []

        ids = [m.id for m in received]
        assert len(posted) == POSTERS * PER_POSTER
        assert len(ids) == len(set(ids)), "a message was delivered twice"
        assert set(ids) == set(posted), "a message was lost"
        assert [m.seq for m in received] == list(range(1, POSTERS * PER_POSTER + 1))
        # Each agency's own messages arrive in the order it posted them.
        for number in range(POSTERS):
            bodies = [m.body for m in received if m.address == addresses[number]]
            assert bodies == [f"req-{number}-{i}" for i in range(PER_POSTER)]
        # Everything was acknowledged: nothing left on either node, nor in the store.
        assert wallets[0].fetch().messages == () and wallets[1].fetch().messages == ()
    store = open_store(module_store_url)
    mailbox = wallets[0].mailbox_id
    try:
        with store.transaction(readonly=True) as tx:
            left = tx.execute("SELECT count(*) FROM relay_message WHERE mailbox_id = ?", (mailbox,))
            counters = tx.execute(
                "SELECT pending, next_seq FROM relay_mailbox WHERE id = ?", (mailbox,)
            )
        assert left == [(0,)] and counters == [(0, POSTERS * PER_POSTER)]
    finally:
        store.close()


@pytest.mark.slow
def test_cross_node_wake_up_and_replay(two_nodes: tuple[str, str]) -> None:
    node_a, node_b = two_nodes
    key = Ed25519PrivateKey.generate()
    with HttpxTransport(timeout=10) as transport:
        on_a, on_b = MailboxClient(node_a, key, transport), MailboxClient(node_b, key, transport)
        on_a.register()
        address = on_a.open_address().address
        # A reader waiting on node B sees a post taken by node A.
        got: list[list[InboxMessage]] = []
        reader = threading.Thread(target=lambda: got.append(list(on_b.fetch(wait=20).messages)))
        reader.start()
        posted = httpx.post(f"{node_a}/a/{address}/messages",
                            json={"content_type": "text/plain", "body": "hello"}).json()["id"]
        reader.join(30)
        assert [m.id for m in got[0]] == [posted]
    # The same signed request, first to A, then to B: B refuses it.
    request = sign_request(HttpRequest("POST", f"{node_a}/mailbox/addresses"), key,
                           tag="kluis-wallet", now=datetime.now(UTC))
    first = httpx.post(request.url, headers=dict(request.headers))
    assert first.status_code == 201
    # The nodes differ only in port; a load balancer in front of both would pass the same
    # Host to each, so send it to B with A's Host header: the exact same signed request.
    as_proxy = {**dict(request.headers), "Host": node_a.removeprefix("http://")}
    replay = httpx.post(f"{node_b}/mailbox/addresses", headers=as_proxy)
    assert replay.status_code == 403
    assert replay.json()["code"] == "httpsig.replayed"
