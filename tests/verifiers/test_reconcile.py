"""Reconciling a citizen's export with an agency's receipt-log export."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifiers import log_entry as le
from verifiers.audit_export import RootMismatch, write_export
from verifiers.note import Signer, format_verifier_key
from verifiers.receipt import (
    ReceiptPurpose,
    Retention,
    hash_presentation,
    issue_receipt,
    verify_receipt,
)
from verifiers.reconcile import reconcile_exports
from verifiers.tlog import MemoryLogStore, append

AGENCY = Signer.generate("utrecht.kluis.example/receipts")


def _receipt(story, rid: str, presentation_hash_of: str, claims) -> str:
    return issue_receipt(
        presentation_hash_of, verifier=story.UTRECHT.id, request_id=rid, vct=story.INCOME,
        claims=claims, purpose=ReceiptPurpose(id=story.WMO.id, dpv=story.WMO.dpv),
        legal_basis=story.BASIS, retention=Retention(duration="P2Y"),
        processing_activity="utrecht-va-0042", received_at=story.now, key=story.RECEIPT_KEY)


def _agency_export(story, tokens: list[str], target: Path) -> Path:
    store = MemoryLogStore()
    append(store, AGENCY, [le.agency_receipt(t, verify_receipt(t, story.RECEIPT_KEY))
                           for t in tokens], now=story.now)
    size = store.head().size
    write_export(target, lines=store.lines(0, size), size=size,
                 attachments=store.attachments(0, size), checkpoint=store.head().checkpoint,
                 verifier_key=format_verifier_key(AGENCY.verifier_key))
    return target


def test_a_matching_pair_is_consistent(story, tmp_path: Path) -> None:
    story.release("r1")
    story.release("r2")
    citizen = story.export(tmp_path / "citizen")
    agency = _agency_export(story, [story.tokens["r1"], story.tokens["r2"]], tmp_path / "agency")
    result = reconcile_exports(citizen, agency, agency_key=AGENCY.verifier_key)
    assert result.consistent and result.matched == 2 and result.other_receipts == 0


def test_each_side_missing_something(story, tmp_path: Path) -> None:
    story.release("r1")          # matched
    story.release("r3")          # the agency never logged it
    story.request("r4")          # the agency claims a release the citizen never made
    story.add(le.request_refused("r4", story.UTRECHT))
    forged = _receipt(story, "r4", "a presentation the citizen never sent", [("income_bracket",)])
    other = _receipt(story, "someone-else", "another citizen's release", [("income_bracket",)])
    citizen = story.export(tmp_path / "citizen")
    agency = _agency_export(story, [story.tokens["r1"], forged, other], tmp_path / "agency")
    result = reconcile_exports(citizen, agency)
    assert not result.consistent
    assert [r.request for r in result.citizen_only] == ["r3"]
    assert [r.request for r in result.agency_only] == ["r4"]
    assert result.receipts_not_logged == (verify_receipt(story.tokens["r3"],
                                                         story.RECEIPT_KEY).receipt_id,)
    assert result.other_receipts == 1 and result.matched == 1


def test_claims_that_differ(story, tmp_path: Path) -> None:
    story.request("r1")
    story.approve("r1")
    presentation = "sent string"
    story.add(le.presentation_sent("r1", story.UTRECHT, [le.SentPresentation(
        "cred-income", story.INCOME, hash_presentation(presentation), [("income_bracket",)])],
        le.Outcome.SENT))
    more = _receipt(story, "r1", presentation, [("income_bracket",), ("gross_income",)])
    citizen = story.export(tmp_path / "citizen")
    agency = _agency_export(story, [more], tmp_path / "agency")
    result = reconcile_exports(citizen, agency)
    assert len(result.claims_differ) == 1
    assert ("gross_income",) in result.claims_differ[0].record.claims


def test_what_the_credential_always_shows_is_not_a_difference(story, tmp_path: Path) -> None:
    """The citizen's log lists iss, vct, cnf, ... beside the claims asked for; the agency's
    receipt names what it asked for and kept. The two agree."""
    story.request("r1")
    story.approve("r1")
    presentation = "sent string"
    story.add(le.presentation_sent("r1", story.UTRECHT, [le.SentPresentation(
        "cred-income", story.INCOME, hash_presentation(presentation),
        [("income_bracket",), ("iss",), ("vct",), ("cnf",), ("status",), ("iat",)])],
        le.Outcome.SENT))
    receipt = _receipt(story, "r1", presentation, [("income_bracket",)])
    citizen = story.export(tmp_path / "citizen")
    agency = _agency_export(story, [receipt], tmp_path / "agency")
    result = reconcile_exports(citizen, agency)
    assert result.consistent and result.matched == 1


def test_a_tampered_side_is_refused(story, tmp_path: Path) -> None:
    story.release("r1")
    citizen = story.export(tmp_path / "citizen")
    agency = _agency_export(story, [story.tokens["r1"]], tmp_path / "agency")
    data = (agency / "entries.jsonl").read_bytes().replace(b"income_bracket", b"income_brackex")
    (agency / "entries.jsonl").write_bytes(data)
    with pytest.raises(RootMismatch):
        reconcile_exports(citizen, agency)
