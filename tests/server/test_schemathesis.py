"""A bounded schemathesis run against the running apps: each app of the demo world serves on
loopback with a real store (SQLite, as ``kluis serve`` runs it), and for every operation of its
OpenAPI document schemathesis sends a fixed number of generated requests, valid ones and
invalid ones (derandomised, so a failure reproduces), and checks the answers: no 5xx, every status documented, content types
as documented, bodies valid against their schemas.

The relay's wallet routes are signed by a registered mailbox key (RFC 9421, as the wallet
signs them), so schemathesis reaches past authentication there. Each app has a time budget;
examples beyond it are skipped, so the run stays well within CI's time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from cli import service
from verifiers.http_signature import HttpRequest, format_ed25519_jwk, sign_request

pytestmark = pytest.mark.slow

EXAMPLES = 12
APP_BUDGET_SECONDS = 20.0
APPS = ["relay", "gemeente-issuer", "gemeente-issuer-admin", "gemeente-verifier",
        "gemeente-verifier-admin"]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


class WalletSignature(requests.auth.AuthBase):
    """Signs every request with the wallet's mailbox key (tag ``kluis-wallet``)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        headers = tuple((k, v) for k, v in prepared.headers.items()
                        if k.lower() in ("content-type", "accept"))
        signed = sign_request(HttpRequest(str(prepared.method), str(prepared.url), headers,
                                          body), self.key, tag="kluis-wallet",
                              now=datetime.now(UTC))
        for name, value in signed.headers:
            prepared.headers[name] = value
        return prepared


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[service.RunningServices]:
    folder = tmp_path_factory.mktemp("schemathesis")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KLUIS_")},
           "KLUIS_RATE_LIMIT_PER_CLIENT": "1000000",
           "KLUIS_RELAY_RATE_LIMIT_PER_ADDRESS": "1000000",
           # Generated long-poll and event-stream waits are cut short: each answer counts.
           "KLUIS_RELAY_LONG_POLL_MAX_SECONDS": "0.2", "KLUIS_RELAY_SSE_MAX_SECONDS": "0.5"}
    with service.running(service.command(port=0, data_dir=folder), env=env) as running:
        yield running


def _session(app: str, url: str) -> requests.Session:
    session = requests.Session()
    if app == "relay":
        key = Ed25519PrivateKey.generate()
        session.auth = WalletSignature(key)
        answer = session.post(f"{url}/mailboxes", json={"jwk": format_ed25519_jwk(
            key.public_key())})
        assert answer.status_code == 201, answer.text
    return session


def _run(operation: Any, url: str, session: requests.Session, deadline: float,
         mode: GenerationMode = GenerationMode.POSITIVE) -> list[str]:
    failures: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(mode))
    def examples(case: Any) -> None:
        if time.monotonic() > deadline:
            return
        try:
            case.call_and_validate(base_url=url, session=session, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - report at the end
            failures.append(f"{operation.label}: {failure}"[:2000])

    try:
        examples()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # An operation without parameters or body has nothing that can be made invalid.
    return failures


@pytest.mark.parametrize("app", APPS)
def test_the_app_keeps_the_promises_of_its_openapi_document(
    services: service.RunningServices, app: str
) -> None:
    url = services.url(app)
    document = httpx.get(f"{url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    session = _session(app, url)
    deadline = time.monotonic() + APP_BUDGET_SECONDS
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _run(result.ok(), url, session, deadline, mode)
        operations += 1
    assert operations >= 3
    assert failures == [], "\n\n".join(failures[:5])


def test_the_documents_served_are_the_committed_ones_for_the_public_apps(
    services: service.RunningServices,
) -> None:
    """What a client downloads is what specs/openapi/ says (the back offices add demo-only
    routes, so only the public apps are compared)."""
    committed = Path(__file__).resolve().parents[2] / "specs" / "openapi"
    for app, name in (("relay", "relay"), ("gemeente-issuer", "issuer"),
                      ("gemeente-verifier", "verifier")):
        served = httpx.get(f"{services.url(app)}/openapi.json").json()
        assert served == json.loads((committed / f"{name}.json").read_text()), app
