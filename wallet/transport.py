"""How the wallet's protocol clients speak HTTP: one tiny injected ``Transport``.

Clients (the relay mailbox, later OpenID4VCI and OpenID4VP) build requests and read
responses; they never import an HTTP library. Tests inject a fake or a real loopback server;
the default is ``HttpxTransport``. This module is the one core module allowed to import an
HTTP client (``tests/test_layers.py`` knows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

import httpx

from vault import Unavailable


class TransportFailed(Unavailable):
    code = "transport.unreachable"
    en = "The service could not be reached. Check the address and your connection and try again."
    nl = "De dienst is niet bereikbaar. Controleer het adres en uw verbinding en probeer opnieuw."


@dataclass(frozen=True)
class Response:
    """An HTTP response: status, headers (lower-case names, repeated lines joined), body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class Transport(Protocol):
    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes = b"",
        timeout: float | None = None,
    ) -> Response:
        """Send one request and return the response, whatever its status.

        Raises ``TransportFailed`` when no response arrives (refused, reset, timed out).
        """
        ...


class HttpxTransport:
    """The default transport: one pooled ``httpx.Client``; close it (or use ``with``)."""

    def __init__(self, *, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self._timeout = timeout
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes = b"",
        timeout: float | None = None,
    ) -> Response:
        try:
            answer = self._client.request(
                method, url, headers=dict(headers), content=body or None,
                timeout=self._timeout if timeout is None else timeout,
            )
        except httpx.HTTPError as error:
            # The class name says what went wrong; the message may echo the URL.
            raise TransportFailed(type(error).__name__) from None
        joined: dict[str, str] = {}
        for name, value in answer.headers.multi_items():
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        return Response(answer.status_code, joined, answer.content)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpxTransport:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
