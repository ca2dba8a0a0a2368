"""The frame every kluis service app is built in: settings, store, problem documents, the
body cap, the per-client rate limit and the housekeeping loop.

A service factory (``create_relay_app``, later the agency apps) calls ``attach_store`` and
``create_service_app``, then adds its own router. Nothing happens at import time: each call of
a factory opens (or is given) its own store, so tests and ``uvicorn --factory`` can build as
many apps as they like.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from server.body_limit import BodyLimit
from server.problem import install_problem_handlers
from server.rate_limit import RATE_LIMIT_SCHEMA, LocalRateLimiter, RateRule
from server.settings import Settings
from server.store import Schema, Store, open_store
from vault import KluisError
from verifiers.http_signature import HttpRequest

Clock = Callable[[], datetime]
Sweeper = Callable[..., Any]  # called as sweeper(now=...)

log = logging.getLogger("kluis.server")

SWEEP_INTERVAL_SECONDS = 60.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def attach_store(
    settings: Settings, schemas: Sequence[Schema], store: Store | None = None
) -> tuple[Store, bool]:
    """The store to use and whether the app owns it (and so closes it at shutdown).

    A given store is migrated to ``schemas`` and left open; otherwise ``settings.db_url`` is
    opened. Every service also gets the rate-limit tables.
    """
    wanted = [RATE_LIMIT_SCHEMA, *schemas]
    if store is not None:
        store.migrate(wanted)
        return store, False
    return open_store(settings.db_url, schemas=wanted, pool_size=settings.db_pool_size), True


def client_address(request: Request) -> str:
    """The client's IP address as the ASGI server reports it (behind a proxy: configure
    uvicorn's ``--forwarded-allow-ips`` so this is the real client, not the proxy)."""
    return request.client.host if request.client else "unknown"


async def http_request_of(request: Request) -> HttpRequest:
    """The request as it was sent, for signature checks: method, the URL from ``Host`` and
    the raw (still percent-encoded) path and query, every header line, and the body."""
    headers = tuple(
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
    )
    host = request.headers.get("host") or request.url.netloc
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    query = request.scope.get("query_string", b"")
    url = f"{request.url.scheme}://{host}{raw_path.decode('latin-1')}"
    if query:
        url += "?" + query.decode("latin-1")
    return HttpRequest(request.method, url, headers, await request.body())


def create_service_app(
    settings: Settings,
    *,
    title: str,
    description: str,
    store: Store,
    owns_store: bool,
    sweepers: Sequence[Sweeper] = (),
    clock: Clock = utc_now,
) -> FastAPI:
    """A FastAPI app with problem documents, the body cap and a per-client rate limit on
    every route (per node, see ``server.rate_limit``); ``sweepers`` run once a minute
    (expired nonces, ended rate windows)."""
    limiter = LocalRateLimiter()
    per_client = RateRule("client", settings.rate_limit_per_client, settings.rate_window_seconds)

    async def limit_client(request: Request) -> None:
        # async and in memory: no thread hop and no store write on every request
        limiter.hit(per_client, client_address(request), now=clock())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        housekeeping = asyncio.create_task(_sweep_forever([limiter.sweep, *sweepers], clock))
        try:
            yield
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            if owns_store:
                store.close()

    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(limit_client)],
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.store = store
    app.state.rate_limiter = limiter
    return app


async def _sweep_forever(sweepers: Sequence[Sweeper], clock: Clock) -> None:
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
        for sweeper in sweepers:
            try:
                await run_in_threadpool(sweeper, now=clock())
            except KluisError as error:  # a busy or unreachable database: try next round
                log.warning("housekeeping skipped: %s", error.code)
            except Exception:  # a bug must not stop housekeeping for good; it is logged
                log.exception("housekeeping failed")
