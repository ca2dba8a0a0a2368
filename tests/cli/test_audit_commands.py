"""``kluis audit``: show in both languages, export, verify (exit codes per tamper), replay
(0 clean, 1 violations, 2 unreadable), open + check-opening, reconcile, --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from values import shows_value

from verifiers import LegalBasis, LocalizedText
from verifiers import log_entry as le
from verifiers.receipt import Retention
from wallet import open_wallet

PASSPHRASE = "correct horse battery staple"
UTRECHT = le.Party("https://utrecht.kluis.example", "Gemeente Utrecht", "Municipality of Utrecht")
INCOME = "https://kluis.example/vct/income-statement"
WHEN = datetime(2027, 3, 3, 10, 15, tzinfo=UTC)


def _release(home: Path, rid: str, *, sent_claims=(("income_bracket",),)) -> None:
    """A request, its approval and its release, written through the wallet's log."""
    with open_wallet(home, PASSPHRASE) as wallet:
        wallet.log.append([le.request_received(
            rid, UTRECHT, registered=True,
            purpose=le.Purpose("wmo", "dpv:ServiceProvision", LocalizedText(
                nl="Wmo huishoudelijke hulp", en="Wmo household help")),
            legal_basis=LegalBasis(nl="Wmo 2015 art. 2.3.2", en="Wmo 2015 art. 2.3.2"),
            retention=Retention(duration="P2Y"), processing_activity="utrecht-va-0042",
            expires_at=WHEN + timedelta(days=1),
            claims=[le.ClaimRef(INCOME, ("income_bracket",))])], now=WHEN)
        wallet.log.append([le.request_approved(rid, UTRECHT, [le.ReleasedCredential(
            "c1", INCOME, [(("income_bracket",), "modal")])])], now=WHEN)
        wallet.log.append([le.presentation_sent(rid, UTRECHT, [le.SentPresentation(
            "c1", INCOME, "h" * 43, sent_claims)], le.Outcome.SENT)], now=WHEN)


@pytest.fixture
def logged(profile: Path, kluis) -> Path:
    assert kluis("vault", "put", "income-2026", "--value", "31500").exit_code == 0
    _release(profile, "r1")
    return profile


def test_show_in_english_and_dutch(logged: Path, kluis) -> None:
    en = kluis("audit", "show").output
    assert "You added 'income-2026' to your vault." in en
    assert ("3 March 2027 — Municipality of Utrecht received your income bracket for 'Wmo "
            "household help' (legal basis: Wmo 2015 art. 2.3.2); they keep it until 3 March "
            "2029.") in en
    nl = kluis("audit", "show", lang="nl").output
    assert ("3 maart 2027 — Gemeente Utrecht heeft uw inkomensklasse ontvangen voor 'Wmo "
            "huishoudelijke hulp' (grondslag: Wmo 2015 art. 2.3.2); zij bewaren dit tot 3 "
            "maart 2029.") in nl
    assert not shows_value(en + nl, "31500")


def test_show_filters_and_json(logged: Path, kluis) -> None:
    result = kluis("audit", "show", "--agency", "utrecht", "--since", "2027-03-01",
                   "--until", "2027-03-31", "--json")
    rows = json.loads(result.output)
    assert [r["kind"] for r in rows] == ["request_received", "request_approved",
                                         "presentation_sent"]
    assert kluis("audit", "show", "--claim", "gross_income").output.strip() == (
        "Nothing in your log matches.")
    bad = kluis("audit", "show", "--since", "March")
    assert bad.exit_code == 3 and "audit.bad_date" in bad.output


def test_export_verify_replay_clean(logged: Path, kluis, tmp_path: Path) -> None:
    assert kluis("audit", "export", str(tmp_path / "e")).exit_code == 0
    verified = kluis("audit", "verify", str(tmp_path / "e"), "--json")
    assert verified.exit_code == 0 and json.loads(verified.output)["size"] == 5
    key = json.loads(verified.output)["verifier_key"]
    assert kluis("audit", "verify", str(tmp_path / "e"), "--key", key).exit_code == 0
    replayed = kluis("audit", "replay", str(tmp_path / "e"))
    assert replayed.exit_code == 0 and "No rule was broken." in replayed.output
    assert kluis("audit", "export", str(tmp_path / "e")).exit_code == 5  # vault.file_exists


def test_verify_exit_codes_for_tampers(logged: Path, kluis, tmp_path: Path) -> None:
    kluis("audit", "export", str(tmp_path / "e"))
    first = kluis("audit", "verify", str(tmp_path / "e"), "--json")
    entries = tmp_path / "e" / "entries.jsonl"
    entries.write_bytes(entries.read_bytes().replace(b"income-2026", b"income-2027"))
    edited = kluis("audit", "verify", str(tmp_path / "e"))
    assert edited.exit_code == 7 and "audit.root_mismatch" in edited.output
    (tmp_path / "e" / "log.vkey").unlink()
    missing = kluis("audit", "verify", str(tmp_path / "e"))
    assert missing.exit_code == 4 and "audit.missing_file" in missing.output
    other = "kluis.local/log/x+00000000+AUCmcbAeF1RoMNHXkWBSvcfKHz0E1NvXWCIHR3AfTNn5"
    assert kluis("audit", "verify", str(tmp_path / "e"), "--key", other).exit_code in (3, 7)
    assert json.loads(first.output)["ok"] is True


def test_verify_since_an_earlier_checkpoint_and_rollback(logged: Path, kluis,
                                                         tmp_path: Path) -> None:
    kluis("audit", "export", str(tmp_path / "old"))
    _release(logged, "r2")
    kluis("audit", "export", str(tmp_path / "new.tar"))
    newer = kluis("audit", "verify", str(tmp_path / "new.tar"), "--since",
                  str(tmp_path / "old" / "checkpoint"))
    assert newer.exit_code == 0 and "extends" in newer.output
    rolled = kluis("audit", "verify", str(tmp_path / "old"), "--since",
                   str(tmp_path / "new.tar"))  # not a checkpoint file at all
    assert rolled.exit_code != 0
    assert kluis("audit", "export", str(tmp_path / "latest")).exit_code == 0
    back = kluis("audit", "verify", str(tmp_path / "old"), "--since",
                 str(tmp_path / "latest" / "checkpoint"))
    assert back.exit_code == 7 and "audit.rollback" in back.output


def test_replay_reports_violations_with_exit_1(profile: Path, kluis, tmp_path: Path) -> None:
    _release(profile, "r1", sent_claims=(("income_bracket",), ("gross_income",)))
    kluis("audit", "export", str(tmp_path / "e"))
    result = kluis("audit", "replay", str(tmp_path / "e"), "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [f["violation"] for f in report["findings"]] == ["release_beyond_approval"]
    nl = kluis("audit", "replay", str(tmp_path / "e"), lang="nl")
    assert nl.exit_code == 1 and "er zijn meer gegevens verstuurd dan goedgekeurd" in nl.output


def test_replay_of_an_unreadable_export_exits_2(logged: Path, kluis, tmp_path: Path) -> None:
    kluis("audit", "export", str(tmp_path / "e"))
    (tmp_path / "e" / "checkpoint").write_text("not a note")
    result = kluis("audit", "replay", str(tmp_path / "e"))
    assert result.exit_code == 2 and "note.malformed" in result.output
    assert kluis("audit", "replay", str(tmp_path / "nowhere"), "--json").exit_code == 2


def test_open_and_check_opening(logged: Path, kluis, tmp_path: Path) -> None:
    kluis("audit", "export", str(tmp_path / "e"))
    rows = json.loads(kluis("audit", "show", "--json").output)
    seq = next(r["seq"] for r in rows if r["kind"] == "request_approved")
    assert kluis("audit", "open", str(seq), "--out", str(tmp_path / "o.json")).exit_code == 0
    checked = kluis("audit", "check-opening", str(tmp_path / "e"), str(tmp_path / "o.json"),
                    "--json")
    assert checked.exit_code == 0
    assert json.loads(checked.output)["values"] == [{
        "credential": "c1", "vct": INCOME, "path": ["income_bracket"], "value": "modal"}]
    opening = json.loads((tmp_path / "o.json").read_text())
    opening["openings"] = [opening["openings"][0][:-2] + "AA"]
    (tmp_path / "bad.json").write_text(json.dumps(opening))
    bad = kluis("audit", "check-opening", str(tmp_path / "e"), str(tmp_path / "bad.json"))
    assert bad.exit_code == 7 and "audit.bad_opening" in bad.output
    assert kluis("audit", "open", "999").exit_code == 4


def test_reconcile_exits_1_when_the_agency_has_no_record(logged: Path, kluis,
                                                         tmp_path: Path) -> None:
    """A citizen export holds no receipt entries: as 'agency' side it records nothing."""
    kluis("audit", "export", str(tmp_path / "c"))
    result = kluis("audit", "reconcile", str(tmp_path / "c"), str(tmp_path / "c"), "--json")
    data = json.loads(result.output)
    assert result.exit_code == 1 and data["citizen_only"][0]["request"] == "r1"
