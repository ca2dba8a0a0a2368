"""A hard cap on request bodies, answered with a 413 problem document before the app runs.

The cap sits outside every other layer and reads the whole body first: a declared
``Content-Length`` over the cap is refused without reading a byte, and a chunked body is
refused as soon as it passes the cap. The app then gets the body replayed from memory, so no
route ever sees a partial body and no 413 depends on where the body happened to be read.
Bodies are small here (requests, envelopes), so buffering them costs nothing worth saving.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.problem import BodyTooLarge, negotiate_lang, problem_response


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with ``http.body_too_large``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, headers)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, headers)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        lang = negotiate_lang(headers.get("accept-language"))
        base = _base_url(scope, headers)
        error = BodyTooLarge(f"RFC 9110 §15.5.14: at most {self.max_bytes} bytes")
        response = problem_response(error, lang=lang, type_base=f"{base}/problems/")
        # The client may still be sending; tell it this connection is done.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # After the body, pass through: the app may wait for the disconnect.
        return await receive()

    return replayed


def _base_url(scope: Scope, headers: Headers) -> str:
    scheme: Any = scope.get("scheme", "http")
    host = headers.get("host") or "localhost"
    return f"{scheme}://{host}{scope.get('root_path', '')}"
