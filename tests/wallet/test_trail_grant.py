"""Grants told in plain language (B1), Dutch and English: given, read, refused, stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from verifiers import LegalBasis, LocalizedText
from verifiers import log_entry as le
from verifiers.note import Signer
from verifiers.tlog import MemoryLogStore, Record, append, parse_entry
from wallet.trail import TrailFilter, tell

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
INCOME = "https://kluis.example/vct/income-statement"
UTRECHT = le.Party("https://utrecht.kluis.example", "Gemeente Utrecht", "Municipality of Utrecht")
WMO = le.Purpose("wmo-household-help", "dpv:ServiceProvision",
                 LocalizedText(nl="Wmo huishoudelijke hulp", en="Wmo household help"))
BASIS = LegalBasis(nl="Wmo 2015 art. 2.3.2", en="Wmo 2015 art. 2.3.2")
START = datetime(2027, 3, 5, 10, 0, tzinfo=UTC)
GRANT = "g" * 22


def _entries() -> list[dict]:
    store, signer = MemoryLogStore(), Signer.generate("kluis.local/log/trail")
    batches: list[tuple[datetime, list[Record]]] = [
        (START, [le.grant_created(
            GRANT, UTRECHT, purpose=WMO, legal_basis=BASIS, processing_activity="utrecht-va-0042",
            valid_until=START + timedelta(days=183),
            items=[le.GrantItem("income", claims=[le.ClaimRef(INCOME, ("income_bracket",)),
                                                  le.ClaimRef(INCOME, ("tax_year",))]),
                   le.GrantItem("care-plan", vault_item="zorgplan")])]),
        # Synced two days later: told at the moment of the read itself.
        (START + timedelta(days=2), [
            le.grant_used(GRANT, UTRECHT, item="income", fetch_id="f1" * 11,
                          fetched_at=START + timedelta(days=1), outcome=le.FetchOutcome.SERVED,
                          number=1, version=1),
            le.grant_used(GRANT, UTRECHT, item="care-plan", fetch_id="f2" * 11,
                          fetched_at=START + timedelta(days=1), outcome=le.FetchOutcome.SERVED,
                          number=2, version=1)]),
        (START + timedelta(days=3), [
            le.grant_revoked(GRANT, UTRECHT, revoked_at=START + timedelta(days=3), served=2),
            le.grant_used(GRANT, UTRECHT, item="income", fetch_id="f3" * 11,
                          fetched_at=START + timedelta(days=3, hours=1),
                          outcome=le.FetchOutcome.REFUSED, error="grant.revoked")]),
    ]
    for moment, records in batches:
        append(store, signer, records, now=moment)
    return [parse_entry(line) for line in store.lines(0, store.head().size)]


EN = [
    "5 March 2027 — You gave Municipality of Utrecht access to your income bracket, tax year "
    "and 'zorgplan' for 'Wmo household help' (legal basis: Wmo 2015 art. 2.3.2), until "
    "4 September 2027. Until then they can read it whenever they need it, and you can stop "
    "this at any moment.",
    "6 March 2027 — Municipality of Utrecht read your income bracket and tax year.",
    "6 March 2027 — Municipality of Utrecht read your 'zorgplan'.",
    "8 March 2027 — You stopped the access of Municipality of Utrecht to your income bracket, "
    "tax year and 'zorgplan'. Nothing more can be read; they read it 2 times.",
    "8 March 2027 — Municipality of Utrecht tried to read your income bracket and tax year, "
    "but this was refused: you had stopped their access.",
]
NL = [
    "5 maart 2027 — U gaf Gemeente Utrecht inzage in uw inkomensklasse, belastingjaar en "
    "'zorgplan' voor 'Wmo huishoudelijke hulp' (grondslag: Wmo 2015 art. 2.3.2), tot "
    "4 september 2027. Tot dan kunnen zij het inzien wanneer zij het nodig hebben. U kunt "
    "dit op elk moment stoppen.",
    "6 maart 2027 — Gemeente Utrecht heeft uw inkomensklasse en belastingjaar ingezien.",
    "6 maart 2027 — Gemeente Utrecht heeft uw 'zorgplan' ingezien.",
    "8 maart 2027 — U hebt de inzage van Gemeente Utrecht in uw inkomensklasse, "
    "belastingjaar en 'zorgplan' gestopt. Er kan niets meer worden ingezien; zij hebben het "
    "2 keer ingezien.",
    "8 maart 2027 — Gemeente Utrecht probeerde uw inkomensklasse en belastingjaar in te zien, "
    "maar dat werd geweigerd: u had de inzage gestopt.",
]


@pytest.mark.parametrize(("lang", "expected"), [("en", EN), ("nl", NL)])
def test_a_grant_is_told_from_start_to_end(lang: str, expected: list[str]) -> None:
    assert [s.text for s in tell(_entries(), lang=lang, zone=AMSTERDAM)] == expected


def test_grant_sentences_filter_by_agency_claim_and_moment() -> None:
    entries = _entries()
    assert [s.seq for s in tell(entries, only=TrailFilter(agency="utrecht"))] == [0, 1, 2, 3, 4]
    assert [s.seq for s in tell(entries, only=TrailFilter(claim="tax_year"))] == [0, 1, 3, 4]
    used = [s for s in tell(entries) if s.kind == "grant_used"]
    assert used[0].time == START + timedelta(days=1)


def test_refusals_without_a_known_reason_and_unknown_grants_still_read() -> None:
    bare = [{"kind": "grant_used", "seq": 0, "time": "2027-03-05T10:00:00Z", "grant": "x",
             "agency": {"id": "https://a.example"}, "item": "income", "outcome": "refused",
             "error": "httpsig.replayed", "fetched_at": "2027-03-05T09:00:00Z"}]
    (sentence,) = tell(bare, lang="en")
    assert sentence.text == ("5 March 2027 — The organisation https://a.example tried to read "
                             "your data ('income'), but this was refused: this was not "
                             "allowed.")
