"""Store-backend fixtures: every server test that takes ``store_url`` runs on SQLite and on
PostgreSQL.

PostgreSQL comes from ``KLUIS_TEST_POSTGRES`` (``.ci/run`` starts one); each test gets a fresh
schema, dropped afterwards. Without that variable the PostgreSQL half is skipped with a reason,
unless ``KLUIS_REQUIRE_POSTGRES=1`` (CI), where a missing server fails the run.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from server.store import Store, open_store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def postgres_base_url() -> str:
    """The PostgreSQL URL to test against, or skip/fail as the environment demands."""
    url = os.environ.get("KLUIS_TEST_POSTGRES", "")
    if not url:
        reason = "KLUIS_TEST_POSTGRES is not set, so the PostgreSQL half of this test cannot run"
        if os.environ.get("KLUIS_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (KLUIS_REQUIRE_POSTGRES=1)")
        pytest.skip(reason + "; .ci/run starts a server and sets it")
    return url


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` (libpq ``options``), so tests never share tables."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def backend_url(kind: str, folder: Path) -> Iterator[str]:
    """A URL of an empty store: a SQLite file in ``folder``, or a fresh PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'server.db'}"
        return
    import psycopg

    base = postgres_base_url()
    schema = f"kluis_test_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store on each backend, for one test."""
    with backend_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A URL of a store on each backend shared by one test module (tests must not assume
    it is empty: compare counts before and after)."""
    with backend_url(request.param, tmp_path_factory.mktemp("store")) as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, unmigrated store on each backend."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def serve() -> Any:
    """``serve(app)``: a context manager running ``app`` on loopback, yielding its base URL."""
    return serving
