"""Every error answer of a kluis service is an RFC 9457 problem document with our code, over
real HTTP, built by the shared service factory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from server.problem import PROBLEM_JSON, negotiate_lang, status_of
from server.service import attach_store, create_service_app
from server.settings import Settings
from server.store import Store
from vault import Conflict, InvalidInput, NotFound, NotPermitted, Unavailable, VerificationFailed

JSON = {"Content-Type": "application/json"}


class _Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=10)
    count: int


class _Gone(NotFound):
    code = ""  # a test-only error, not in the catalogue
    en = "No thing called '{name}'."
    nl = "Geen ding met de naam '{name}'."


def _app(settings: Settings, store: Store) -> FastAPI:
    app = create_service_app(
        settings, title="test", description="a test service", store=store, owns_store=False
    )
    router = APIRouter()

    @router.post("/things", status_code=201)
    def make(thing: _Thing) -> dict[str, Any]:
        return {"name": thing.name}

    @router.get("/fail/{family}")
    def fail(family: str) -> None:
        errors = {
            "invalid": InvalidInput, "notfound": NotFound, "conflict": Conflict,
            "notpermitted": NotPermitted, "verification": VerificationFailed,
            "unavailable": Unavailable,
        }
        raise errors[family]("rule 1")

    @router.get("/gone")
    def gone() -> None:
        raise _Gone(name="x")

    @router.get("/bug")
    def bug() -> None:
        raise RuntimeError("secret internals")

    app.include_router(router)
    return app


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("problem")
    settings = Settings(data_dir=folder, max_body_bytes=2048, rate_limit_per_client=1000)
    store, _ = attach_store(settings, [])
    try:
        with serve(_app(settings, store)) as url:
            yield url
    finally:
        store.close()


def _problem(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"]
    if code is not None:
        assert body["code"] == code
        assert body["type"].endswith(f"/problems/{code}")
    return body


@pytest.mark.parametrize(
    ("family", "status"),
    [("invalid", 400), ("notfound", 404), ("conflict", 409), ("notpermitted", 403),
     ("verification", 422), ("unavailable", 503)],
)
def test_each_family_has_its_status(base: str, family: str, status: int) -> None:
    body = _problem(httpx.get(f"{base}/fail/{family}"), status, None)
    assert body["detail"] == "rule 1"


def test_fields_fill_the_title_in_the_asked_language(base: str) -> None:
    english = httpx.get(f"{base}/gone", headers={"Accept-Language": "en-GB,nl;q=0.5"}).json()
    dutch = httpx.get(f"{base}/gone", headers={"Accept-Language": "nl"}).json()
    assert english["title"] == "No thing called 'x'."
    assert dutch["title"] == "Geen ding met de naam 'x'."


def test_malformed_json_is_400(base: str) -> None:
    response = httpx.post(f"{base}/things", content=b'{"name": ', headers=JSON)
    _problem(response, 400, "http.malformed_json")


def test_json_nested_too_deeply_is_400(base: str) -> None:
    response = httpx.post(f"{base}/things", content=b"[" * 2000, headers=JSON)
    _problem(response, 400, "http.malformed_json")


def test_wrong_fields_are_400_without_echoing_input(base: str) -> None:
    hostile = "<script>" * 5
    response = httpx.post(f"{base}/things", json={"name": hostile, "count": "many", "x": 1})
    body = _problem(response, 400, "http.invalid_request")
    assert {tuple(e["loc"]) for e in body["errors"]} == {
        ("body", "name"), ("body", "count"), ("body", "x")
    }
    assert "<script>" not in response.text


@pytest.mark.parametrize("payload", [b"[]", b"null", b"12", b'"text"'])
def test_json_of_the_wrong_shape_is_400(base: str, payload: bytes) -> None:
    response = httpx.post(f"{base}/things", content=payload, headers=JSON)
    _problem(response, 400, "http.invalid_request")


def test_declared_oversized_body_is_413(base: str) -> None:
    response = httpx.post(f"{base}/things", json={"name": "x" * 4000, "count": 1})
    body = _problem(response, 413, "http.body_too_large")
    assert "2048" in body["detail"]


def test_chunked_oversized_body_is_413(base: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'", "count": 1}'

    response = httpx.post(f"{base}/things", content=chunks(), headers=JSON)
    _problem(response, 413, "http.body_too_large")


def test_body_at_the_limit_passes_the_cap(base: str) -> None:
    padding = 2048 - len(b'{"name":"","count":1}')
    response = httpx.post(
        f"{base}/things", content=b'{"name":"' + b"x" * padding + b'","count":1}',
        headers=JSON,
    )
    _problem(response, 400, "http.invalid_request")  # reached validation: name too long


def test_unknown_route_is_404_problem(base: str) -> None:
    _problem(httpx.get(f"{base}/nothing/here"), 404, "http.no_route")


def test_wrong_method_is_405_problem(base: str) -> None:
    response = httpx.delete(f"{base}/things")
    _problem(response, 405, "http.method_not_allowed")
    assert "POST" in response.headers["allow"]


def test_a_bug_is_500_and_says_nothing(base: str) -> None:
    response = httpx.get(f"{base}/bug")
    body = _problem(response, 500, None)
    assert "secret" not in response.text and "code" not in body and "detail" not in body


def test_problem_types_describe_themselves(base: str) -> None:
    described = httpx.get(f"{base}/problems/http.body_too_large").json()
    assert described == {
        "code": "http.body_too_large", "family": "InvalidInput", "status": 413,
        "title": {"en": "The request is too large. Send less data at a time.",
                  "nl": "Het verzoek is te groot. Stuur minder gegevens tegelijk."},
    }
    _problem(httpx.get(f"{base}/problems/no.such_code"), 404, "http.no_route")


def test_client_flood_is_429_with_retry_after(tmp_path: Path, serve: Any) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit_per_client=3, rate_window_seconds=60)
    store, _ = attach_store(settings, [])
    try:
        with serve(_app(settings, store)) as url, httpx.Client() as client:
            answers = [client.get(f"{url}/gone") for _ in range(5)]
        assert [a.status_code for a in answers] == [404, 404, 404, 429, 429]
        body = _problem(answers[3], 429, "http.rate_limited")
        assert 1 <= int(answers[3].headers["retry-after"]) <= 60
        assert answers[3].headers["retry-after"] in body["title"]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("header", "lang"),
    [(None, "nl"), ("", "nl"), ("en", "en"), ("en-US,en;q=0.9", "en"), ("nl-NL,en;q=0.8", "nl"),
     ("fr,en;q=0.5", "en"), ("en;q=0.2,nl;q=0.9", "nl"), ("de", "nl"), ("en;q=x", "en"),
     (";;;,,,", "nl")],
)
def test_language_negotiation(header: str | None, lang: str) -> None:
    assert negotiate_lang(header) == lang


def test_own_status_wins_over_family() -> None:
    from server.problem import BodyTooLarge
    from server.rate_limit import RateLimited

    assert status_of(BodyTooLarge()) == 413 and status_of(RateLimited(retry_after=3)) == 429
    assert status_of(InvalidInput()) == 400


def test_settings_come_from_kluis_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KLUIS_PORT", "9999")
    monkeypatch.setenv("KLUIS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KLUIS_RELAY_MAX_MESSAGE_BYTES", "4096")
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert (settings.port, settings.relay_max_message_bytes) == (9999, 4096)
    assert settings.db_url == f"sqlite:///{tmp_path / 'kluis-server.db'}"
    assert Settings(db_url="postgresql://x/y").db_url == "postgresql://x/y"
    with pytest.raises(Exception):  # noqa: B017 - frozen: pydantic's ValidationError
        settings.port = 1  # type: ignore[misc]


def test_settings_refuse_nonsense() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(port=70000)
    with pytest.raises(ValidationError):
        Settings(max_body_bytes=10)


def test_local_rate_limiter_counts_per_window_and_forgets_ended_ones() -> None:
    from server.rate_limit import LocalRateLimiter, RateLimited, RateRule

    limiter, rule = LocalRateLimiter(), RateRule("t", 2, 60)
    t0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert [limiter.hit(rule, "k", now=t0) for _ in range(2)] == [1, 2]
    with pytest.raises(RateLimited) as over:
        limiter.hit(rule, "k", now=t0)
    assert over.value.fields["retry_after"] == 30
    assert limiter.hit(rule, "other", now=t0) == 1  # per key
    next_window = datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)
    assert limiter.sweep(now=t0) == 0
    assert limiter.sweep(now=next_window) == 2
    assert limiter.hit(rule, "k", now=next_window) == 1


def test_rate_counter_sweep(tmp_path: Path) -> None:
    from server.rate_limit import RateLimiter, RateRule

    settings = Settings(data_dir=tmp_path)
    store, _ = attach_store(settings, [])
    try:
        limiter = RateLimiter(store)
        rule = RateRule("t", 5, 60)
        t0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
        assert [limiter.hit(rule, "k", now=t0) for _ in range(3)] == [1, 2, 3]
        assert limiter.sweep(now=t0) == 0
        assert limiter.sweep(now=datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)) == 1
        assert limiter.hit(rule, "k", now=datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)) == 1
    finally:
        store.close()
