"""The trail in plain language: every kind has a sentence in Dutch and English; filters by
agency, claim and period; dates in the citizen's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from jwcrypto.jwk import JWK

from verifiers import LegalBasis, LocalizedText
from verifiers import log_entry as le
from verifiers.note import Signer
from verifiers.receipt import ReceiptPurpose, Retention, issue_receipt, verify_receipt
from verifiers.tlog import MemoryLogStore, Record, append, parse_entry
from wallet.trail import TrailFilter, tell
from wallet.wording import format_date

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
INCOME = "https://kluis.example/vct/income-statement"
PERSONAL = "https://kluis.example/vct/personal-data"
UTRECHT = le.Party("https://utrecht.kluis.example", "Gemeente Utrecht", "Municipality of Utrecht")
TAX = le.Party("https://belastingdienst.kluis.example", "Belastingdienst", "Tax Administration")
WMO = le.Purpose("wmo-household-help", "dpv:ServiceProvision",
                 LocalizedText(nl="Wmo huishoudelijke hulp", en="Wmo household help"))
BASIS = LegalBasis(nl="Wmo 2015 art. 2.3.2", en="Wmo 2015 art. 2.3.2")
START = datetime(2027, 3, 3, 10, 15, tzinfo=UTC)
KEY = JWK.generate(kty="OKP", crv="Ed25519", kid="u1")


def _log(*batches: tuple[datetime, list[Record]]) -> list[dict]:
    store, signer = MemoryLogStore(), Signer.generate("kluis.local/log/trail")
    for moment, records in batches:
        append(store, signer, records, now=moment)
    return [parse_entry(line) for line in store.lines(0, store.head().size)]


def _story() -> list[dict]:
    token = issue_receipt(
        "p", verifier=UTRECHT.id, request_id="r1", vct=INCOME, claims=[("income_bracket",)],
        purpose=ReceiptPurpose(id=WMO.id, dpv=WMO.dpv), legal_basis=BASIS,
        retention=Retention(duration="P2Y"), processing_activity="utrecht-va-0042",
        received_at=START, key=KEY)
    return _log(
        (START, [le.credential_received("c1", INCOME, TAX, [("income_bracket",)])]),
        (START, [le.request_received(
            "r1", UTRECHT, registered=True, purpose=WMO, legal_basis=BASIS,
            retention=Retention(duration="P2Y"), processing_activity="utrecht-va-0042",
            expires_at=START + timedelta(days=1),
            claims=[le.ClaimRef(INCOME, ("income_bracket",))])]),
        (START, [le.request_approved("r1", UTRECHT, [le.ReleasedCredential(
            "c1", INCOME, [(("income_bracket",), "modal")])])]),
        (START, [le.presentation_sent("r1", UTRECHT, [le.SentPresentation(
            "c1", INCOME, "h" * 43, [("income_bracket",)])], le.Outcome.SENT)]),
        (START, [le.receipt_received("r1", token, verify_receipt(token, KEY))]),
        (START + timedelta(days=30), [
            le.request_received(
                "r2", le.Party("https://shop.example"), registered=False, purpose=WMO,
                legal_basis=BASIS, retention=Retention(until="2027-12-31"),
                processing_activity="x", expires_at=START + timedelta(days=31),
                claims=[le.ClaimRef(PERSONAL, ("family_name",)),
                        le.ClaimRef(PERSONAL, ("bsn",))]),
            le.request_blocked("r2", le.Party("https://shop.example"),
                               le.BlockReason.OVER_ASKING, [le.ClaimRef(PERSONAL, ("bsn",))]),
            le.request_refused("r3", UTRECHT),
            le.presentation_sent("r4", UTRECHT, [le.SentPresentation(
                "c1", INCOME, "h" * 43, [("tax_year",)])], le.Outcome.FAILED, "net.down"),
        ]),
        (datetime(2027, 4, 30, 23, 30, tzinfo=UTC), [
            le.item_event(le.Kind.ITEM_ADDED, "income-2026", "document", "application/pdf",
                          9, "ab" * 32),
            le.item_event(le.Kind.ITEM_CHANGED, "income-2026", "document", "application/pdf",
                          9, "ab" * 32),
            le.item_event(le.Kind.ITEM_REMOVED, "income-2026", "document", "application/pdf",
                          9, "ab" * 32),
            le.key_rotated(le.KeyRole.LOG, "new"),
            le.key_rotated(le.KeyRole.HOLDER, "new"),
            le.export_made(le.ExportKind.AUDIT),
            le.export_made(le.ExportKind.ARCHIVE),
            Record("session_opened", {"session": "s1"}),
        ]),
    )


EN = [
    "3 March 2027 — You stored the credential 'Income statement' from Tax Administration.",
    "3 March 2027 — Municipality of Utrecht asked for your income bracket for 'Wmo household "
    "help' (legal basis: Wmo 2015 art. 2.3.2).",
    "3 March 2027 — You agreed that Municipality of Utrecht may receive your income bracket.",
    "3 March 2027 — Municipality of Utrecht received your income bracket for 'Wmo household "
    "help' (legal basis: Wmo 2015 art. 2.3.2); they keep it until 3 March 2029.",
    "3 March 2027 — Municipality of Utrecht confirmed with a signed receipt that they received "
    "your income bracket.",
    "2 April 2027 — The organisation https://shop.example asked for your family name and "
    "citizen service number (BSN) for 'Wmo household help' (legal basis: Wmo 2015 art. "
    "2.3.2). Warning: the organisation https://shop.example is not registered for this "
    "purpose.",
    "2 April 2027 — kluis stopped a request from the organisation https://shop.example: they "
    "asked for more "
    "than they are allowed to ask. Asked for too much: citizen service number (BSN). Nothing "
    "was sent.",
    "2 April 2027 — You refused the request from Municipality of Utrecht. Nothing was sent.",
    "2 April 2027 — Sending your tax year to Municipality of Utrecht failed.",
    "1 May 2027 — You added 'income-2026' to your vault.",
    "1 May 2027 — You changed 'income-2026' in your vault.",
    "1 May 2027 — You removed 'income-2026' from your vault.",
    "1 May 2027 — kluis replaced the key that signs your log.",
    "1 May 2027 — kluis replaced the key of your wallet.",
    "1 May 2027 — You exported your log for an auditor.",
    "1 May 2027 — You exported your whole vault.",
    "1 May 2027 — An event this version of kluis does not know ('session_opened').",
]

NL = [
    "3 maart 2027 — U hebt het bewijs 'Inkomensverklaring' van Belastingdienst opgeslagen.",
    "3 maart 2027 — Gemeente Utrecht vroeg om uw inkomensklasse voor 'Wmo huishoudelijke "
    "hulp' (grondslag: Wmo 2015 art. 2.3.2).",
    "3 maart 2027 — U gaf Gemeente Utrecht toestemming om uw inkomensklasse te ontvangen.",
    "3 maart 2027 — Gemeente Utrecht heeft uw inkomensklasse ontvangen voor 'Wmo "
    "huishoudelijke hulp' (grondslag: Wmo 2015 art. 2.3.2); zij bewaren dit tot 3 maart 2029.",
    "3 maart 2027 — Gemeente Utrecht bevestigde met een ondertekend ontvangstbewijs dat zij "
    "uw inkomensklasse hebben ontvangen.",
    "2 april 2027 — De organisatie https://shop.example vroeg om uw achternaam en "
    "burgerservicenummer (BSN) voor 'Wmo huishoudelijke hulp' (grondslag: Wmo 2015 art. "
    "2.3.2). Let op: de organisatie https://shop.example is niet geregistreerd voor dit doel.",
    "2 april 2027 — kluis hield een verzoek van de organisatie https://shop.example tegen: "
    "zij vroegen om "
    "meer dan zij mogen vragen. Te veel gevraagd: burgerservicenummer (BSN). Er is niets "
    "verstuurd.",
    "2 april 2027 — U weigerde het verzoek van Gemeente Utrecht. Er is niets verstuurd.",
    "2 april 2027 — Het versturen van uw belastingjaar aan Gemeente Utrecht is mislukt.",
    "1 mei 2027 — U hebt 'income-2026' aan uw kluis toegevoegd.",
    "1 mei 2027 — U hebt 'income-2026' in uw kluis gewijzigd.",
    "1 mei 2027 — U hebt 'income-2026' uit uw kluis verwijderd.",
    "1 mei 2027 — kluis heeft de sleutel vervangen waarmee uw logboek wordt ondertekend.",
    "1 mei 2027 — kluis heeft de sleutel van uw wallet vervangen.",
    "1 mei 2027 — U hebt uw logboek geëxporteerd voor een controleur.",
    "1 mei 2027 — U hebt uw hele kluis geëxporteerd.",
    "1 mei 2027 — Een gebeurtenis die deze versie van kluis niet kent ('session_opened').",
]


@pytest.mark.parametrize(("lang", "expected"), [("en", EN), ("nl", NL)])
def test_every_kind_is_told(lang: str, expected: list[str]) -> None:
    assert [s.text for s in tell(_story(), lang=lang, zone=AMSTERDAM)] == expected


def test_dates_are_local() -> None:
    """23:30 UTC on 30 April is 1 May in Amsterdam (summer time)."""
    last = list(tell(_story(), lang="en", zone=UTC))[-1]
    assert last.text.startswith("30 April 2027")
    assert format_date(date(2027, 12, 1), "nl") == "1 december 2027"


def test_filter_by_agency_claim_and_period() -> None:
    entries = _story()
    by_agency = [s.seq for s in tell(entries, only=TrailFilter(agency="gemeente utrecht"))]
    assert by_agency == [1, 2, 3, 4, 7, 8]
    by_claim = [s.seq for s in tell(entries, only=TrailFilter(claim="income_bracket"))]
    assert by_claim == [0, 1, 2, 3, 4]
    by_label = [s.seq for s in tell(entries, lang="en", only=TrailFilter(claim="BSN"))]
    assert by_label == [5, 6]
    april = TrailFilter(since=date(2027, 4, 1), until=date(2027, 4, 30))
    assert [s.seq for s in tell(entries, zone=AMSTERDAM, only=april)] == [5, 6, 7, 8]


def test_entries_missing_their_parts_still_get_a_sentence() -> None:
    bare = [{"kind": "presentation_sent", "seq": 0, "time": "2027-03-03T10:15:00Z",
             "outcome": "sent"},
            {"kind": "request_approved", "seq": 1, "time": "garbage"}]
    texts = [s.text for s in tell(bare, lang="en")]
    assert texts == ["3 March 2027 — An unknown organisation received your data.",
                     "1 January 1970 — You agreed that an unknown organisation may receive "
                     "your data."]


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "3 March 2027 — Municipality of Utrecht received your income bracket (with the "
           "document details that always go along) for 'Wmo household help'"),
    ("nl", "3 maart 2027 — Gemeente Utrecht heeft uw inkomensklasse (met de gegevens die altijd "
           "meegaan met een bewijs) ontvangen voor 'Wmo huishoudelijke hulp'"),
])
def test_claims_every_document_shows_are_named_once_as_a_group(lang: str, expected: str) -> None:
    """A real release also carries iss, dates, cnf and status; the citizen reads what they
    shared, not a list of technical claims."""
    technical = [("iss",), ("iat",), ("exp",), ("vct",), ("cnf",), ("status",)]
    entries = _log(
        (START, [le.request_received(
            "r1", UTRECHT, registered=True, purpose=WMO, legal_basis=BASIS,
            retention=Retention(duration="P2Y"), processing_activity="utrecht-va-0042",
            expires_at=START + timedelta(days=1),
            claims=[le.ClaimRef(INCOME, ("income_bracket",))])]),
        (START, [le.presentation_sent("r1", UTRECHT, [le.SentPresentation(
            "c1", INCOME, "h" * 43, [("income_bracket",), *technical])], le.Outcome.SENT)]))
    told = [s.text for s in tell(entries, lang=lang, zone=AMSTERDAM)]
    assert told[1].startswith(expected), told[1]
    assert "holder" not in told[1] and "houder" not in told[1]
