"""The relay's HTTP face (specs/relay.md): thin routes over ``server.relay.Relay``.

Build it with ``create_relay_app(settings)``; run it with any ASGI server, e.g.
``uvicorn --factory server.relay_app:create_relay_app`` (settings then come from ``KLUIS_*``).

Agencies post without signing (anyone may leave a message at an address, like a letterbox);
every ``/mailbox`` route is signed by the wallet's key (RFC 9421, tag ``kluis-wallet``), and
the signature's ``keyid`` *is* the mailbox: there is no mailbox id in any URL, so a wallet
cannot even name another wallet's mailbox.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from server.authenticator import NONCE_SCHEMA, Authenticator
from server.grant import GRANT_SCHEMA, GrantPolicy, GrantRelay
from server.grant_router import grant_router
from server.problem import problem_responses
from server.rate_limit import RateLimiter, RateRule
from server.relay import (
    ADDRESS_PATTERN,
    RELAY_SCHEMA,
    Address,
    Envelope,
    Message,
    Relay,
    RelayPolicy,
)
from server.service import Clock, attach_store, create_service_app, http_request_of, utc_now
from server.settings import Settings
from server.store import Store
from server.watcher import Watcher
from verifiers.grant_fetch import AGENCY_TAG
from verifiers.http_signature import key_thumbprint, parse_ed25519_jwk

WALLET_TAG = "kluis-wallet"
MAX_BATCH = 100
MAX_SEQ = 2**62  # sequence numbers are 64-bit integers in both stores
_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"


# --- bodies (the boundary: pydantic here, frozen dataclasses inside) -----------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBody(_Strict):
    jwk: dict[str, Any] = Field(description="The wallet's Ed25519 public key (RFC 8037 OKP JWK).")


class EnvelopeBody(_Strict):
    content_type: str = Field(
        min_length=3, max_length=200, examples=["application/oauth-authz-req+jwt"]
    )
    body: str = Field(description="Opaque to the relay: a request URI, a request object, ...")


class AckBody(_Strict):
    ids: list[Annotated[str, Field(pattern=_ID_PATTERN)]] = Field(
        min_length=1, max_length=MAX_BATCH
    )


class MailboxOut(BaseModel):
    mailbox: str
    created: bool


class AddressOut(BaseModel):
    address: str
    created_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, address: Address) -> AddressOut:
        return cls(
            address=address.address, created_at=address.created_at, closed_at=address.closed_at
        )


class AddressesOut(BaseModel):
    addresses: list[AddressOut]


class PostedOut(BaseModel):
    id: str


class MessageOut(BaseModel):
    id: str
    seq: int
    address: str
    content_type: str
    body: str
    received_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            id=message.id, seq=message.seq, address=message.address,
            content_type=message.envelope.content_type, body=message.envelope.body,
            received_at=message.received_at,
        )


class BatchOut(BaseModel):
    messages: list[MessageOut]
    cursor: int = Field(description="Pass as `after` next time: the highest seq returned.")


class AckedOut(BaseModel):
    acked: int


AddressParam = Annotated[str, Path(pattern=ADDRESS_PATTERN)]
# A signed route refuses an unsigned, unknown-key or replayed request (403) and a signature
# that does not verify or is stale (422), as problem documents.
SIGNED = problem_responses(403, 422)


# --- the app ----------------------------------------------------------------------------------


def create_relay_app(
    settings: Settings | None = None, store: Store | None = None, *, clock: Clock = utc_now
) -> FastAPI:
    """The relay service. Opens ``settings.db_url`` unless given a ``store`` (left open)."""
    settings = settings or Settings()
    store, owned = attach_store(settings, [NONCE_SCHEMA, RELAY_SCHEMA, GRANT_SCHEMA], store)
    relay = Relay(store, RelayPolicy(settings.relay_max_message_bytes,
                                     settings.relay_max_pending_messages))
    grants = GrantRelay(store, GrantPolicy(max_sealed_bytes=settings.max_body_bytes))
    auth = Authenticator(store, tag=WALLET_TAG, window_seconds=settings.signature_window_seconds)
    agency_auth = Authenticator(store, tag=AGENCY_TAG,
                                window_seconds=settings.signature_window_seconds)
    app = create_service_app(
        settings,
        title="kluis relay",
        description="The citizen's always-on mailbox and the access grants it holds. "
                    "See specs/relay.md and specs/grant.md.",
        store=store,
        owns_store=owned,
        sweepers=[auth.sweep, grants.sweep],
        clock=clock,
    )
    app.state.relay = relay
    app.state.grants = grants
    app.include_router(_router(settings, relay, auth, RateLimiter(store), clock))
    app.include_router(grant_router(grants, auth, agency_auth, clock))
    return app


def _router(
    settings: Settings, relay: Relay, auth: Authenticator, limiter: RateLimiter, clock: Clock
) -> APIRouter:
    router = APIRouter()
    watcher = Watcher(relay, poll_interval=settings.relay_poll_interval_seconds)
    per_address = RateRule(
        "address", settings.relay_rate_limit_per_address, settings.rate_window_seconds
    )

    async def wallet(request: Request) -> str:
        """The mailbox of the key that signed this request (its keyid)."""
        signed = await run_in_threadpool(
            auth.authenticate, await http_request_of(request), public_key=relay.public_key,
            now=clock(),
        )
        return signed.keyid

    @router.post("/mailboxes", response_model=MailboxOut, status_code=201, tags=["wallet"],
                 responses=SIGNED)
    async def open_mailbox(body: RegisterBody, request: Request, response: Response) -> MailboxOut:
        """Register the wallet's key; the request must be signed by that very key."""
        key = parse_ed25519_jwk(body.jwk)
        await run_in_threadpool(
            auth.authenticate, await http_request_of(request),
            public_key=lambda keyid: key if keyid == key_thumbprint(key) else None, now=clock(),
        )
        mailbox, created = await run_in_threadpool(relay.open_mailbox, key, now=clock())
        if not created:
            response.status_code = 200
        return MailboxOut(mailbox=mailbox, created=created)

    @router.post("/mailbox/addresses", response_model=AddressOut, status_code=201, tags=["wallet"],
                 responses=SIGNED)
    async def open_address(mailbox: str = Depends(wallet)) -> AddressOut:
        return AddressOut.of(await run_in_threadpool(relay.open_address, mailbox, now=clock()))

    @router.get("/mailbox/addresses", response_model=AddressesOut, tags=["wallet"],
                responses=SIGNED)
    async def list_addresses(mailbox: str = Depends(wallet)) -> AddressesOut:
        found = await run_in_threadpool(relay.addresses, mailbox)
        return AddressesOut(addresses=[AddressOut.of(a) for a in found])

    @router.delete("/mailbox/addresses/{address}", status_code=204, tags=["wallet"],
                   responses={**SIGNED, **problem_responses(404)})
    async def close_address(address: AddressParam, mailbox: str = Depends(wallet)) -> Response:
        await run_in_threadpool(relay.close_address, mailbox, address, now=clock())
        return Response(status_code=204)

    @router.post("/a/{address}/messages", response_model=PostedOut, status_code=202,
                 tags=["agency"], responses=problem_responses(404))
    async def post_message(address: AddressParam, body: EnvelopeBody) -> PostedOut:
        """Leave a message for the citizen behind ``address``; no signature needed."""
        await run_in_threadpool(limiter.hit, per_address, address, now=clock())
        posted = await watcher.post(address, Envelope(body.content_type, body.body), now=clock())
        return PostedOut(id=posted.id)

    @router.get("/mailbox/messages", response_model=BatchOut, tags=["wallet"],
                responses=SIGNED)
    async def read_messages(
        after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
        wait: Annotated[float, Query(ge=0, description="Long-poll seconds (capped).")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_BATCH)] = 50,
        mailbox: str = Depends(wallet),
    ) -> BatchOut:
        """Unacknowledged messages after ``after``; waits up to ``wait`` s for the first."""
        wait = min(wait, settings.relay_long_poll_max_seconds)
        batch = await watcher.wait_for(mailbox, after=after, limit=limit, wait=wait)
        cursor = batch[-1].seq if batch else after
        return BatchOut(messages=[MessageOut.of(m) for m in batch], cursor=cursor)

    @router.get("/mailbox/events", tags=["wallet"],
                response_class=StreamingResponse,
                responses={200: {"content": {"text/event-stream": {}}}, **SIGNED})
    async def stream_messages(
        mailbox: str = Depends(wallet), after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0
    ) -> StreamingResponse:
        """Server-sent events: one ``message`` event per message (``id`` = seq), in order."""
        return StreamingResponse(
            _events(watcher, mailbox, after, settings.relay_sse_max_seconds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.post("/mailbox/acks", response_model=AckedOut, tags=["wallet"], responses=SIGNED)
    async def ack_messages(body: AckBody, mailbox: str = Depends(wallet)) -> AckedOut:
        """Delete the listed messages of this mailbox; others' ids are ignored."""
        return AckedOut(acked=await run_in_threadpool(relay.ack, mailbox, body.ids))

    return router


async def _events(
    watcher: Watcher, mailbox: str, after: int, seconds: float
) -> AsyncIterator[str]:
    """The SSE stream (WHATWG HTML §9.2). It ends after ``seconds`` so the wallet signs a
    fresh request now and then; a comment line keeps idle proxies from closing it."""
    cursor = after
    yield "retry: 1000\n\n"
    async for batch in watcher.follow(mailbox, after=after, seconds=seconds):
        if not batch:
            yield ": still here\n\n"
        for message in batch:
            data = MessageOut.of(message).model_dump_json()
            yield f"id: {message.seq}\nevent: message\ndata: {data}\n\n"
            cursor = message.seq
    yield f"event: end\ndata: {json.dumps({'cursor': cursor})}\n\n"
