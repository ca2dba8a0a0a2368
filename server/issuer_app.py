"""The issuing agency's HTTP faces (specs/openid4vci.md): thin routes over
``server.issuer.Issuer``.

``create_issuer_app(settings, agency)`` is the public service a wallet talks to: the
metadata documents, offers by reference, the token, nonce and credential endpoints and the
status list. ``create_issuer_admin_app(settings, agency)`` is the agency's back office:
create offers, see what an offer issued, revoke, suspend, reinstate. Both work on the same
store, so they may run in one process or on different machines.

Why a separate admin app and not admin routes on the public one: the public app then has no
route that changes a credential's status at all, so there is nothing there to guess, steal
or brute-force, and the back office can be reached only where the agency puts it (a loopback
port, a Unix socket with owner-only permissions, an internal network). The admin app trusts
whoever can reach it, like a database port; never expose it.

Errors: the token endpoint answers with OAuth 2.0 error responses (RFC 6749 §5.2), as a
wallet expects there; every other route with RFC 9457 problem documents, which at the
credential endpoint also carry the OpenID4VCI ``error`` code (§8.3.1.2) and, for a missing or
bad access token, ``WWW-Authenticate: Bearer`` with status 401 (RFC 6750 §3).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from server.credential_offer import Offer, parse_token_request
from server.issuer import SCHEMAS, IssuedCredential, Issuer, IssuerPolicy
from server.issuer_agency import (
    PRE_AUTHORIZED_GRANT,
    IssuerAgency,
    authorization_server_metadata,
    check_public_url,
    credential_issuer_metadata,
    jwt_vc_issuer_metadata,
)
from server.problem import PROBLEM_JSON, negotiate_lang, problem_document, problem_responses
from server.service import Clock, attach_store, create_service_app, utc_now
from server.settings import Settings
from server.store import Store
from vault import KluisError
from verifiers.status_array import StatusValue

STATUS_LIST_JWT = "application/statuslist+jwt"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_ID = r"^[A-Za-z0-9_-]{1,64}$"
# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def policy_of(settings: Settings) -> IssuerPolicy:
    """The issuer's lifetimes and limits from ``KLUIS_ISSUER_*`` settings."""
    return IssuerPolicy(
        offer_seconds=settings.issuer_offer_seconds,
        tx_code_attempts=settings.issuer_tx_code_attempts,
        token_seconds=settings.issuer_token_seconds,
        nonce_seconds=settings.issuer_nonce_seconds,
        proof_max_age=settings.issuer_proof_max_age_seconds,
        status_ttl=settings.issuer_status_ttl_seconds,
        status_lifetime=settings.issuer_status_lifetime_seconds,
    )


def public_url_of(settings: Settings) -> str:
    """``settings.public_url``, else ``http://<host>:<port>``; raises ``issuer.bad_agency``
    unless it is an https origin or an http origin on loopback."""
    return check_public_url(settings.public_url or f"http://{settings.host}:{settings.port}")


def _issuer_service(
    settings: Settings, agency: IssuerAgency, store: Store | None, clock: Clock, title: str,
    description: str,
) -> tuple[FastAPI, Issuer]:
    store, owned = attach_store(settings, SCHEMAS, store)
    issuer = Issuer(store, agency, public_url_of(settings), policy_of(settings))
    app = create_service_app(
        settings, title=title, description=description, store=store, owns_store=owned,
        sweepers=[issuer.sweep], clock=clock,
    )
    app.state.issuer = issuer
    return app, issuer


def create_issuer_app(
    settings: Settings, agency: IssuerAgency, store: Store | None = None, *,
    clock: Clock = utc_now,
) -> FastAPI:
    """The agency's public OpenID4VCI service at ``public_url_of(settings)``. Opens
    ``settings.db_url`` unless given a ``store`` (left open)."""
    app, issuer = _issuer_service(
        settings, agency, store, clock, f"kluis issuer: {agency.names['en']}",
        "OpenID4VCI 1.0 credential issuer (pre-authorized code flow). See specs/openid4vci.md.",
    )
    app.include_router(_public_router(issuer, clock))
    return app


def create_issuer_admin_app(
    settings: Settings, agency: IssuerAgency, store: Store | None = None, *,
    clock: Clock = utc_now,
) -> FastAPI:
    """The agency's back office over the same store: never expose it (module docstring)."""
    app, issuer = _issuer_service(
        settings, agency, store, clock, f"kluis issuer admin: {agency.names['en']}",
        "Create credential offers and change credentials' status. Not for the public.",
    )
    app.include_router(_admin_router(issuer, clock))
    return app


# --- error answers ------------------------------------------------------------------------


def _ascii(text: str) -> str:
    return "".join(c for c in text if c in _DESCRIPTION_CHARS)[:300]


def _oauth_error(error: KluisError) -> JSONResponse:
    """RFC 6749 §5.2: ``error`` and ``error_description``, plus kluis's ``code``."""
    body = {
        "error": getattr(type(error), "oauth_error", "invalid_request"),
        "error_description": _ascii(error.message("en")),
        "code": error.code,
    }
    return JSONResponse(body, status_code=400, headers=NO_STORE)


def _vci_error_code(error: KluisError) -> str | None:
    """The OpenID4VCI §8.3.1.2 ``error`` for a credential endpoint failure, if it has one."""
    own = getattr(type(error), "vci_error", None)
    if isinstance(own, str):
        return own
    if error.code == "proof.wrong_nonce":
        return "invalid_nonce"
    if error.code.startswith("proof."):
        return "invalid_proof"
    return None


def _credential_error(request: Request, error: KluisError) -> JSONResponse | None:
    """The problem document for a credential endpoint failure, with the OpenID4VCI or
    RFC 6750 parts; None for errors the shared handlers answer (a database outage, ...)."""
    bearer = getattr(type(error), "bearer_error", None)
    vci = _vci_error_code(error)
    if bearer is None and vci is None:
        return None
    status = 401 if bearer is not None else 400
    document = problem_document(
        error, lang=negotiate_lang(request.headers.get("accept-language")),
        type_base=f"{str(request.base_url).rstrip('/')}/problems/",
        extra={"error": bearer or vci} if (bearer or vci) else None,
    )
    document["status"] = status
    headers = dict(NO_STORE)
    if bearer is not None:
        challenge = "Bearer" + (f' error="{bearer}"' if bearer else "")
        headers["WWW-Authenticate"] = challenge
    return JSONResponse(document, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# --- what the public routes send and answer (for the OpenAPI document) ----------------------


class TokenOut(BaseModel):
    """The token response (RFC 6749 §5.1, OpenID4VCI 1.0 §6.2)."""

    access_token: str
    token_type: str = Field(examples=["Bearer"])
    expires_in: int


class OAuthErrorOut(BaseModel):
    """An OAuth 2.0 error response (RFC 6749 §5.2), with kluis's stable ``code``."""

    error: str = Field(examples=["invalid_grant"])
    error_description: str
    code: str


class NonceOut(BaseModel):
    """A fresh ``c_nonce`` (OpenID4VCI 1.0 §7.2)."""

    c_nonce: str


class IssuedCredentialOut(BaseModel):
    credential: str = Field(description="The SD-JWT VC (dc+sd-jwt), compact form.")


class CredentialOut(BaseModel):
    """The credential response (OpenID4VCI 1.0 §8.3): one credential."""

    credentials: list[IssuedCredentialOut]


_TOKEN_FORM = {
    "required": True,
    "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object",
        "required": ["grant_type", "pre-authorized_code"],
        "properties": {
            "grant_type": {"type": "string", "enum": [PRE_AUTHORIZED_GRANT]},
            "pre-authorized_code": {"type": "string", "maxLength": 128},
            "tx_code": {"type": "string", "maxLength": 64},
        },
    }}},
}
_CREDENTIAL_REQUEST = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object",
        "required": ["credential_configuration_id", "proofs"],
        "properties": {
            "credential_configuration_id": {"type": "string"},
            "proofs": {"type": "object", "required": ["jwt"], "properties": {
                "jwt": {"type": "array", "minItems": 1, "maxItems": 1,
                        "items": {"type": "string"}}}},
        },
    }}},
}
_BEARER = {"description": "Without a valid access token (problem document; RFC 6750 §3)",
           "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


# --- the public service ------------------------------------------------------------------


def _public_router(issuer: Issuer, clock: Callable[[], datetime]) -> APIRouter:
    router = APIRouter()
    agency, public_url = issuer.agency, issuer.public_url
    metadata = credential_issuer_metadata(agency, public_url)
    as_metadata = authorization_server_metadata(public_url)
    vc_issuer = jwt_vc_issuer_metadata(agency)

    @router.get("/.well-known/openid-credential-issuer", tags=["metadata"])
    def credential_issuer() -> dict[str, Any]:
        """Credential Issuer Metadata (OpenID4VCI 1.0 §12.2.2), unsigned."""
        return metadata

    @router.get("/.well-known/oauth-authorization-server", tags=["metadata"])
    def authorization_server() -> dict[str, Any]:
        """Authorization Server Metadata (RFC 8414 §3): the token endpoint."""
        return as_metadata

    @router.get("/.well-known/jwt-vc-issuer", tags=["metadata"])
    def jwt_vc_issuer() -> dict[str, Any]:
        """JWT VC Issuer Metadata (SD-JWT VC draft-18): the credential signing key."""
        return vc_issuer

    @router.get("/offers/{offer_id}", tags=["wallet"], responses={
        200: {"description": "The credential offer (OpenID4VCI 1.0 §4.1.1)",
              "content": {"application/json": {"schema": {"type": "object"}}}},
        **problem_responses(404)})
    async def offer(offer_id: Annotated[str, Path(pattern=_ID)]) -> JSONResponse:
        """A credential offer by reference (OpenID4VCI 1.0 §4.1.3), while it is open."""
        document = await run_in_threadpool(issuer.offer_document, offer_id, now=clock())
        return JSONResponse(document, headers=NO_STORE)

    @router.post("/token", tags=["wallet"], openapi_extra={"requestBody": _TOKEN_FORM},
                 responses={200: {"model": TokenOut},
                            400: {"description": "OAuth 2.0 error (RFC 6749 §5.2)",
                                  "model": OAuthErrorOut}})
    async def token(request: Request) -> JSONResponse:
        """Token endpoint, pre-authorized code grant (OpenID4VCI 1.0 §6)."""
        body = await request.body()
        try:
            parsed = parse_token_request(request.headers.get("content-type"), body)
            answer = await run_in_threadpool(issuer.redeem, parsed, now=clock())
        except KluisError as error:
            if not hasattr(type(error), "oauth_error"):
                raise
            return _oauth_error(error)
        return JSONResponse(answer, headers=NO_STORE)

    @router.post("/nonce", tags=["wallet"], responses={200: {"model": NonceOut}})
    async def nonce() -> JSONResponse:
        """A fresh ``c_nonce`` (OpenID4VCI 1.0 §7), never cached."""
        value = await run_in_threadpool(issuer.new_nonce, now=clock())
        return JSONResponse({"c_nonce": value}, headers=NO_STORE)

    @router.post("/credential", tags=["wallet"],
                 openapi_extra={"requestBody": _CREDENTIAL_REQUEST},
                 responses={200: {"model": CredentialOut}, 401: _BEARER,
                            **problem_responses(400, 403, 409)})
    async def credential(request: Request) -> JSONResponse:
        """Credential endpoint (OpenID4VCI 1.0 §8): one ``dc+sd-jwt`` per request."""
        body = await request.body()
        try:
            answer = await run_in_threadpool(
                issuer.issue, request.headers.get("authorization"), body,
                content_type=request.headers.get("content-type"), now=clock(),
            )
        except KluisError as error:
            response = _credential_error(request, error)
            if response is None:
                raise
            return response
        return JSONResponse(answer, headers=NO_STORE)

    @router.get("/status/{list_id}", tags=["status"],
                responses={200: {"content": {STATUS_LIST_JWT: {"schema": {"type": "string"}}}},
                           **problem_responses(404)})
    async def status_list(list_id: Annotated[str, Path(pattern=_ID)]) -> Response:
        """The Status List Token (Token Status List §5.1, §8.1) as it is now."""
        token = await run_in_threadpool(issuer.status_list_token, list_id, now=clock())
        return Response(token, media_type=STATUS_LIST_JWT,
                        headers={"Cache-Control": f"max-age={issuer.policy.status_ttl}"})

    return router


# --- the back office -------------------------------------------------------------------------


class OfferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credentials: dict[str, dict[str, Any]] = Field(
        min_length=1, max_length=8,
        description="Per credential configuration id, the claims to issue.",
    )
    tx_code: bool = Field(default=True, description="Require a transaction code (sent apart).")


class OfferOut(BaseModel):
    offer_id: str
    credential_offer: str = Field(description="openid-credential-offer:// URI, by value.")
    credential_offer_by_reference: str = Field(description="The same offer, by reference.")
    offer_url: str
    tx_code: str | None = Field(description="Give this to the citizen by another channel.")
    expires_at: datetime

    @classmethod
    def of(cls, offer: Offer) -> OfferOut:
        return cls(offer_id=offer.offer_id, credential_offer=offer.uri,
                   credential_offer_by_reference=offer.reference_uri, offer_url=offer.offer_url,
                   tx_code=offer.tx_code, expires_at=offer.expires_at)


class IssuedOut(BaseModel):
    configuration: str
    list_id: str
    index: int
    issued_at: datetime

    @classmethod
    def of(cls, issued: IssuedCredential) -> IssuedOut:
        return cls(configuration=issued.configuration, list_id=issued.list_id,
                   index=issued.index, issued_at=issued.issued_at)


class IssuedListOut(BaseModel):
    credentials: list[IssuedOut]


class StatusOut(BaseModel):
    status: str = Field(description="valid, invalid (revoked) or suspended.")


_STATUS_NAMES: dict[int, str] = {StatusValue.VALID: "valid", StatusValue.INVALID: "invalid",
                 StatusValue.SUSPENDED: "suspended"}


def _admin_router(issuer: Issuer, clock: Callable[[], datetime]) -> APIRouter:
    router = APIRouter(tags=["admin"])

    @router.post("/offers", status_code=201, response_model=OfferOut,
                 responses=problem_responses(409))
    async def create_offer(body: OfferBody) -> OfferOut:
        """A credential offer for one citizen, with the claims to issue."""
        offer = await run_in_threadpool(
            issuer.create_offer, body.credentials, tx_code=body.tx_code, now=clock())
        return OfferOut.of(offer)

    @router.get("/offers/{offer_id}/credentials", response_model=IssuedListOut,
                responses=problem_responses(404))
    async def issued(offer_id: Annotated[str, Path(pattern=_ID)]) -> IssuedListOut:
        """What was issued for an offer: configuration and status list index."""
        found = await run_in_threadpool(issuer.issued, offer_id)
        return IssuedListOut(credentials=[IssuedOut.of(item) for item in found])

    @router.post("/offers/{offer_id}/credentials/{configuration_id}/{action}",
                 response_model=StatusOut, responses=problem_responses(404, 409))
    async def change_status(
        offer_id: Annotated[str, Path(pattern=_ID)],
        configuration_id: Annotated[str, Path(pattern=_ID)],
        action: Annotated[str, Path(pattern="^(revoke|suspend|reinstate)$")],
    ) -> StatusOut:
        """Revoke (for good), suspend or reinstate an issued credential."""
        value = await run_in_threadpool(
            issuer.change_status, offer_id, configuration_id, action, now=clock())
        return StatusOut(status=_STATUS_NAMES.get(value, str(value)))

    return router
