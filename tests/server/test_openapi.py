"""The OpenAPI documents in specs/openapi/ are the apps' own (regenerated here and compared,
so a route changed without ``python -m server.openapi`` fails), and they say how each route
fails: problem documents, never FastAPI's 422 validation answer that kluis does not give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.openapi import BUILDERS, SPEC_FOLDER, documents, main, stale

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def generated() -> dict[str, dict]:
    return {name: json.loads(text) for name, text in documents().items()}


def test_the_committed_documents_are_up_to_date() -> None:
    assert stale() == [], "run: .venv/bin/python -m server.openapi"


def test_a_changed_or_missing_or_extra_document_is_stale(tmp_path: Path) -> None:
    for path in SPEC_FOLDER.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    assert stale(tmp_path) == []
    relay = tmp_path / "relay.json"
    relay.write_text(relay.read_text().replace('"kluis relay"', '"kluis relay!"'))
    (tmp_path / "issuer.json").unlink()
    (tmp_path / "forgotten.json").write_text("{}")
    assert stale(tmp_path) == ["forgotten", "issuer", "relay"]


def test_check_exits_non_zero_when_stale(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setattr("server.openapi.SPEC_FOLDER", tmp_path)
    assert main(["--check"]) == 1
    assert main([]) == 0
    assert main(["--check"]) == 0


def test_every_app_has_a_document() -> None:
    assert set(BUILDERS) == {"relay", "issuer", "issuer-admin", "verifier", "verifier-admin"}


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_operation_says_how_it_fails(generated: dict[str, dict], name: str) -> None:
    document = generated[name]
    assert "Problem" in document["components"]["schemas"]
    assert "HTTPValidationError" not in json.dumps(document)
    for label, operation in _operations(document):
        responses = operation["responses"]
        assert {"429", "500", "503"} <= set(responses), label
        if operation.get("parameters") or operation.get("requestBody"):
            assert "400" in responses, label
        for status, response in responses.items():
            if status.startswith(("4", "5")) and label != "POST /token":
                assert list(response.get("content", {})) == ["application/problem+json"], \
                    (label, status)
        success = [s for s in responses if s.startswith("2")]
        assert success, label
