"""What the demo agencies' back offices do beside the standard admin apps (``server.demo_world``
adds these routers to them): make an offer from the agency's register, export the receipt log
for an auditor, and read what a citizen granted.

The grant reader is the agency's side of an access grant (specs/grant.md §5, §7): the citizen
hands the agency a grant notice (which relay, which grant and items, the wallet's item-signing
key); each read is a fetch signed with the agency's Ed25519 key, opened with its X25519 key,
checked against the wallet's key, and answered with a fetch receipt the agency keeps. A read
the relay refuses (revoked, expired) is answered as a problem document naming the relay's code.
Like every back office route, these trust whoever can reach them: never expose them.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from server.issuer import Issuer
from server.issuer_app import OfferOut
from server.problem import problem_responses
from server.service import Clock
from server.store import Schema, Store
from server.verifier import Verifier
from vault import InvalidInput, NotFound
from verifiers.grant_fetch import fetch_item
from verifiers.grant_notice import GrantNotice, parse_grant_notice
from verifiers.jws import SigningKey
from verifiers.sealed_item import ITEM_PATTERN, EncryptionKey
from wallet.transport import HttpxTransport

TAR = "application/x-tar"
_NAME = r"^[a-z0-9-]{1,64}$"
_GRANT = r"^[A-Za-z0-9_-]{22,64}$"

GRANT_READER_SCHEMA = Schema(
    "demo_grant_reader",
    (
        "CREATE TABLE demo_grant_notice ("
        " agency TEXT NOT NULL, grant_id TEXT NOT NULL, notice TEXT NOT NULL,"
        " received_at INTEGER NOT NULL, PRIMARY KEY (agency, grant_id));"
        "CREATE TABLE demo_grant_read ("
        " fetch_id TEXT PRIMARY KEY, agency TEXT NOT NULL, grant_id TEXT NOT NULL,"
        " item TEXT NOT NULL, version INTEGER NOT NULL, receipt TEXT NOT NULL,"
        " read_at INTEGER NOT NULL)",
    ),
)


class NotInRegister(NotFound):
    code = "demo.not_in_register"
    en = "This agency has no such person or document in its register. Check the name."
    nl = "Deze organisatie heeft deze persoon of dit document niet in haar register."


class UnknownGrant(NotFound):
    code = "demo.unknown_grant"
    en = "The agency has no notice of this grant. Send it the grant notice first."
    nl = "De organisatie kent deze machtiging niet. Stuur haar eerst de melding van de machtiging."


class ForeignNotice(InvalidInput):
    code = "demo.foreign_notice"
    en = "This grant notice is for another agency or other keys. Send the right notice."
    nl = "Deze melding is voor een andere organisatie of andere sleutels. Stuur de juiste melding."


# --- the register ------------------------------------------------------------------------------


class RegisterOfferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    configurations: list[Annotated[str, Field(pattern=_NAME)]] = Field(
        min_length=1, max_length=8,
        description="The credential configurations to offer, e.g. personal-data.")
    tx_code: bool = Field(default=True, description="Require a transaction code (sent apart).")


def register_router(issuer: Issuer, register: Mapping[str, Mapping[str, dict[str, Any]]],
                    clock: Clock) -> APIRouter:
    """Offers made from what ``register`` holds per citizen and configuration, so nobody
    types a person's data into the back office."""
    router = APIRouter(tags=["register"])

    @router.post("/register/{citizen}/offers", status_code=201, response_model=OfferOut,
                 responses=problem_responses(404))
    def offer_from_register(
        citizen: Annotated[str, PathParam(pattern=_NAME)],
        body: Annotated[RegisterOfferBody, Body()],
    ) -> OfferOut:
        """A credential offer of the citizen's records (the claims come from the register)."""
        records = register.get(citizen, {})
        missing = [c for c in body.configurations if c not in records]
        if missing:
            raise NotInRegister(f"register: {citizen!r} has no {missing[0]!r}")
        offer = issuer.create_offer({c: records[c] for c in body.configurations},
                                    tx_code=body.tx_code, now=clock())
        return OfferOut.of(offer)

    return router


# --- the receipt log ---------------------------------------------------------------------------


def receipt_log_router(verifier: Verifier) -> APIRouter:
    """The agency's receipt log as an audit export (a tar, specs/audit-export.md), for an
    auditor who reconciles it with a citizen's log."""
    router = APIRouter(tags=["admin"])

    @router.get("/receipt-log/export", response_class=Response,
                responses={200: {"content": {TAR: {"schema": {"type": "string",
                                                               "format": "binary"}}}}})
    def export_receipt_log() -> Response:
        """The whole receipt log as an audit export in one tar file."""
        with tempfile.TemporaryDirectory(prefix="kluis-receipts-") as folder:
            target = Path(folder) / "receipt-log.tar"
            verifier.receipt_log.export(target)
            data = target.read_bytes()
        return Response(data, media_type=TAR,
                        headers={"Content-Disposition": 'attachment; filename="receipt-log.tar"'})

    return router


# --- reading granted items ---------------------------------------------------------------------


class NoticeOut(BaseModel):
    grant: str
    items: list[str]
    valid_until: datetime


class ReadOut(BaseModel):
    """One read: the opened item (its content as text), the relay's record of the fetch, and
    the agency's signed fetch receipt."""

    grant: str
    item: str
    version: int
    media_type: str
    content: str
    fetch_id: str
    fetched_at: datetime
    receipt: str


def grant_reader_router(agency: str, fetch_key: SigningKey, encryption_key: EncryptionKey,
                        encryption_kid: str, store: Store, clock: Clock,
                        fetch: Callable[..., Any] = fetch_item) -> APIRouter:
    """The agency's grant reader over ``store`` (migrated to ``GRANT_READER_SCHEMA`` by the
    caller): keep a notice for the agency's keys (``fetch_key.kid``, ``encryption_kid``),
    read an item of it."""
    router = APIRouter(tags=["grants"])

    def notice_of(grant: str) -> GrantNotice:
        with store.transaction(readonly=True) as tx:
            rows = tx.execute("SELECT notice FROM demo_grant_notice WHERE agency = ? AND"
                              " grant_id = ?", (agency, grant))
        if not rows:
            raise UnknownGrant(f"specs/grant.md §3.2: no notice of {grant!r}")
        return parse_grant_notice(str(rows[0][0]))

    @router.post("/grants", status_code=201, response_model=NoticeOut,
                 responses=problem_responses(400))
    def take_notice(notice: Annotated[dict[str, Any], Body()]) -> NoticeOut:
        """Keep the citizen's grant notice (specs/grant.md §3.2)."""
        parsed = parse_grant_notice(json.dumps(notice))
        if (parsed.agency != agency or parsed.fetch_kid != fetch_key.kid
                or parsed.encryption_kid != encryption_kid):
            raise ForeignNotice("specs/grant.md §3.2: agency and key ids are this agency's")
        with store.transaction() as tx:
            tx.execute("INSERT INTO demo_grant_notice (agency, grant_id, notice, received_at)"
                       " VALUES (?, ?, ?, ?) ON CONFLICT (agency, grant_id) DO UPDATE SET"
                       " notice = excluded.notice, received_at = excluded.received_at",
                       (agency, parsed.grant, json.dumps(notice), int(clock().timestamp())))
        return NoticeOut(grant=parsed.grant, items=[i.id for i in parsed.items],
                         valid_until=parsed.valid_until)

    @router.post("/grants/{grant}/items/{item}/reads", response_model=ReadOut,
                 responses=problem_responses(403, 404, 422))
    async def read_item(grant: Annotated[str, PathParam(pattern=_GRANT)],
                        item: Annotated[str, PathParam(pattern=ITEM_PATTERN)]) -> ReadOut:
        """Fetch, open and receipt one granted item, as the agency's caseworker would."""
        notice = await run_in_threadpool(notice_of, grant)
        now = clock()

        def read() -> Any:
            with HttpxTransport() as transport:
                return fetch(transport, notice.relay, grant, item, agency=agency,
                             signing_key=fetch_key, encryption_key=encryption_key,
                             wallet_key=notice.verifying_key(), now=now)

        fetched = await run_in_threadpool(read)
        with store.transaction() as tx:
            tx.execute("INSERT INTO demo_grant_read (fetch_id, agency, grant_id, item, version,"
                       " receipt, read_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (fetched.answer.fetch_id, agency, grant, item, fetched.item.version,
                        fetched.receipt, int(now.timestamp())))
        opened = fetched.item
        return ReadOut(grant=grant, item=item, version=opened.version,
                       media_type=opened.media_type,
                       content=opened.content.decode("utf-8", errors="replace"),
                       fetch_id=fetched.answer.fetch_id,
                       fetched_at=fetched.answer.fetched_at.astimezone(UTC),
                       receipt=fetched.receipt)

    return router

