"""Grants end to end over real HTTP (uvicorn on loopback), on SQLite and PostgreSQL: the
citizen's wallet approves Utrecht's grant request, syncs with the relay, the municipality
reads the income statement with its own keys, the wallet logs every read, the citizen
revokes, the next read is refused, and the trail and the replay tell all of it.

The first test is the scene ``kluis demo`` plays."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from consent_world import NOW, UTRECHT, Citizen, World
from fastapi import FastAPI, Request
from grant_world import FETCH_KID, GrantWorld, grant_request_params, make_grant_world
from grant_world import new_grant_citizen as new_citizen
from values import shows_value

from server.relay_app import create_relay_app
from server.settings import Settings
from server.store import Store, open_store
from verifiers.credential_type import INCOME_STATEMENT
from verifiers.grant_fetch import Fetched, FetchRefused, fetch_item
from verifiers.grant_notice import GrantNotice, parse_grant_notice
from verifiers.replay import replay_export
from wallet.grant import Grant, Status
from wallet.grant_item import MAX_ITEM_BYTES, ItemSpec, Source
from wallet.grant_sync import SyncReport, sync_grants
from wallet.request import parse_request
from wallet.trail import tell
from wallet.transport import HttpxTransport, Response, Transport, TransportFailed


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Scene:
    """A relay on loopback, the citizen's wallet, and Utrecht's grant keys."""

    relay: str
    store: Store
    clock: Clock
    citizen: Citizen
    world: GrantWorld
    transport: HttpxTransport
    tmp: Path

    def sync(self, transport: Transport | None = None) -> SyncReport:
        return sync_grants(self.citizen.wallet.grants, transport or self.transport,
                           now=self.clock(), clock=self.clock)

    def approve(self, **changes: Any) -> Grant:
        request = parse_request(grant_request_params(**changes))
        self.citizen.consent.receive(request, now=self.clock())
        return self.citizen.wallet.grants.approve(request.id, relay=self.relay,
                                                  now=self.clock())

    def notice(self, grant: Grant) -> GrantNotice:
        return parse_grant_notice(json.dumps(self.citizen.wallet.grants.notice(grant)))

    def read(self, notice: GrantNotice, item: str = "income") -> Fetched:
        keys = self.world.grant_keys
        return fetch_item(self.transport, notice.relay, notice.grant, item, agency=UTRECHT,
                          signing_key=keys.fetch, encryption_key=keys.encryption,
                          wallet_key=notice.verifying_key(), now=self.clock())

    def refused(self, notice: GrantNotice, item: str = "income") -> str:
        with pytest.raises(FetchRefused) as caught:
            self.read(notice, item)
        return str(caught.value.fields["problem"])

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.citizen.entries()]


@pytest.fixture(scope="module")
def world() -> GrantWorld:
    return make_grant_world()


@pytest.fixture
def scene(store_url: str, tmp_path: Path, serve: Any, world: GrantWorld) -> Iterator[Scene]:
    clock = Clock()
    store = open_store(store_url)
    settings = Settings(data_dir=tmp_path, db_url=store_url, rate_limit_per_client=100_000)
    citizen = new_citizen(tmp_path / "citizen", world)
    citizen.receive(INCOME_STATEMENT)
    try:
        with serve(create_relay_app(settings, store, clock=clock)) as url, \
                HttpxTransport() as transport:
            yield Scene(url, store, clock, citizen, world, transport, tmp_path)
    finally:
        citizen.wallet.close()
        store.close()


def _later(scene: Scene, **delta: float) -> None:
    scene.clock.now += timedelta(**delta)


# --- the demo scene ------------------------------------------------------------------------------


def test_read_twice_revoke_third_read_refused_and_the_trail_tells_it(scene: Scene,
                                                                     tmp_path: Path) -> None:
    grant = scene.approve()
    first = scene.sync()
    assert (first.registered, first.uploaded, first.stopped, first.waiting) == (1, 1, None, 0)
    notice = scene.notice(grant)

    _later(scene, hours=1)
    first_read = scene.read(notice)
    statement = json.loads(first_read.item.content)
    assert statement["vct"] == INCOME_STATEMENT
    assert {tuple(c["path"]): c["value"] for c in statement["claims"]} == {
        ("income_bracket",): {"code": "2", "label": "€ 30.001 – € 45.000"},
        ("tax_year",): 2026}
    _later(scene, days=1)
    second = scene.read(notice)
    assert second.item.version == 1

    _later(scene, hours=1)
    assert scene.sync().logged == 2
    scene.citizen.wallet.grants.revoke(grant.id, now=scene.clock())
    revoked = scene.sync()
    assert revoked.revoked == [grant.id]
    assert scene.citizen.wallet.grants.find(grant.id).status(scene.clock()) is Status.REVOKED

    _later(scene, minutes=5)
    assert scene.refused(notice) == "grant.revoked"
    assert scene.sync().logged == 1

    assert scene.kinds()[-6:] == ["request_received", "grant_created", "grant_used",
                                  "grant_used", "grant_revoked", "grant_used"]
    used = scene.citizen.entries()[-4:-2]
    assert [e["fetch"] for e in used] == [first_read.answer.fetch_id, second.answer.fetch_id]
    for lang, words in (("en", ("access to your", "read your", "stopped the access",
                                "tried to read")),
                        ("nl", ("inzage in uw", "heeft uw", "gestopt", "probeerde"))):
        story = " ".join(s.text for s in tell(scene.citizen.entries(), lang=lang))
        assert all(w in story for w in words), (lang, story)
        assert not shows_value(story, "41250") and "30.001" not in story
    scene.citizen.wallet.log.export(tmp_path / "audit", now=scene.clock())
    report = replay_export(tmp_path / "audit")
    assert report.clean, report.findings
    assert (report.grants, report.grant_uses) == (1, 2)


# --- keeping the relay up to date -------------------------------------------------------------


def test_a_changed_vault_item_is_sealed_again_and_a_removed_one_withdrawn(scene: Scene) -> None:
    vault = scene.citizen.vault
    vault.put_attribute("zorgplan", "Hulp bij het huishouden, 4 uur", source="me")
    grant = scene.citizen.wallet.grants.create(
        agency_id=UTRECHT, purpose_id="wmo-household-help",
        items=[ItemSpec("care-plan", Source.VAULT, "zorgplan")],
        valid_until=NOW + timedelta(days=30), relay=scene.relay, now=scene.clock(),
        fetch_kid=FETCH_KID)
    scene.sync()
    notice = scene.notice(grant)
    assert scene.read(notice, "care-plan").item.content == b"Hulp bij het huishouden, 4 uur"
    vault.put_attribute("zorgplan", "Hulp bij het huishouden, 6 uur", source="me")
    assert scene.sync().uploaded == 1
    again = scene.read(notice, "care-plan").item
    assert (again.version, again.content) == (2, b"Hulp bij het huishouden, 6 uur")
    assert scene.sync().uploaded == 0  # nothing changed since
    vault.remove("zorgplan")
    assert scene.sync().withdrawn == 1
    assert scene.refused(notice, "care-plan") == "grant.item_unavailable"


def test_a_newer_credential_is_sealed_again(scene: Scene) -> None:
    grant = scene.approve()
    scene.sync()
    notice = scene.notice(grant)
    assert scene.read(notice).item.version == 1
    _later(scene, days=10)
    newer = {"tax_year": 2027, "gross_income": 43000,
             "income_bracket": {"code": "2", "label": "€ 30.001 – € 45.000"}}
    scene.citizen.wallet.receive_credential(
        scene.world.issue(INCOME_STATEMENT, scene.citizen.holder(), claims=newer,
                          now=scene.clock()), now=scene.clock())
    assert scene.sync().uploaded == 1
    fetched = json.loads(scene.read(notice).item.content)
    assert {tuple(c["path"]): c["value"] for c in fetched["claims"]}[("tax_year",)] == 2027
    assert "gross_income" not in json.dumps(fetched)


def test_an_unreachable_relay_keeps_the_work_for_the_next_sync(scene: Scene) -> None:
    grant = scene.approve()

    class Down:
        def request(self, method: str, url: str, **_: Any) -> Response:
            raise TransportFailed("ConnectError")

    report = scene.sync(Down())
    assert report.stopped == "transport.unreachable" and report.waiting == 2
    assert scene.sync().registered == 1
    scene.citizen.wallet.grants.revoke(grant.id, now=scene.clock())
    assert scene.sync(Down()).stopped == "transport.unreachable"
    assert scene.citizen.wallet.grants.find(grant.id).status(scene.clock()) is Status.REVOKING
    assert scene.sync().revoked == [grant.id]


def test_a_lost_acknowledgement_logs_nothing_twice(scene: Scene) -> None:
    grant = scene.approve()
    scene.sync()
    notice = scene.notice(grant)
    scene.read(notice)
    scene.read(notice)

    class LoseAcks:
        def request(self, method: str, url: str, **kwargs: Any) -> Response:
            if url.endswith("/fetches/acks"):
                raise TransportFailed("ReadTimeout")
            return scene.transport.request(method, url, **kwargs)

    assert scene.sync(LoseAcks()).logged == 2
    assert scene.sync().logged == 0
    assert scene.kinds().count("grant_used") == 2


def test_an_ended_grant_refuses_reads_and_gets_no_new_versions(scene: Scene) -> None:
    grant = scene.approve(valid_until=NOW + timedelta(days=1))
    scene.sync()
    notice = scene.notice(grant)
    scene.read(notice)
    _later(scene, days=1)
    assert scene.refused(notice) == "grant.expired"
    scene.citizen.wallet.receive_credential(
        scene.world.issue(INCOME_STATEMENT, scene.citizen.holder(), now=scene.clock()),
        now=scene.clock())
    report = scene.sync()
    assert (report.uploaded, report.logged) == (0, 2)
    assert scene.citizen.wallet.grants.find(grant.id).status(scene.clock()) is Status.EXPIRED
    report_text = [e for e in scene.citizen.entries() if e["kind"] == "grant_used"]
    assert [e["outcome"] for e in report_text] == ["served", "refused"]


def test_the_notice_reaches_the_agency(scene: Scene, serve: Any) -> None:
    received: list[Mapping[str, Any]] = []
    agency = FastAPI()

    @agency.post("/grant-notices", status_code=202)
    async def notices(request: Request) -> dict[str, str]:
        received.append(json.loads(await request.body()))
        return {"ok": "yes"}

    with serve(agency) as base:
        grant = scene.approve(notice_uri=f"{base}/grant-notices")
        assert scene.sync().notified == 1
    (notice,) = received
    parsed = parse_grant_notice(json.dumps(notice))
    assert (parsed.grant, parsed.relay, parsed.state) == (grant.id, scene.relay,
                                                          "wmo-2027-0001")
    assert scene.read(parsed).item.grant == grant.id


def test_the_world_is_the_one_the_wallet_trusts(world: World) -> None:
    """A guard for the fixtures: Utrecht's grant keys are on the signed list."""
    doc = world.trust_doc()
    utrecht = next(a for a in doc["agencies"] if a["id"] == UTRECHT)
    assert {k["kid"] for k in utrecht["jwks"]["keys"]} >= {FETCH_KID}
    assert utrecht["encryption_jwks"]["keys"][0]["crv"] == "X25519"


def test_the_largest_document_fits_the_relay_and_a_larger_one_is_noted(scene: Scene) -> None:
    vault = scene.citizen.vault
    vault.put_document("payslip.pdf", io.BytesIO(b"%" * MAX_ITEM_BYTES),
                       media_type="application/pdf", source="me")
    grant = scene.citizen.wallet.grants.create(
        agency_id=UTRECHT, purpose_id="wmo-household-help",
        items=[ItemSpec("payslip", Source.VAULT, "payslip.pdf")],
        valid_until=NOW + timedelta(days=30), relay=scene.relay, now=scene.clock(),
        fetch_kid=FETCH_KID)
    assert scene.sync().uploaded == 1
    fetched = scene.read(scene.notice(grant), "payslip").item
    assert (fetched.media_type, len(fetched.content)) == ("application/pdf", MAX_ITEM_BYTES)
    vault.put_document("payslip.pdf", io.BytesIO(b"%" * (MAX_ITEM_BYTES + 1)),
                       media_type="application/pdf", source="me")
    report = scene.sync()
    assert (report.uploaded, report.failed) == (0, [(grant.id, "grant.document_too_large")])
    (item,) = scene.citizen.wallet.grants.find(grant.id).items
    assert (item.version, item.error) == (1, "grant.document_too_large")


@pytest.mark.parametrize(("status", "code", "stopped"), [
    (422, "httpsig.stale", "httpsig.stale"),   # our clock: try again next round
    (409, "grant.strange", None),              # the relay refused: noted, never given up
])
def test_a_refused_revocation_is_kept_for_the_next_sync(scene: Scene, status: int, code: str,
                                                        stopped: str | None) -> None:
    grant = scene.approve()
    scene.sync()

    class Refusing:
        def request(self, method: str, url: str, **kwargs: Any) -> Response:
            if method == "DELETE" and url.endswith(grant.id):
                body = json.dumps({"code": code, "status": status}).encode()
                return Response(status, {"content-type": "application/problem+json"}, body)
            return scene.transport.request(method, url, **kwargs)

    scene.citizen.wallet.grants.revoke(grant.id, now=scene.clock())
    report = scene.sync(Refusing())
    assert report.stopped == stopped and report.waiting == 1
    assert scene.citizen.wallet.grants.find(grant.id).status(scene.clock()) is Status.REVOKING
    assert scene.sync().revoked == [grant.id]
    assert scene.refused(scene.notice(grant)) == "grant.revoked"
