"""Grants in the wallet, without a network: made from a grant request the consent engine
judged, or on the citizen's initiative within the agency's registration; logged before
anything is queued; vault changes queued in their own transaction; revocation queued."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from consent_world import DEV, NOW, UTRECHT, Citizen, request_params
from grant_world import (
    ENCRYPTION_KID,
    FETCH_KID,
    GrantWorld,
    grant_request_params,
    make_grant_world,
    new_grant_citizen,
)
from values import shows_value

from vault import KluisError
from verifiers.credential_type import INCOME_STATEMENT
from verifiers.grant_notice import parse_grant_notice
from wallet.consent import Blocked, GrantRequest
from wallet.evaluation import Status as EvaluationStatus
from wallet.grant import (
    BadGrantTerms,
    BeyondRegistration,
    ChooseAgencyKey,
    Grant,
    NoGrantKeys,
    NoSuchGrant,
    NotAGrantRequest,
    Status,
)
from wallet.grant_item import ItemSpec, Source
from wallet.grant_request import BadGrantRequest, grant_element
from wallet.request import parse_request

RELAY = "http://127.0.0.1:8470"
UNTIL = NOW + timedelta(days=183)


@pytest.fixture(scope="module")
def world() -> GrantWorld:
    return make_grant_world()


@pytest.fixture
def citizen(tmp_path: Path, world: GrantWorld) -> Iterator[Citizen]:
    opened = new_grant_citizen(tmp_path / "citizen", world)
    opened.receive(INCOME_STATEMENT)
    try:
        yield opened
    finally:
        opened.wallet.close()


def _jobs(citizen: Citizen) -> list[tuple[str, str | None]]:
    rows = citizen.vault.reader().query("SELECT job, item FROM grants_outbox ORDER BY id")
    return [(str(job), None if item is None else str(item)) for job, item in rows]


def _approve_request(citizen: Citizen, **changes: object) -> Grant:
    request = parse_request(grant_request_params(**changes))
    assert citizen.consent.receive(request, now=NOW).status is EvaluationStatus.READY
    return citizen.wallet.grants.approve(request.id, relay=RELAY, now=NOW)


def _own(citizen: Citizen, *items: ItemSpec, **changes: object) -> Grant:
    options: dict[str, object] = {"agency_id": UTRECHT, "purpose_id": "wmo-household-help",
                                  "valid_until": UNTIL, "relay": RELAY, "now": NOW,
                                  "fetch_kid": FETCH_KID}
    options.update(changes)
    return citizen.wallet.grants.create(items=items, **options)  # type: ignore[arg-type]


INCOME_ITEM = ItemSpec("income-statement", Source.CREDENTIAL, INCOME_STATEMENT,
                       (("income_bracket",), ("tax_year",)))


# --- from a grant request ------------------------------------------------------------------------


def test_approving_a_grant_request_makes_a_grant_logged_before_anything_is_queued(
        citizen: Citizen) -> None:
    grant = _approve_request(citizen)
    assert (grant.agency.id, grant.valid_until, grant.status(NOW)) == (UTRECHT, UNTIL,
                                                                      Status.ACTIVE)
    # 128 random bits in hex: its start can be typed at the CLI, never read there as an option.
    assert len(grant.id) == 32 and set(grant.id) <= set("0123456789abcdef")
    (item,) = grant.items
    assert (item.spec.item, item.spec.name, item.spec.claims) == (
        "income", INCOME_STATEMENT, (("income_bracket",), ("tax_year",)))
    assert (grant.fetch_key["kid"], grant.encryption_key["kid"]) == (FETCH_KID, ENCRYPTION_KID)
    kinds = [e["kind"] for e in citizen.entries()]
    assert kinds[-2:] == ["request_received", "grant_created"]
    created = citizen.entries()[-1]
    assert created["request"] == grant.request_id and created["grant"] == grant.id
    assert created["items"] == [{"id": "income", "claims": [
        {"vct": INCOME_STATEMENT, "path": ["income_bracket"]},
        {"vct": INCOME_STATEMENT, "path": ["tax_year"]}]}]
    text = json.dumps(citizen.entries())
    assert not shows_value(text, "41250") and "30.001" not in text
    assert not shows_value(text.replace("2026-", ""), "2026")
    assert citizen.consent.find(grant.request_id or "").state.value == "approved"
    assert _jobs(citizen) == [("register", None), ("upload", "income")]


def test_a_grant_request_is_decided_once_and_never_as_a_release(citizen: Citizen) -> None:
    request = parse_request(grant_request_params())
    citizen.consent.receive(request, now=NOW)
    with pytest.raises(GrantRequest):
        citizen.consent.approve(request.id, now=NOW)
    citizen.wallet.grants.approve(request.id, relay=RELAY, now=NOW)
    with pytest.raises(KluisError) as caught:
        citizen.wallet.grants.approve(request.id, relay=RELAY, now=NOW)
    assert caught.value.code == "request.already_decided"
    assert len(citizen.wallet.grants.grants()) == 1


def test_an_over_asking_grant_request_is_blocked_like_any_request(citizen: Citizen) -> None:
    request = parse_request(grant_request_params(claims=["income_bracket", "gross_income"]))
    evaluation = citizen.consent.receive(request, now=NOW)
    assert evaluation.status is EvaluationStatus.BLOCKED
    assert evaluation.block is not None and evaluation.block.reason == "over_asking"
    with pytest.raises(Blocked):
        citizen.wallet.grants.approve(request.id, relay=RELAY, now=NOW)
    assert citizen.wallet.grants.grants() == ()
    assert [e["kind"] for e in citizen.entries()][-2:] == ["request_received",
                                                           "request_blocked"]


def test_a_one_off_request_is_not_a_grant(citizen: Citizen) -> None:
    request = parse_request(request_params())
    citizen.consent.receive(request, now=NOW)
    with pytest.raises(NotAGrantRequest):
        citizen.wallet.grants.approve(request.id, relay=RELAY, now=NOW)


@pytest.mark.parametrize("tamper", ["no_kid", "second_element", "bad_time", "bad_query_id"])
def test_malformed_grant_terms_are_refused(tamper: str) -> None:
    params = grant_request_params()
    info = params["verifier_info"]
    if tamper == "no_kid":
        del info[1]["data"]["fetch_kid"]
    elif tamper == "second_element":
        info.append(info[1])
    elif tamper == "bad_time":
        info[1]["data"]["valid_until"] = "next year"
    else:
        params["dcql_query"]["credentials"][0]["id"] = "x" * 70
    with pytest.raises(BadGrantRequest):
        grant_element(parse_request(params))


def test_an_agency_without_grant_keys_cannot_get_a_grant(citizen: Citizen) -> None:
    with pytest.raises(NoGrantKeys):
        _own(citizen, INCOME_ITEM, agency_id=DEV, fetch_kid=None)
    with pytest.raises(ChooseAgencyKey):  # its credential-signing key and its grant key
        _own(citizen, INCOME_ITEM, fetch_kid=None)
    params = grant_request_params()
    params["verifier_info"][1]["data"]["encryption_kid"] = "no-such-key"
    request = parse_request(params)
    citizen.consent.receive(request, now=NOW)
    with pytest.raises(NoGrantKeys):
        citizen.wallet.grants.approve(request.id, relay=RELAY, now=NOW)
    assert citizen.consent.find(request.id).state.value == "pending"  # nothing recorded


# --- on the citizen's initiative -----------------------------------------------------------------


def test_the_citizen_grants_a_document_and_registered_claims(citizen: Citizen) -> None:
    citizen.vault.put_attribute("zorgplan", "Hulp bij het huishouden, 4 uur", source="me")
    grant = _own(citizen, INCOME_ITEM, ItemSpec("care-plan", Source.VAULT, "zorgplan"))
    assert [i.spec.item for i in grant.items] == ["care-plan", "income-statement"]
    assert grant.purpose.id == "wmo-household-help" and grant.request_id is None
    created = citizen.entries()[-1]
    assert {"id": "care-plan", "vault_item": "zorgplan"} in created["items"]
    assert "Hulp bij" not in json.dumps(citizen.entries())
    notice = parse_grant_notice(json.dumps(citizen.wallet.grants.notice(grant)))
    assert (notice.grant, notice.relay, notice.fetch_kid) == (grant.id, RELAY, FETCH_KID)
    assert notice.verifying_key() == citizen.wallet.grants.keys(grant.id).signer.public


@pytest.mark.parametrize("claims", [(("gross_income",),), ()])
def test_claims_beyond_the_registration_are_not_granted(citizen: Citizen,
                                                        claims: tuple[tuple[str], ...]) -> None:
    with pytest.raises(BeyondRegistration):
        _own(citizen, ItemSpec("income", Source.CREDENTIAL, INCOME_STATEMENT, claims))
    assert citizen.wallet.grants.grants() == ()


def test_bad_terms_are_refused(citizen: Citizen) -> None:
    with pytest.raises(KluisError) as caught:
        _own(citizen, ItemSpec("x", Source.VAULT, "not-there"))
    assert caught.value.code == "vault.no_such_item"
    with pytest.raises(BadGrantTerms):
        _own(citizen, INCOME_ITEM, valid_until=NOW)
    with pytest.raises(BadGrantTerms):
        _own(citizen)
    with pytest.raises(KluisError) as caught:
        _own(citizen, INCOME_ITEM, relay="http://relay.example")
    assert caught.value.code == "vp.insecure_url"
    assert citizen.wallet.grants.grants() == ()


# --- the outbox ------------------------------------------------------------------------------


def test_a_change_to_a_granted_item_is_queued_in_its_own_transaction(citizen: Citizen) -> None:
    citizen.vault.put_attribute("zorgplan", "4 uur", source="me")
    grant = _own(citizen, ItemSpec("care-plan", Source.VAULT, "zorgplan"))
    before = _jobs(citizen)
    citizen.vault.put_attribute("zorgplan", "6 uur", source="me")
    citizen.vault.put_attribute("hobby", "tuinieren", source="me")
    assert _jobs(citizen) == [*before, ("upload", "care-plan")]
    with pytest.raises(RuntimeError), citizen.vault.transaction():
        citizen.vault.put_attribute("zorgplan", "8 uur", source="me")
        raise RuntimeError("the change is undone, and so is its job")
    assert _jobs(citizen) == [*before, ("upload", "care-plan")]
    citizen.vault.remove("zorgplan")
    assert _jobs(citizen)[-1] == ("upload", "care-plan")
    assert grant.status(NOW) is Status.ACTIVE


def test_revoking_queues_the_revocation_and_stops_uploads(citizen: Citizen) -> None:
    citizen.vault.put_attribute("zorgplan", "4 uur", source="me")
    grant = _own(citizen, ItemSpec("care-plan", Source.VAULT, "zorgplan"))
    revoked = citizen.wallet.grants.revoke(grant.id[:6], now=NOW)
    assert revoked.status(NOW) is Status.REVOKING
    assert _jobs(citizen) == [("register", None), ("revoke", None)]
    citizen.vault.put_attribute("zorgplan", "6 uur", source="me")
    assert _jobs(citizen) == [("register", None), ("revoke", None)]
    assert citizen.wallet.grants.revoke(grant.id, now=NOW).state == "revoking"
    with pytest.raises(NoSuchGrant):
        citizen.wallet.grants.find("zzzz")


def test_a_grant_ends_by_itself(citizen: Citizen) -> None:
    grant = _own(citizen, INCOME_ITEM)
    assert grant.status(UNTIL - timedelta(seconds=1)) is Status.ACTIVE
    assert grant.status(UNTIL) is Status.EXPIRED
