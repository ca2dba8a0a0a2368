"""A grant request that arrives through the relay like any request, on SQLite and PostgreSQL:
the municipality's verifier service makes a signed Request Object carrying ``kluis_grant``,
posts its link to the citizen's pairwise address, the wallet's inbox fetches and checks it and
the consent engine keeps it; the citizen approves it as a grant; the municipality then reads
with the keys the trust list names for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from consent_world import NOW, UTRECHT, Citizen
from grant_world import ENCRYPTION_KID, FETCH_KID, GrantWorld, make_grant_world
from grant_world import new_grant_citizen as new_citizen
from issuer_service import Clock
from verifier_service import running_relay, running_verifier, trust_doc, utrecht

from server.verifier_agency import VerifierAgency
from verifiers.credential_type import INCOME_STATEMENT
from verifiers.grant_fetch import fetch_item
from verifiers.grant_notice import parse_grant_notice
from verifiers.jws import format_jwk
from verifiers.sealed_item import format_encryption_jwk
from verifiers.trustlist import sign_trust_list, verify_trust_list
from wallet import URI_LIST, HttpxTransport, agency_address, collect, mailbox_client
from wallet.grant_sync import sync_grants
from wallet.relay_account import register_relay
from wallet.trust import set_trust_list

INCOME_QUERY = {"credentials": [{
    "id": "income", "format": "dc+sd-jwt", "meta": {"vct_values": [INCOME_STATEMENT]},
    "claims": [{"path": ["income_bracket"]}, {"path": ["tax_year"]}]}]}


def real_now() -> datetime:
    """The relay runs on the real clock: requests to it are signed with it."""
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def world() -> GrantWorld:
    return make_grant_world()


@pytest.fixture(scope="module")
def agency(world: GrantWorld) -> VerifierAgency:
    """The municipality's verifier (its certificate, and so its client id, made once)."""
    return utrecht(world, NOW)


@pytest.fixture
def signed(world: GrantWorld, agency: VerifierAgency) -> str:
    """The trust list naming the municipality's verifier, with its grant keys."""
    doc = trust_doc(world, agency)
    entry = next(a for a in doc["agencies"] if a["id"] == UTRECHT)
    entry["jwks"]["keys"].append(format_jwk(world.grant_keys.fetch.public))
    entry["encryption_jwks"] = {"keys": [format_encryption_jwk(world.grant_keys.encryption,
                                                              kid=ENCRYPTION_KID)]}
    return sign_trust_list(doc, world.keys.anchor)


@pytest.fixture
def network(store_url: str, tmp_path: Path, world: GrantWorld, agency: VerifierAgency,
            signed: str) -> Iterator[tuple[str, Any]]:
    trust = verify_trust_list(signed, world.anchor(), now=NOW)
    with running_relay(store_url, tmp_path) as relay, running_verifier(
            store_url, tmp_path, agency=agency, trust=trust, clock=Clock(at=NOW)) as verifier:
        yield relay, verifier


@pytest.fixture
def citizen(tmp_path: Path, world: GrantWorld, signed: str) -> Iterator[Citizen]:
    opened = new_citizen(tmp_path / "citizen", world)
    set_trust_list(opened.vault, signed, world.anchor(), now=NOW)
    opened.receive(INCOME_STATEMENT)
    try:
        yield opened
    finally:
        opened.wallet.close()


def test_a_grant_request_through_the_relay_and_the_inbox(
        network: tuple[str, Any], citizen: Citizen, world: GrantWorld) -> None:
    relay, verifier = network
    vault = citizen.vault
    with HttpxTransport() as transport:
        register_relay(vault, relay, transport=transport, now=NOW)
        address = agency_address(vault, UTRECHT, transport=transport, now=NOW)
        created = verifier.create(INCOME_QUERY, grant={
            "valid_until": "2027-09-05T12:00:00Z", "fetch_kid": FETCH_KID,
            "encryption_kid": ENCRYPTION_KID})
        posted = httpx.post(address.url, json={"content_type": URI_LIST,
                                                "body": created["uri"]})
        assert posted.status_code == 202, posted.text

        collected = collect(vault, citizen.consent, mailbox_client(vault, transport=transport),
                            transport=transport, clock=lambda: NOW)
        (item,) = collected.items
        assert item.evaluation is not None and item.evaluation.status.value == "ready"
        request = item.evaluation.request
        assert request.signed and request.client_id == verifier.agency.client_id

        grant = citizen.wallet.grants.approve(request.id, relay=relay, now=NOW)
        assert grant.valid_until == datetime(2027, 9, 5, 12, tzinfo=UTC)
        report = sync_grants(citizen.wallet.grants, transport, now=NOW, clock=real_now)
        assert (report.registered, report.uploaded, report.stopped) == (1, 1, None)

        notice = parse_grant_notice(json.dumps(citizen.wallet.grants.notice(grant)))
        assert notice.request == request.id and notice.state == request.state
        keys = world.grant_keys
        fetched = fetch_item(transport, notice.relay, notice.grant, "income", agency=UTRECHT,
                             signing_key=keys.fetch, encryption_key=keys.encryption,
                             wallet_key=notice.verifying_key(), now=real_now())
        claims = {c["path"][0]: c["value"] for c in json.loads(fetched.item.content)["claims"]}
        assert set(claims) == {"income_bracket", "tax_year"}
        assert sync_grants(citizen.wallet.grants, transport, now=NOW + timedelta(hours=1),
                           clock=real_now).logged == 1
    kinds = [e["kind"] for e in citizen.entries()]
    assert kinds[-3:] == ["request_received", "grant_created", "grant_used"]
    # The verifier got no vp_token: a grant request is answered by the grant, not a release.
    assert verifier.status(created["id"])["status"] != "received"


def test_the_verifier_refuses_grant_terms_it_cannot_sign(network: tuple[str, Any]) -> None:
    _, verifier = network
    for grant in ({"valid_until": "2027-09-05T12:00:00", "fetch_kid": FETCH_KID,
                   "encryption_kid": ENCRYPTION_KID},
                  {"valid_until": "2027-09-05T12:00:00Z", "fetch_kid": FETCH_KID}):
        answer = verifier.client.post(verifier.admin_url + "/requests", json={
            "purpose": "wmo-household-help", "dcql_query": INCOME_QUERY, "grant": grant})
        assert (answer.status_code, answer.json()["code"]) == (400, "http.invalid_request")
