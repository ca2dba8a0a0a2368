"""The verifying agency's HTTP faces (specs/openid4vp.md): thin routes over
``server.verifier.Verifier``.

``create_verifier_app(settings, agency, store=None, *, trust, ...)`` is the public service a
wallet talks to: the Request Object by reference (``GET /requests/{id}``, once) and the
response endpoint (``POST /response``). ``create_verifier_admin_app`` is the agency's back
office over the same store: create a request, follow it, list what was received, read the
receipt log's head. As with the issuer, the back office is a separate app so the public one
has no route that makes requests or reads received data at all; never expose the admin app.

Errors are RFC 9457 problem documents with our codes; at the response endpoint they also
carry the OpenID ``error`` (``invalid_request``), as OpenID4VP 1.0 §8.2 answers a response it
cannot process.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from server.issuer_agency import check_public_url
from server.problem import (
    PROBLEM_JSON,
    negotiate_lang,
    problem_document,
    problem_responses,
    status_of,
)
from server.service import Clock, attach_store, create_service_app, utc_now
from server.settings import Settings
from server.store import Store
from server.verifier import SCHEMAS, ReceivedCredential, TrustSource, Verifier
from server.verifier_agency import VerifierAgency
from server.verifier_request import CreatedRequest, RequestStatus, VerifierPolicy
from vault import KluisError
from verifiers.statuslist import Fetch
from verifiers.trustlist import TrustList
from wallet.grant_request import format_grant_element
from wallet.request import ResponseMode
from wallet.request_object import TYP

REQUEST_OBJECT = f"application/{TYP}"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_STATUS_LIST_BYTES = 1024 * 1024
_ID = r"^[A-Za-z0-9_-]{16,64}$"


def policy_of(settings: Settings) -> VerifierPolicy:
    """The verifier's lifetimes from ``KLUIS_VERIFIER_*`` settings."""
    return VerifierPolicy(request_seconds=settings.verifier_request_seconds,
                          kb_max_age=settings.verifier_kb_max_age_seconds)


def http_fetch(timeout: float) -> Fetch:
    """A Status List Token fetch over HTTP: GET, no redirects, 200 only, at most 1 MiB.
    Any failure raises, and the status checker turns it into ``status.fetch_failed``."""

    def fetch(uri: str) -> bytes:
        headers = {"Accept": "application/statuslist+jwt"}
        with httpx.stream("GET", uri, headers=headers, timeout=timeout,
                          follow_redirects=False) as answer:
            if answer.status_code != 200:
                raise ConnectionError(f"HTTP {answer.status_code}")
            body = b""
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > MAX_STATUS_LIST_BYTES:
                    raise ConnectionError("status list too large")
            return body

    return fetch


def _verifier_service(
    settings: Settings, agency: VerifierAgency, store: Store | None, *,
    trust: TrustSource | TrustList, fetch: Fetch | None, clock: Clock, title: str,
    description: str,
) -> tuple[FastAPI, Verifier]:
    store, owned = attach_store(settings, SCHEMAS, store)
    public_url = check_public_url(settings.public_url or f"http://{settings.host}:{settings.port}")
    verifier = Verifier(store, agency, public_url, trust=trust,
                        fetch=fetch or http_fetch(settings.verifier_status_fetch_seconds),
                        policy=policy_of(settings))
    app = create_service_app(settings, title=title, description=description, store=store,
                             owns_store=owned, sweepers=[verifier.sweep], clock=clock)
    app.state.verifier = verifier
    return app, verifier


def create_verifier_app(
    settings: Settings, agency: VerifierAgency, store: Store | None = None, *,
    trust: TrustSource | TrustList, fetch: Fetch | None = None, clock: Clock = utc_now,
) -> FastAPI:
    """The agency's public OpenID4VP service at ``settings.public_url`` (else
    ``http://<host>:<port>``). Opens ``settings.db_url`` unless given a ``store`` (left
    open). ``trust`` is the trust list (or a function of the time giving it); ``fetch`` gets
    status lists (default: HTTP)."""
    app, verifier = _verifier_service(
        settings, agency, store, trust=trust, fetch=fetch, clock=clock,
        title=f"kluis verifier: {agency.names['en']}",
        description="OpenID4VP 1.0 verifier (signed requests by reference, x509_hash, "
                    "direct_post.jwt). See specs/openid4vp.md.",
    )
    app.include_router(_public_router(verifier, clock))
    return app


def create_verifier_admin_app(
    settings: Settings, agency: VerifierAgency, store: Store | None = None, *,
    trust: TrustSource | TrustList, fetch: Fetch | None = None, clock: Clock = utc_now,
) -> FastAPI:
    """The agency's back office over the same store: never expose it (module docstring)."""
    app, verifier = _verifier_service(
        settings, agency, store, trust=trust, fetch=fetch, clock=clock,
        title=f"kluis verifier admin: {agency.names['en']}",
        description="Create presentation requests and read what was received. Not public.",
    )
    app.include_router(_admin_router(verifier, clock))
    return app


# --- the public service --------------------------------------------------------------------


def _response_error(request: Request, error: KluisError) -> JSONResponse:
    """The problem document of a refused response, with the OpenID ``error`` member."""
    openid = getattr(type(error), "openid_error", "invalid_request")
    document = problem_document(
        error, lang=negotiate_lang(request.headers.get("accept-language")),
        type_base=f"{str(request.base_url).rstrip('/')}/problems/", extra={"error": openid},
    )
    return JSONResponse(document, status_code=status_of(error), media_type=PROBLEM_JSON,
                        headers=NO_STORE)


class ResponseOut(BaseModel):
    """The answer to an accepted response: one signed receipt per presentation (absent for
    a wallet's error response)."""

    receipts: list[str] = Field(default_factory=list, description="kluis-receipt+jwt tokens.")


# The Authorization Response as the wallet posts it (OpenID4VP 1.0 §8.2, §8.3): ``response``
# (a JWE) alone for direct_post.jwt, else vp_token and state, or an error and state.
_RESPONSE_FORM = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object",
    "properties": {name: {"type": "string"} for name in
                   ("response", "vp_token", "state", "error", "error_description")},
}}}}


def _public_router(verifier: Verifier, clock: Callable[[], datetime]) -> APIRouter:
    router = APIRouter(tags=["wallet"])

    @router.get("/requests/{request_id}", responses={
        200: {"content": {REQUEST_OBJECT: {"schema": {"type": "string"}}}},
        **problem_responses(404, 409)})
    async def request_object(request_id: Annotated[str, Path(pattern=_ID)]) -> Response:
        """The signed Request Object (RFC 9101 §5.2; OpenID4VP 1.0 §5), served once."""
        token = await run_in_threadpool(verifier.request_object, request_id, now=clock())
        return Response(token, media_type=REQUEST_OBJECT, headers=NO_STORE)

    @router.post("/response", openapi_extra={"requestBody": _RESPONSE_FORM},
                 responses={200: {"model": ResponseOut},
                            **problem_responses(400, 403, 404, 409, 422)})
    async def response(request: Request) -> JSONResponse:
        """The response endpoint (OpenID4VP 1.0 §8.2 ``direct_post``, §8.3
        ``direct_post.jwt``): ``{"receipts": [...]}`` on success, ``{}`` for an error
        response taken."""
        body = await request.body()
        try:
            outcome = await run_in_threadpool(
                verifier.receive_response, request.headers.get("content-type"), body,
                now=clock())
        except KluisError as error:
            if error.code.startswith("store."):
                raise  # the shared handlers answer an unreachable database
            return _response_error(request, error)
        answer = {"receipts": list(outcome.receipts)} if outcome.receipts else {}
        return JSONResponse(answer, headers=NO_STORE)

    return router


# --- the back office -------------------------------------------------------------------------


class GrantBody(BaseModel):
    """Ask for ongoing access instead of a one-off release (specs/grant.md §3.1)."""

    model_config = ConfigDict(extra="forbid")
    valid_until: AwareDatetime = Field(description="When the grant ends (with its zone).")
    fetch_kid: str = Field(min_length=1, max_length=256,
                           description="The agency's Ed25519 key in jwks that signs fetches.")
    encryption_kid: str = Field(min_length=1, max_length=256,
                                description="Its X25519 key in encryption_jwks.")
    notice_uri: str | None = Field(default=None, max_length=256,
                                   description="Where the wallet posts the grant notice.")


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(min_length=1, max_length=128, description="A registered purpose id.")
    dcql_query: dict[str, Any] = Field(description="The DCQL query (OpenID4VP 1.0 §6).")
    response_mode: ResponseMode = ResponseMode.DIRECT_POST_JWT
    grant: GrantBody | None = None


class CreatedOut(BaseModel):
    id: str
    uri: str = Field(description="openid4vp:// URI: post it to the citizen's relay address.")
    request_uri: str
    client_id: str
    purpose: str
    expires_at: datetime
    over_asked: list[str] = Field(description="Claims beyond the registration (wallets block).")

    @classmethod
    def of(cls, created: CreatedRequest) -> CreatedOut:
        return cls(id=created.id, uri=created.uri, request_uri=created.request_uri,
                   client_id=created.client_id, purpose=created.purpose,
                   expires_at=created.expires_at, over_asked=list(created.over_asked))


class AttemptOut(BaseModel):
    code: str
    at: datetime


class StatusOut(BaseModel):
    id: str
    purpose: str
    status: str = Field(description="created, fetched, received, refused, failed or expired.")
    outcome: str | None
    created_at: datetime
    expires_at: datetime
    fetched_at: datetime | None
    done_at: datetime | None
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, status: RequestStatus) -> StatusOut:
        return cls(id=status.id, purpose=status.purpose, status=status.status,
                   outcome=status.outcome, created_at=status.created_at,
                   expires_at=status.expires_at, fetched_at=status.fetched_at,
                   done_at=status.done_at,
                   attempts=[AttemptOut(code=c, at=a) for c, a in status.attempts])


class ReceivedOut(BaseModel):
    request_id: str
    purpose: str
    query_id: str
    vct: str
    issuer: str
    claims: dict[str, Any] = Field(description="Claims path (compact JSON) -> value.")
    presentation_hash: str
    receipt_id: str
    received_at: datetime

    @classmethod
    def of(cls, item: ReceivedCredential) -> ReceivedOut:
        return cls(request_id=item.request_id, purpose=item.purpose, query_id=item.query_id,
                   vct=item.vct, issuer=item.issuer, claims=dict(item.claims),
                   presentation_hash=item.presentation_hash, receipt_id=item.receipt_id,
                   received_at=item.received_at)


class ReceivedListOut(BaseModel):
    received: list[ReceivedOut]


class ReceiptLogOut(BaseModel):
    origin: str
    size: int
    checkpoint: str = Field(description="The latest signed C2SP checkpoint ('' while empty).")
    verifier_key: str = Field(description="The signed-note verifier key (log.vkey).")


def _admin_router(verifier: Verifier, clock: Callable[[], datetime]) -> APIRouter:
    router = APIRouter(tags=["admin"])

    @router.post("/requests", status_code=201, response_model=CreatedOut)
    async def create_request(body: RequestBody) -> CreatedOut:
        """A new signed request for one citizen; send its ``uri`` to their relay address."""
        grant = body.grant
        extra = () if grant is None else (format_grant_element(
            valid_until=grant.valid_until, fetch_kid=grant.fetch_kid,
            encryption_kid=grant.encryption_kid, notice_uri=grant.notice_uri),)
        created = await run_in_threadpool(
            verifier.create_request, body.purpose, body.dcql_query,
            response_mode=body.response_mode, now=clock(), extra_info=extra)
        return CreatedOut.of(created)

    @router.get("/requests/{request_id}", response_model=StatusOut,
                responses=problem_responses(404))
    async def request_status(request_id: Annotated[str, Path(pattern=_ID)]) -> StatusOut:
        """Where a request stands, with the refused answers it got."""
        return StatusOut.of(await run_in_threadpool(verifier.status, request_id))

    @router.get("/received", response_model=ReceivedListOut)
    async def received(
        request_id: Annotated[str | None, Query(pattern=_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> ReceivedListOut:
        """What the agency received and kept, newest first."""
        items = await run_in_threadpool(verifier.received, request_id=request_id, limit=limit)
        return ReceivedListOut(received=[ReceivedOut.of(item) for item in items])

    @router.get("/receipt-log", response_model=ReceiptLogOut)
    async def receipt_log() -> ReceiptLogOut:
        """The receipt log's size, latest checkpoint and verifier key."""
        log = verifier.receipt_log
        key = await run_in_threadpool(log.verifier_key_text)
        head = await run_in_threadpool(log.head)
        return ReceiptLogOut(origin=log.origin, size=head.size, checkpoint=head.checkpoint,
                             verifier_key=key)

    return router

