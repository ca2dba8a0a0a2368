"""The grant routes of the relay (``specs/grant.md`` §5): thin over ``server.grant.GrantRelay``.

``grant_router`` is mounted by ``server.relay_app.create_relay_app``. Every route is signed
under the kluis RFC 9421 profile: the wallet's routes with the grant's own owner key (tag
``kluis-wallet``; registering a grant proves possession of that key, as a mailbox
registration does), the agency's fetch with the agency key the wallet registered on the grant
(tag ``kluis-agency``). Both tags spend nonces in the same table, so no signed request is
accepted twice, on any node, under either tag.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from server.authenticator import Authenticator
from server.grant import (
    GRANT_ID_PATTERN,
    BadGrant,
    FetchRecord,
    GrantRelay,
    GrantState,
    GrantTerms,
)
from server.problem import problem_responses
from server.service import Clock, http_request_of
from verifiers._document import format_timestamp
from verifiers.http_signature import key_thumbprint, parse_ed25519_jwk
from verifiers.jws import b64url_encode
from verifiers.sealed_item import ITEM_PATTERN

MAX_BATCH = 100
_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
GrantParam = Annotated[str, Path(pattern=GRANT_ID_PATTERN)]
ItemParam = Annotated[str, Path(pattern=ITEM_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GrantBody(_Strict):
    owner: dict[str, Any] = Field(description="The grant's own Ed25519 public key (OKP JWK); "
                                              "the request is signed with it.")
    agency_key: dict[str, Any] = Field(description="The agency's Ed25519 public key from the "
                                                   "trust list (OKP JWK): its fetches are "
                                                   "signed with it.")
    valid_until: str = Field(pattern=_TIME_PATTERN, examples=["2027-09-05T12:00:00Z"])
    items: list[Annotated[str, Field(pattern=ITEM_PATTERN)]] = Field(min_length=1,
                                                                     max_length=256)


class ItemOut(BaseModel):
    item: str
    version: int
    held: bool


class GrantOut(BaseModel):
    grant: str
    valid_until: str
    revoked_at: str | None
    served: int
    pending: int
    items: list[ItemOut]
    created: bool = False

    @classmethod
    def of(cls, state: GrantState, created: bool = False) -> GrantOut:
        return cls(
            grant=state.grant_id, valid_until=format_timestamp(state.valid_until),
            revoked_at=None if state.revoked_at is None else format_timestamp(state.revoked_at),
            served=state.served, pending=state.pending, created=created,
            items=[ItemOut(item=i, version=v, held=h) for i, v, h in state.items],
        )


class UploadedOut(BaseModel):
    item: str
    version: int


class RevokedOut(BaseModel):
    grant: str
    revoked_at: str
    served: int = Field(description="Fetches served under the grant before the revocation.")


class FetchOut(BaseModel):
    id: str
    seq: int
    item: str
    keyid: str
    fetched_at: str
    outcome: str
    version: int | None = None
    number: int | None = None
    error: str | None = None

    @classmethod
    def of(cls, record: FetchRecord) -> FetchOut:
        return cls(id=record.id, seq=record.seq, item=record.item, keyid=record.keyid,
                   fetched_at=format_timestamp(record.fetched_at), outcome=record.outcome,
                   version=record.version, number=record.number, error=record.error)


class FetchesOut(BaseModel):
    fetches: list[FetchOut]


class AckBody(_Strict):
    ids: list[Annotated[str, Field(pattern=_ID_PATTERN)]] = Field(min_length=1,
                                                                  max_length=MAX_BATCH)


class AckedOut(BaseModel):
    acked: int


class ServedOut(BaseModel):
    grant: str
    item: str
    version: int
    sealed: str = Field(description="The sealed item, base64url (specs/grant.md §4).")
    fetch: str = Field(description="The relay's id of this fetch (the citizen's log names it).")
    fetched_at: str


# Every route is signed: 403 for an unsigned, unknown-key or replayed request, 422 for a
# signature that does not verify; the grant's own answers beside them (specs/grant.md).
_SIGNED = (403, 422)


def grant_router(
    grants: GrantRelay, wallet_auth: Authenticator, agency_auth: Authenticator, clock: Clock
) -> APIRouter:
    """The grant routes over ``grants``; ``wallet_auth`` checks signatures with the wallet's
    tag, ``agency_auth`` with ``kluis-agency`` (``AGENCY_TAG``)."""
    router = APIRouter()

    async def signed_by(request: Request, auth: Authenticator,
                        lookup: Callable[[str], Ed25519PublicKey | None]) -> str:
        signed = await run_in_threadpool(
            auth.authenticate, await http_request_of(request), public_key=lookup, now=clock())
        return signed.keyid

    async def owner(request: Request, grant: str) -> str:
        return await signed_by(request, wallet_auth,
                               lambda keyid: grants.owner_key(grant, keyid))

    @router.put("/grants/{grant}", response_model=GrantOut, status_code=201, tags=["wallet"],
                responses=problem_responses(*_SIGNED, 409))
    async def create_grant(grant: GrantParam, body: GrantBody, request: Request,
                           response: Response) -> GrantOut:
        """Register a grant; signed by the grant's owner key given in the body."""
        owner_key = parse_ed25519_jwk(body.owner)
        agency_key = parse_ed25519_jwk(body.agency_key)
        await signed_by(request, wallet_auth,
                        lambda keyid: owner_key if keyid == key_thumbprint(owner_key) else None)
        terms = GrantTerms(grant, owner_key, agency_key, _moment(body.valid_until),
                           tuple(body.items))
        state, created = await run_in_threadpool(grants.create, terms, now=clock())
        if not created:
            response.status_code = 200
        return GrantOut.of(state, created)

    @router.get("/grants/{grant}", response_model=GrantOut, tags=["wallet"],
                responses=problem_responses(*_SIGNED, 404))
    async def show_grant(grant: GrantParam, request: Request) -> GrantOut:
        keyid = await owner(request, grant)
        return GrantOut.of(await run_in_threadpool(grants.state, grant, owner_keyid=keyid))

    @router.put("/grants/{grant}/items/{item}", response_model=UploadedOut, tags=["wallet"],
                responses=problem_responses(*_SIGNED, 404, 409, 410),
                openapi_extra={"requestBody": {"required": True, "content": {
                    "application/octet-stream": {"schema": {"type": "string",
                                                            "format": "binary"}}}}})
    async def upload_item(grant: GrantParam, item: ItemParam, request: Request,
                          version: Annotated[int, Query(ge=1, le=2**53 - 1)]) -> UploadedOut:
        """Keep a new sealed version of an item (the body: the sealed bytes)."""
        keyid = await owner(request, grant)
        sealed = await request.body()
        held = await run_in_threadpool(grants.upload, grant, item, owner_keyid=keyid,
                                       version=version, sealed=sealed, now=clock())
        return UploadedOut(item=item, version=held)

    @router.delete("/grants/{grant}/items/{item}", status_code=204, tags=["wallet"],
                   responses=problem_responses(*_SIGNED, 404, 410))
    async def withdraw_item(grant: GrantParam, item: ItemParam, request: Request) -> Response:
        keyid = await owner(request, grant)
        await run_in_threadpool(grants.withdraw, grant, item, owner_keyid=keyid, now=clock())
        return Response(status_code=204)

    @router.delete("/grants/{grant}", response_model=RevokedOut, tags=["wallet"],
                   responses=problem_responses(*_SIGNED, 404))
    async def revoke_grant(grant: GrantParam, request: Request) -> RevokedOut:
        """Revoke: the next fetch is refused, and the sealed items are deleted now."""
        keyid = await owner(request, grant)
        done = await run_in_threadpool(grants.revoke, grant, owner_keyid=keyid, now=clock())
        return RevokedOut(grant=grant, revoked_at=format_timestamp(done.revoked_at),
                          served=done.served)

    @router.get("/grants/{grant}/fetches", response_model=FetchesOut, tags=["wallet"],
                responses=problem_responses(*_SIGNED, 404))
    async def list_fetches(grant: GrantParam, request: Request,
                           limit: Annotated[int, Query(ge=1, le=MAX_BATCH)] = 50) -> FetchesOut:
        """The fetch records not yet acknowledged, oldest first."""
        keyid = await owner(request, grant)
        found = await run_in_threadpool(grants.fetches, grant, owner_keyid=keyid, limit=limit)
        return FetchesOut(fetches=[FetchOut.of(record) for record in found])

    @router.post("/grants/{grant}/fetches/acks", response_model=AckedOut, tags=["wallet"],
                 responses=problem_responses(*_SIGNED, 404))
    async def ack_fetches(grant: GrantParam, body: AckBody, request: Request) -> AckedOut:
        keyid = await owner(request, grant)
        acked = await run_in_threadpool(grants.ack, grant, body.ids, owner_keyid=keyid)
        return AckedOut(acked=acked)

    @router.get("/grants/{grant}/items/{item}", response_model=ServedOut, tags=["agency"],
                responses=problem_responses(*_SIGNED, 404, 410))
    async def fetch_item(grant: GrantParam, item: ItemParam, request: Request,
                         response: Response) -> ServedOut:
        """An agency reads a granted item, signed with its registered key (tag
        ``kluis-agency``)."""
        keyid = await signed_by(request, agency_auth,
                                lambda keyid: grants.agency_key(grant, keyid))
        served = await run_in_threadpool(grants.fetch, grant, item, keyid=keyid, now=clock())
        response.headers["Cache-Control"] = "no-store"
        return ServedOut(grant=grant, item=item, version=served.version,
                         sealed=b64url_encode(served.sealed), fetch=served.fetch_id,
                         fetched_at=format_timestamp(served.fetched_at))

    return router


def _moment(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise BadGrant("RFC 3339 §5.6: valid_until is a real time") from None
