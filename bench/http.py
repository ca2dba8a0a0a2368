"""Complete OpenID4VP flows per second over loopback, beside a trivial FastAPI endpoint on the
same server, driven by the same load client in the same run.

Usage: ``.venv/bin/python -m bench.http [--seconds 4] [--concurrency 32] [--workers 1 2]
[--db URL] [--profile FLOWS]`` (about 40 s as it stands).

The server is ``server.launcher`` with the demo world's apps (``python -m server`` does the
same) plus one trivial app (``GET /`` -> ``{"ok": true}``, an ``async def`` route: what
FastAPI and uvicorn cost on their own), in one process per worker sharing the ports. The load
client is one asyncio process speaking HTTP/1.1 over keep-alive connections, one connection
per concurrent flow, so the client's own cost per request is small and equal for both.

One flow is k = 3 HTTP requests:

1. the agency's back office creates a request (``POST /requests`` on the verifier admin app:
   fresh state, nonce and response key, a signed Request Object);
2. the wallet fetches the Request Object (``GET /requests/{id}`` on the verifier);
3. the wallet posts the encrypted response (``POST /response``, ``direct_post.jwt``); the
   verifier decrypts, verifies the presentations, signs a receipt per credential, appends
   them to its receipt log and answers with the receipts.

Between 2 and 3 the client plays the wallet without a vault: it checks the Request Object's
signature against its certificate, presents the credentials with a key-binding JWT for the
request's nonce, and encrypts the response to the request's key. That is client work, timed
in the flow's latency but not on the server.

cap = trivial req/s ÷ k is what the framework alone would allow; the goal is flows/s >= 50 %
of it, and p99 < 50 ms at 32 concurrent flows. Beside it, "frame req/s" is the smallest route
of a kluis service app (the body cap, the per-client rate limit counted in the store, the
problem handlers, a thread-pool route): what every kluis request pays before its own work.
``--profile FLOWS`` then times the server's own work per flow without HTTP, step by step, and
lists the busiest functions under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

from server.demo_world import MUNICIPALITY, TAX_OFFICE, WMO, DemoWorld, load_world
from server.issuer_agency import configuration
from server.launcher import Listener, WorkerPlan, bind_all, serve
from server.settings import Settings
from verifiers.credential_type import INCOME_STATEMENT, PERSONAL_DATA
from verifiers.holder import HeldSdJwt, parse_issued, present_sd_jwt
from verifiers.issuer import issue_sd_jwt
from verifiers.jws import Alg, SigningKey, generate_signing_key
from wallet.openid4vp import X509HashKeys, response_body
from wallet.request import parse_request

K = 3  # HTTP requests per flow (see the module docstring)


def trivial_app(settings: Settings) -> FastAPI:
    """The baseline: FastAPI with one async route and nothing else."""
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, bool]:
        return {"ok": True}

    return app


# --- the load client --------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read one response (Content-Length
    bodies only, which is all these apps send)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readuntil(b"\r\n")
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        data = await self.reader.readexactly(length) if length else b""
        return int(status_line.split(b" ", 2)[1]), data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


Operation = Callable[[Connection], Awaitable[None]]


@dataclass(frozen=True)
class Measured:
    done: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.done / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def _drive(host: str, port: int, operation: Operation, *, concurrency: int,
                 seconds: float, warmup: float) -> Measured:
    """Run ``operation`` in ``concurrency`` closed loops for ``warmup`` + ``seconds``; count
    and time only what completes after the warm-up."""
    start = time.perf_counter()
    measuring_from = start + warmup
    stop_at = measuring_from + seconds
    latencies: list[float] = []

    async def loop() -> None:
        connection = Connection(host, port)
        try:
            while True:
                began = time.perf_counter()
                if began >= stop_at:
                    return
                await operation(connection)
                if began >= measuring_from:
                    latencies.append(time.perf_counter() - began)
        finally:
            connection.close()

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return Measured(len(latencies), seconds, latencies)


def measure(url: str, operation: Operation, *, concurrency: int, seconds: float,
            warmup: float = 0.5) -> Measured:
    host, _, port = url.removeprefix("http://").partition(":")
    try:
        import uvloop

        runner: Callable[..., Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        runner = asyncio.run
    return runner(_drive(host, int(port), operation, concurrency=concurrency, seconds=seconds,
                         warmup=warmup))


async def trivial(connection: Connection) -> None:
    status, _ = await connection.request("GET", "/")
    if status != 200:
        raise RuntimeError(f"trivial endpoint answered {status}")


async def frame(connection: Connection) -> None:
    """The smallest route of a kluis service app: what the service frame adds to FastAPI
    (body cap, per-client rate limit in the store, problem handlers, a thread-pool route)."""
    status, _ = await connection.request("GET", "/problems/http.no_route")
    if status != 200:
        raise RuntimeError(f"problem-type route answered {status}")


# --- one flow ---------------------------------------------------------------------------------


PERSONAL = {"given_name": "Anna Maria", "family_name": "de Vries", "birthdate": "1984-07-12",
            "bsn": "999990019",
            "address": {"street_address": "Oudegracht", "house_number": "231",
                        "postal_code": "3511 NK", "locality": "Utrecht", "country": "NL"}}
INCOME = {"tax_year": 2026, "gross_income": 41250,
          "income_bracket": {"code": "2", "label": "€ 30.001 – € 45.000"}}
WMO_QUERY = {"credentials": [
    {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [PERSONAL_DATA]},
     "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}, {"path": ["address"]}]},
    {"id": "income", "format": "dc+sd-jwt", "meta": {"vct_values": [INCOME_STATEMENT]},
     "claims": [{"path": ["income_bracket"]}]},
]}
CREATE_BODY = json.dumps({"purpose": WMO, "dcql_query": WMO_QUERY}).encode()
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Holder:
    """The wallet's side without a vault: two credentials bound to one key (the server's
    work is what is measured; the consent engine and the vault are benchmarked elsewhere)."""

    key: SigningKey
    credentials: dict[str, tuple[HeldSdJwt, list[list[str]]]]


def make_holder(world: DemoWorld) -> Holder:
    key = generate_signing_key(Alg.ES256)
    now = int(time.time())

    def issue(agency: str, vct: str, claims: dict[str, Any]) -> HeldSdJwt:
        return parse_issued(issue_sd_jwt(
            claims, issuer_key=world.issuer(agency).signing_key, iss=agency, vct=vct, now=now,
            exp=now + 86400, holder_key=key.public,
            disclosable=[list(p) for p in configuration(vct).disclosable()]))

    return Holder(key, {
        "pid": (issue(MUNICIPALITY, PERSONAL_DATA, PERSONAL),
                [["given_name"], ["family_name"], ["address"]]),
        "income": (issue(TAX_OFFICE, INCOME_STATEMENT, INCOME), [["income_bracket"]]),
    })


def answer(holder: Holder, request_object: str, client_id: str) -> bytes:
    """The wallet's work between fetching the request and posting the answer: check the
    signed request, present both credentials for its nonce, encrypt the response."""
    now = datetime.now(UTC)
    request = parse_request(request_object, verifier_keys=X509HashKeys(now),
                            expected_client_id=client_id)
    seconds = int(now.timestamp())
    vp_token = {query: [present_sd_jwt(held, disclose=paths, holder_key=holder.key,
                                       nonce=request.nonce, aud=request.client_id, now=seconds)]
                for query, (held, paths) in holder.credentials.items()}
    return response_body({"vp_token": vp_token, "state": request.state}, request)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def flow_operation(holder: Holder, admin_url: str) -> Operation:
    """One complete flow over three connections' worth of requests (k = 3): create, fetch,
    answer. The admin app and the public app are different ports, so a flow holds two
    keep-alive connections; both count in the concurrency."""
    admin_host, _, admin_port = admin_url.removeprefix("http://").partition(":")
    admins: dict[int, Connection] = {}

    async def flow(public: Connection) -> None:
        admin = admins.setdefault(id(public), Connection(admin_host, int(admin_port)))
        status, body = await admin.request("POST", "/requests", CREATE_BODY)
        if status != 201:
            raise RuntimeError(f"create: HTTP {status} {body[:200]!r}")
        created = json.loads(body)
        status, body = await public.request("GET", _path(created["request_uri"]))
        if status != 200:
            raise RuntimeError(f"fetch: HTTP {status} {body[:200]!r}")
        form = answer(holder, body.decode(), created["client_id"])
        status, body = await public.request("POST", "/response", form, FORM)
        if status != 200 or len(json.loads(body)["receipts"]) != 2:
            raise RuntimeError(f"response: HTTP {status} {body[:300]!r}")

    return flow


# --- the server ---------------------------------------------------------------------------------


def _serve(plan: WorkerPlan, workers: int, ready: Any) -> None:
    serve(plan, workers=workers, ready=ready.set)


@dataclass
class Server:
    process: Any
    listeners: list[Listener]

    def url(self, name: str) -> str:
        return next(item.url for item in self.listeners if item.name == name)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(20)
        for listener in self.listeners:
            listener.sock.close()


def start_server(folder: Path, workers: int, db_url: str = "") -> Server:
    settings = Settings(data_dir=folder, db_url=db_url, rate_limit_per_client=10**9)
    names = ["gemeente-verifier", "gemeente-verifier-admin", "trivial"]
    listeners = bind_all("127.0.0.1", 0, names)
    load_world(folder / "demo-world")
    plan = WorkerPlan(settings, folder / "demo-world", tuple(listeners), {"trivial": trivial_app})
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=_serve, args=(plan, workers, ready))
    process.start()
    if not ready.wait(60):
        process.terminate()
        raise RuntimeError("the server did not start")
    return Server(process, listeners)


# --- the report ---------------------------------------------------------------------------------


def client_cost(holder: Holder, world: DemoWorld, server: Server, count: int = 50) -> float:
    """Seconds of client work per flow (checking the request, presenting, encrypting), timed
    on real request objects outside the load run."""
    import httpx

    objects = []
    with httpx.Client() as client:
        for _ in range(count):
            created = client.post(server.url("gemeente-verifier-admin") + "/requests",
                                  content=CREATE_BODY,
                                  headers={"Content-Type": "application/json"}).json()
            objects.append((client.get(created["request_uri"]).text, created["client_id"]))
    started = time.perf_counter()
    for text, client_id in objects:
        answer(holder, text, client_id)
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--db", default="", help="store URL (default: SQLite in a temp folder)")
    parser.add_argument("--profile", type=int, default=0, metavar="FLOWS",
                        help="also profile the server's work in FLOWS flows, without HTTP")
    args = parser.parse_args()
    rows = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="kluis-bench-http-") as temp:
            folder = Path(temp)
            server = start_server(folder, workers, args.db)
            try:
                world = load_world(folder / "demo-world")
                holder = make_holder(world)
                client = client_cost(holder, world, server) if workers == args.workers[0] \
                    else None
                base = measure(server.url("trivial"), trivial, concurrency=args.concurrency,
                               seconds=args.seconds)
                framed = measure(server.url("gemeente-verifier"), frame,
                                 concurrency=args.concurrency, seconds=args.seconds)
                flows = measure(server.url("gemeente-verifier"),
                                flow_operation(holder, server.url("gemeente-verifier-admin")),
                                concurrency=args.concurrency, seconds=args.seconds)
                single = measure(server.url("gemeente-verifier"),
                                 flow_operation(holder, server.url("gemeente-verifier-admin")),
                                 concurrency=1, seconds=min(args.seconds, 2.0))
            finally:
                server.stop()
        rows.append((workers, base, framed, flows, single, client))
    store = "PostgreSQL" if args.db.startswith("postgres") else "SQLite"
    print(f"k = {K} HTTP requests per flow; {args.concurrency} concurrent; store {store}; "
          f"{os.cpu_count()} CPUs shared by server and load client")
    print(f"{'workers':>7} {'trivial req/s':>13} {'frame req/s':>11} {'cap flows/s':>11} "
          f"{'flows/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'1-flow ms':>9}")
    for workers, base, framed, flows, single, _ in rows:
        cap = base.rate / K
        print(f"{workers:>7} {base.rate:>13.0f} {framed.rate:>11.0f} {cap:>11.0f} "
              f"{flows.rate:>8.1f} {flows.rate / cap:>6.1%} {flows.percentile(0.5):>7.1f} "
              f"{flows.percentile(0.99):>7.1f} {single.percentile(0.5):>9.2f}")
    client = rows[0][5]
    if client is not None:
        print(f"client work per flow (in the latencies, not on the server): "
              f"{client * 1000:.2f} ms")
    print("goal: flows/s >= 50 % of the cap; p99 < 50 ms at 32 concurrent flows")
    if args.profile:
        profile_flow(args.profile)


# --- where the time goes -----------------------------------------------------------------------


def profile_flow(count: int) -> None:
    """The server's own work in one flow, without HTTP: each step timed over ``count`` flows
    (after a warm-up), then the same steps under cProfile, busiest functions first."""
    import cProfile
    import pstats

    from server.demo_world import build_app
    from server.rate_limit import RateLimiter, RateRule
    from server.store import open_store

    with tempfile.TemporaryDirectory(prefix="kluis-bench-profile-") as temp:
        folder = Path(temp)
        world = load_world(folder / "world")
        store = open_store(f"sqlite:///{folder / 'server.db'}")
        try:
            urls = {"gemeente-verifier": "http://127.0.0.1:1",
                    "gemeente-verifier-admin": "http://127.0.0.1:2"}
            app = build_app("gemeente-verifier", Settings(data_dir=folder), world, store,
                            urls=urls)
            verifier, holder = app.state.verifier, make_holder(world)
            limiter, rule = RateLimiter(store), RateRule("client", 10**9, 60)
            steps = {"rate limit (x3)": 0.0, "create request": 0.0, "serve request object": 0.0,
                     "take response": 0.0}
            profiler = cProfile.Profile()

            def one(timed: bool, profiled: bool) -> None:
                now = datetime.now(UTC)
                marks = [time.perf_counter()]
                if profiled:
                    profiler.enable()
                for _ in range(K):
                    limiter.hit(rule, "127.0.0.1", now=now)
                marks.append(time.perf_counter())
                created = verifier.create_request(WMO, WMO_QUERY, now=now)
                marks.append(time.perf_counter())
                token = verifier.request_object(created.id, now=now)
                marks.append(time.perf_counter())
                if profiled:
                    profiler.disable()
                form = answer(holder, token, created.client_id)
                if profiled:
                    profiler.enable()
                started = time.perf_counter()
                verifier.receive_response(FORM, form, now=now)
                marks.append(started)
                marks.append(time.perf_counter())
                if profiled:
                    profiler.disable()
                if timed:
                    for name, (a, b) in zip(steps, [(0, 1), (1, 2), (2, 3), (4, 5)],
                                            strict=True):
                        steps[name] += marks[b] - marks[a]

            for _ in range(50):
                one(False, False)
            for _ in range(count):
                one(True, False)
            for _ in range(count):
                one(False, True)
        finally:
            store.close()
    print(f"\nthe server's own work per flow, without HTTP ({count} flows, SQLite):")
    for name, total in steps.items():
        print(f"  {name:22} {total / count * 1000:6.2f} ms")
    print(f"  {'total':22} {sum(steps.values()) / count * 1000:6.2f} ms")
    print("\nbusiest functions under cProfile (which slows Python-heavy code more):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
