"""The wallet's mailbox client against a scripted transport: what it sends (signed, verifiable
requests, no secrets), and how it reads every kind of answer, hostile ones included."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import KluisError
from verifiers.http_signature import HttpRequest, key_thumbprint, verify_request
from wallet.mailbox import BadRelayAnswer, MailboxClient, RelayRefused, RelayUnavailable
from wallet.transport import HttpxTransport, Response, TransportFailed

NOW = datetime(2026, 6, 1, 8, 0, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
MAILBOX = key_thumbprint(KEY.public_key())
MESSAGE = {"id": "m" * 22, "seq": 4, "address": "a" * 22, "content_type": "text/uri-list",
           "body": "openid4vp://?request_uri=x", "received_at": "2026-06-01T07:59:00Z"}


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float | None


@dataclass
class Script:
    """A transport that records requests and plays back prepared answers."""

    answers: list[Response]
    sent: list[Sent] = field(default_factory=list)

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes = b"",
        timeout: float | None = None,
    ) -> Response:
        self.sent.append(Sent(method, url, dict(headers), body, timeout))
        return self.answers.pop(0)


def _json(status: int, data: Any, **headers: str) -> Response:
    return Response(status, {"content-type": "application/json", **headers},
                    json.dumps(data).encode())


def _client(*answers: Response) -> tuple[MailboxClient, Script]:
    script = Script(list(answers))
    return MailboxClient("https://relay.example/", KEY, script, clock=lambda: NOW), script


def _verified(sent: Sent) -> str:
    request = HttpRequest(sent.method, sent.url, tuple(sent.headers.items()), sent.body)
    lookup = {MAILBOX: KEY.public_key()}.get
    return verify_request(request, public_key=lookup, tag="kluis-wallet", now=NOW).keyid


def test_register_sends_the_public_key_signed_by_itself() -> None:
    client, script = _client(_json(201, {"mailbox": MAILBOX, "created": True}))
    assert client.register() is True
    (sent,) = script.sent
    assert (sent.method, sent.url) == ("POST", "https://relay.example/mailboxes")
    assert _verified(sent) == MAILBOX
    body = json.loads(sent.body)
    assert set(body["jwk"]) == {"kty", "crv", "x"}  # public parts only
    assert KEY.private_bytes_raw().hex() not in sent.body.hex()


def test_every_request_is_signed_with_a_fresh_nonce() -> None:
    client, script = _client(
        _json(200, {"messages": [], "cursor": 0}), _json(200, {"messages": [], "cursor": 0})
    )
    client.fetch()
    client.fetch()
    nonces = {s.headers["Signature-Input"].split('nonce="')[1].split('"')[0] for s in script.sent}
    assert len(nonces) == 2
    assert all(_verified(s) == MAILBOX for s in script.sent)
    assert all("Authorization" not in s.headers for s in script.sent)


def test_fetch_reads_messages_and_waits_longer_than_the_poll() -> None:
    client, script = _client(_json(200, {"messages": [MESSAGE], "cursor": 4}))
    inbox = client.fetch(after=3, wait=25, limit=10)
    assert inbox.cursor == 4 and inbox.messages[0].seq == 4
    assert inbox.messages[0].received_at == datetime(2026, 6, 1, 7, 59, tzinfo=UTC)
    (sent,) = script.sent
    assert sent.url == "https://relay.example/mailbox/messages?after=3&wait=25&limit=10"
    assert sent.timeout is not None and sent.timeout > 25


def test_address_urls_point_at_the_agency_route() -> None:
    client, _ = _client(_json(201, {"address": "b" * 22, "created_at": "2026-06-01T08:00:00+00:00",
                                    "closed_at": None}))
    address = client.open_address()
    assert address.url == f"https://relay.example/a/{'b' * 22}/messages"


def test_ack_of_nothing_sends_nothing() -> None:
    client, script = _client()
    assert client.ack([]) == 0 and script.sent == []


def test_problem_answers_become_refusals_with_their_code() -> None:
    problem = {"type": "x", "title": "t", "status": 404, "code": "relay.unknown_address"}
    client, _ = _client(Response(404, {"content-type": "application/problem+json"},
                                 json.dumps(problem).encode()))
    with pytest.raises(RelayRefused) as refused:
        client.close_address("c" * 22)
    assert refused.value.fields["problem"] == "relay.unknown_address"


def test_rate_limit_says_when_to_come_back() -> None:
    client, _ = _client(_json(429, {"code": "http.rate_limited"}, **{"retry-after": "7"}))
    with pytest.raises(RelayUnavailable) as busy:
        client.fetch()
    assert busy.value.fields == {"problem": "http.rate_limited", "retry_after": 7}


@pytest.mark.parametrize(
    "answer",
    [
        Response(200, {}, b"<html>"),
        Response(200, {}, b"\xff\xfe"),
        _json(200, {"messages": "nope", "cursor": 0}),
        _json(200, {"messages": [{**MESSAGE, "seq": True}], "cursor": 4}),
        _json(200, {"messages": [{**MESSAGE, "seq": "4"}], "cursor": 4}),
        _json(200, {"messages": [{**MESSAGE, "received_at": "yesterday"}], "cursor": 4}),
        _json(200, {"messages": [MESSAGE]}),
        _json(200, [MESSAGE]),
        Response(302, {"location": "https://elsewhere.example/"}, b""),
    ],
)
def test_unreadable_answers_are_bad_answers(answer: Response) -> None:
    client, _ = _client(answer)
    with pytest.raises(BadRelayAnswer):
        client.fetch()


def test_a_relay_naming_another_mailbox_is_caught() -> None:
    client, _ = _client(_json(201, {"mailbox": "x" * 43, "created": True}))
    with pytest.raises(BadRelayAnswer):
        client.register()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(JSON, st.fixed_dictionaries({"messages": st.lists(
    st.fixed_dictionaries({k: JSON | st.just(v) for k, v in MESSAGE.items()}), max_size=2),
    "cursor": JSON})), status=st.sampled_from([200, 400, 404, 429, 500]))
def test_any_answer_yields_an_inbox_or_a_kluis_error(data: Any, status: int) -> None:
    client, _ = _client(_json(status, data))
    try:
        client.fetch()
    except KluisError:
        pass


def test_http_transport_reports_an_unreachable_service() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        with HttpxTransport(timeout=2) as transport, pytest.raises(TransportFailed) as failed:
            transport.request("GET", f"http://127.0.0.1:{port}/", headers={})
    assert failed.value.detail == "ConnectError"
