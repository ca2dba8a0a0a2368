"""Benchmark of access grants at the relay: fetch rate and revocation latency, on SQLite and
on PostgreSQL, beside the relay's cheapest endpoint measured in the same run.

    .venv/bin/python -m bench.grants                       # about 45 s
    KLUIS_TEST_POSTGRES=postgresql://... .venv/bin/python -m bench.grants
    .venv/bin/python -m bench.grants --seconds 5 --clients 1,2,4 --revocations 50

The relay runs as its own process (``uvicorn --factory server.relay_app:create_relay_app``,
one worker) on loopback; the load comes from separate client processes, each with its own
HTTP connection, so the relay's process holds nothing but the relay.

Rows (requests per second over ``--seconds``, all clients together; the ratio is over the
``unsigned fetch`` row of the same store and clients):

- ``unsigned fetch``: the baseline: the agency's fetch route without a signature, refused
  with 403 at the signature check (the framework, the per-client rate counter, which costs
  one store write on every route, and the check);
- ``trivial``: ``GET /problems/grant.revoked``, a route without a signature check (it walks
  the error classes to describe the code);
- ``signed fetch``: the agency's real fetch: the client signs (RFC 9421, Ed25519, fresh
  nonce), the relay verifies, spends the nonce, counts and records the fetch and reads the
  sealed item in one transaction, and answers the sealed bytes (2 KiB).

Revocation latency: an agency fetches in a loop while the wallet revokes; the time from the
revoke call returning to the first refused fetch arriving at the agency. By construction no
extra request is needed (the revocation is committed before its answer leaves the relay), so
this is at most one fetch round trip; ``served after`` counts fetches sent after the revoke
call returned that were still served, which must be 0.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifiers.grant_fetch import fetch_url, sign_fetch
from verifiers.jws import Alg, generate_signing_key
from verifiers.sealed_item import EncryptionKey, GrantedItem, seal_item
from wallet.grant_relay import GrantClient
from wallet.transport import HttpxTransport

ROOT = Path(__file__).resolve().parent.parent

ITEM = b"x" * 2048


@dataclass
class Grant:
    url: str
    grant_id: str
    owner: Ed25519PrivateKey
    agency: Ed25519PrivateKey

    def client(self, transport: HttpxTransport) -> GrantClient:
        return GrantClient(self.url, self.grant_id, self.owner, transport)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def relay_process(db_url: str, folder: Path) -> Iterator[str]:
    """The relay in its own process on a free loopback port; yields its URL."""
    port = _free_port()
    env = {**os.environ, "KLUIS_DB_URL": db_url, "KLUIS_DATA_DIR": str(folder),
           "KLUIS_RATE_LIMIT_PER_CLIENT": "1000000000", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "uvicorn", "--factory",
               "server.relay_app:create_relay_app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, env=env, cwd=str(folder))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/problems/grant.revoked", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the relay did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def new_grant(url: str) -> Grant:
    grant = Grant(url, secrets.token_urlsafe(16), Ed25519PrivateKey.generate(),
                  Ed25519PrivateKey.generate())
    with HttpxTransport() as transport:
        client = grant.client(transport)
        client.create(agency_key=grant.agency.public_key(),
                      valid_until=datetime.now(UTC) + timedelta(days=30), items=["income"])
        item = GrantedItem(grant.grant_id, "income", 1, "application/json", ITEM,
                           datetime.now(UTC))
        sealed = seal_item(item, signer=generate_signing_key(Alg.EDDSA),
                           recipient=EncryptionKey.generate().public_bytes)
        client.upload("income", version=1, sealed=sealed)
    return grant


# --- load ---------------------------------------------------------------------------------------


def _worker(kind: str, url: str, grant_id: str, agency_raw: bytes, seconds: float,
            results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One client process: as many requests of ``kind`` as fit in ``seconds``."""
    agency = Ed25519PrivateKey.from_private_bytes(agency_raw)
    target = fetch_url(url, grant_id, "income")
    expected = {"trivial": 200, "unsigned": 403, "signed": 200}[kind]
    done = 0
    with httpx.Client() as client:
        start = time.perf_counter()
        end = start + seconds
        while time.perf_counter() < end:
            if kind == "trivial":
                answer = client.get(f"{url}/problems/grant.revoked")
            elif kind == "unsigned":
                answer = client.get(target)
            else:
                signed = sign_fetch(target, agency, now=datetime.now(UTC))
                answer = client.get(signed.url, headers=dict(signed.headers))
            if answer.status_code != expected:
                raise RuntimeError(f"{kind}: HTTP {answer.status_code} {answer.text[:200]}")
            done += 1
        results.put((done, time.perf_counter() - start))


def rate(kind: str, grant: Grant, clients: int, seconds: float) -> float:
    """Requests per second of ``kind`` with ``clients`` client processes."""
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    raw = grant.agency.private_bytes_raw()
    workers = [context.Process(target=_worker, args=(kind, grant.url, grant.grant_id, raw,
                                                     seconds, results))
               for _ in range(clients)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=seconds + 60) for _ in workers]
    for worker in workers:
        worker.join(30)
        if worker.exitcode != 0:
            raise RuntimeError(f"a {kind} client failed")
    return sum(done / elapsed for done, elapsed in outcomes)


# --- revocation ---------------------------------------------------------------------------------


def revocation(url: str) -> tuple[float, int]:
    """Seconds from the revoke call returning to the first refused fetch at the agency, and
    how many fetches sent after that return were still served (must be 0)."""
    grant = new_grant(url)
    target = fetch_url(url, grant.grant_id, "income")
    returned: list[float] = []
    refused_at: list[float] = []
    served_after = 0
    warm = threading.Event()

    def agency() -> None:
        nonlocal served_after
        with httpx.Client() as client:
            while True:
                signed = sign_fetch(target, grant.agency, now=datetime.now(UTC))
                sent = time.perf_counter()
                answer = client.get(signed.url, headers=dict(signed.headers))
                if answer.status_code == 410:
                    refused_at.append(time.perf_counter())
                    return
                if answer.status_code != 200:
                    raise RuntimeError(f"fetch: HTTP {answer.status_code}")
                if returned and sent > returned[0]:
                    served_after += 1
                warm.set()

    thread = threading.Thread(target=agency)
    thread.start()
    warm.wait(10)
    time.sleep(0.02)
    with HttpxTransport() as transport:
        grant.client(transport).revoke()
        returned.append(time.perf_counter())
    thread.join(10)
    return refused_at[0] - returned[0], served_after


# --- the run ------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    import psycopg

    schema = f"kluis_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def measure(name: str, db_url: str, folder: Path, args: argparse.Namespace) -> list[str]:
    rows: list[str] = []
    with relay_process(db_url, folder) as url:
        grant = new_grant(url)
        rate("signed", grant, 1, 0.5)  # warm up connections and caches
        for clients in args.clients:
            trivial = rate("trivial", grant, clients, args.seconds)
            unsigned = rate("unsigned", grant, clients, args.seconds)
            signed = rate("signed", grant, clients, args.seconds)
            for label, value in (("unsigned fetch", unsigned), ("trivial", trivial),
                                 ("signed fetch", signed)):
                rows.append(f"{name:<11}{clients:>8}  {label:<16}{value:>10.0f}"
                            f"{value / unsigned:>9.2f}")
        latencies, served_after = [], 0
        for _ in range(args.revocations):
            seconds, after = revocation(url)
            latencies.append(seconds * 1000)
            served_after += after
        rows.append(
            f"{name:<11}revocation latency over {args.revocations} revocations: median "
            f"{statistics.median(latencies):.2f} ms, max {max(latencies):.2f} ms; fetches "
            f"served after the revoke returned: {served_after}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--clients", default="1,4", help="client processes, e.g. 1,2,4")
    parser.add_argument("--revocations", type=int, default=20)
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",")]
    postgres = os.environ.get("KLUIS_TEST_POSTGRES", "")
    print(f"grants at the relay on loopback, {os.cpu_count()} CPUs, relay: 1 uvicorn worker; "
          f"{args.seconds:g} s per row; item 2 KiB sealed")
    print(f"{'store':<11}{'clients':>8}  {'request':<16}{'per second':>10}{'ratio':>9}")
    with TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = measure("SQLite", f"sqlite:///{folder / 'relay.db'}", folder, args)
        print("\n".join(lines), flush=True)
        if postgres:
            with postgres_schema(postgres) as url:
                print("\n".join(measure("PostgreSQL", url, folder, args)))
        else:
            print("PostgreSQL  skipped: KLUIS_TEST_POSTGRES is not set")
    print("ratio: requests per second over the unsigned fetch's (the same route and framework "
          "without the grant's work), same store and clients")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
