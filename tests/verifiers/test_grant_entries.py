"""The grant entry kinds (``specs/consent-log.md`` §3.9): canonical entries that name the
agency, the items and the claims, and hold no value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from verifiers import log_entry as le
from verifiers.note import Signer
from verifiers.tlog import BadRecord, MemoryLogStore, append, parse_entry

UTRECHT = le.Party("https://utrecht.kluis.example", "Gemeente Utrecht", "Municipality of Utrecht")
INCOME = "https://kluis.example/vct/income-statement"
NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
PURPOSE = le.Purpose("wmo-household-help", "dpv:ServiceProvision",
                     le.LocalizedText(nl="Wmo-hulp", en="Wmo help"))
BASIS = le.LegalBasis(nl="Wmo 2015, art. 2.3.2", en="Social Support Act 2015, art. 2.3.2")


def _created(items: list[le.GrantItem]) -> le.Record:
    return le.grant_created("g" * 22, UTRECHT, purpose=PURPOSE, legal_basis=BASIS,
                            processing_activity="utrecht-va-0042",
                            valid_until=datetime(2027, 9, 5, 12, 0, tzinfo=UTC), items=items,
                            request_id="0123456789abcdef")


def test_grant_entries_are_canonical_and_name_what_they_must(log_signer: Signer) -> None:
    records = [
        _created([le.GrantItem("income", claims=[le.ClaimRef(INCOME, ("income_bracket",))]),
                  le.GrantItem("payslip", vault_item="loonstrook maart")]),
        le.grant_used("g" * 22, UTRECHT, item="income", fetch_id="f" * 22, fetched_at=NOW,
                      outcome=le.FetchOutcome.SERVED, number=1, version=2),
        le.grant_used("g" * 22, UTRECHT, item="income", fetch_id="h" * 22, fetched_at=NOW,
                      outcome=le.FetchOutcome.REFUSED, error="grant.revoked"),
        le.grant_revoked("g" * 22, UTRECHT, revoked_at=NOW, served=1),
    ]
    store = MemoryLogStore()
    done = append(store, log_signer, records, now=NOW)
    created, served, refused, revoked = (parse_entry(e.line, seq=e.seq) for e in done.entries)
    assert created["items"] == [
        {"id": "income", "claims": [{"vct": INCOME, "path": ["income_bracket"]}]},
        {"id": "payslip", "vault_item": "loonstrook maart"}]
    assert (created["valid_until"], created["request"], created["agency"]["id"]) == (
        "2027-09-05T12:00:00Z", "0123456789abcdef", UTRECHT.id)
    assert (served["outcome"], served["number"], served["version"], served["fetched_at"]) == (
        "served", 1, 2, "2027-03-05T12:00:00Z")
    assert (refused["outcome"], refused["error"]) == ("refused", "grant.revoked")
    assert "number" not in refused and "version" not in refused
    assert (revoked["served"], revoked["revoked_at"]) == (1, "2027-03-05T12:00:00Z")
    assert all(not e.openings for e in done.entries)


def test_a_grant_needs_distinct_items() -> None:
    with pytest.raises(BadRecord):
        _created([])
    with pytest.raises(BadRecord):
        _created([le.GrantItem("income", vault_item="a"), le.GrantItem("income", vault_item="b")])


def test_a_served_fetch_says_its_number_and_version() -> None:
    with pytest.raises(BadRecord):
        le.grant_used("g" * 22, UTRECHT, item="income", fetch_id="f" * 22, fetched_at=NOW,
                      outcome=le.FetchOutcome.SERVED)


def test_times_must_say_their_zone() -> None:
    with pytest.raises(BadRecord):
        le.grant_revoked("g" * 22, UTRECHT, revoked_at=datetime(2027, 3, 5), served=0)
