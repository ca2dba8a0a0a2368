"""Store-backend fixtures: every server test that takes ``store_url`` runs on SQLite and on
PostgreSQL.

PostgreSQL comes from ``KLUIS_TEST_POSTGRES`` (``.ci/run`` starts one); each test gets a fresh
schema, dropped afterwards. Without that variable the PostgreSQL half is skipped with a reason,
unless ``KLUIS_REQUIRE_POSTGRES=1`` (CI), where a missing server fails the run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.db'}"
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


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, unmigrated store on each backend."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
