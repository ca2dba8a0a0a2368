"""The policy replay: a clean log is clean; each violation, constructed on purpose, is found
with its code; receipts and trust lists must match the entries naming them; unreadable
exports fail with an error (the CLI's exit 2); memory stays bounded."""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import KluisError
from verifiers import log_entry as le
from verifiers.audit_export import BadExport, RootMismatch
from verifiers.merkle import hash_leaf
from verifiers.receipt import (
    ReceiptPurpose,
    Retention,
    hash_presentation,
    issue_receipt,
    verify_receipt,
)
from verifiers.replay import AttachmentMismatch, Replayer, Violation, replay_export
from verifiers.tlog import BadEntry, Record, parse_entry


def _replay(story, tmp_path: Path, name: str = "export"):
    return replay_export(story.export(tmp_path / name))


def _violations(report) -> list[Violation]:
    return [f.violation for f in report.findings]


def test_a_clean_log_is_clean(story, tmp_path: Path) -> None:
    story.release("r1")
    story.request("r2")
    story.add(le.request_refused("r2", story.UTRECHT))
    story.add(le.request_blocked("r3", story.UTRECHT, le.BlockReason.NOT_REGISTERED))
    story.request("r4", trust=True)
    story.approve("r4")
    story.send("r4")
    story.add(Record("future_kind", {"anything": [1, 2]}))
    report = _replay(story, tmp_path)
    assert report.clean, report.findings
    assert (report.requests, report.releases, report.receipts) == (3, 2, 2)
    assert report.kinds["future_kind"] == 1
    assert report.export is not None and report.export.checkpoint.size == report.entries


def test_a_failed_send_then_a_retry_is_one_release(story, tmp_path: Path) -> None:
    story.request("r1")
    story.approve("r1")
    story.send("r1", outcome=le.Outcome.FAILED)
    story.send("r1")
    assert _replay(story, tmp_path).clean


def test_approved_but_never_sent_is_counted_not_a_violation(story, tmp_path: Path) -> None:
    story.request("r1")
    story.approve("r1")
    report = _replay(story, tmp_path)
    assert report.clean and report.awaiting_outcome == 1


# --- each violation ------------------------------------------------------------------------------


def test_release_without_approval(story, tmp_path: Path) -> None:
    story.request("r1")
    story.send("r1")
    assert _violations(_replay(story, tmp_path)) == [Violation.RELEASE_WITHOUT_APPROVAL]


def test_release_for_an_unknown_request(story, tmp_path: Path) -> None:
    story.send("ghost", receipt=False)
    assert _violations(_replay(story, tmp_path)) == [Violation.RELEASE_WITHOUT_APPROVAL]


def test_release_beyond_approval(story, tmp_path: Path) -> None:
    both = (("income_bracket",), ("gross_income",))
    story.request("r1", claims=both)
    story.approve("r1", claims=(("income_bracket",),))
    story.send("r1", claims=both, receipt=False)
    report = _replay(story, tmp_path)
    assert _violations(report) == [Violation.RELEASE_BEYOND_APPROVAL]
    assert "gross_income" in report.findings[0].detail and report.findings[0].request == "r1"


def test_a_part_of_an_approved_object_is_within_the_approval(story, tmp_path: Path) -> None:
    story.request("r1", claims=(("income_bracket",),))
    story.approve("r1", claims=(("income_bracket",),))
    story.send("r1", claims=(("income_bracket", "code"),))
    assert _replay(story, tmp_path).clean


def test_release_to_a_blocked_verifier(story, tmp_path: Path) -> None:
    story.request("r1")
    story.add(le.request_blocked("r1", story.UTRECHT, le.BlockReason.OVER_ASKING))
    story.send("r1", receipt=False)
    assert _violations(_replay(story, tmp_path)) == [Violation.RELEASE_TO_BLOCKED_VERIFIER]


def test_release_to_an_unregistered_verifier(story, tmp_path: Path) -> None:
    story.request("r1", registered=False)
    story.approve("r1")
    story.send("r1")
    assert _violations(_replay(story, tmp_path)) == [Violation.RELEASE_TO_UNREGISTERED_VERIFIER]


def test_release_after_expiry(story, tmp_path: Path) -> None:
    story.request("r1", expires=timedelta(minutes=10))
    story.approve("r1")
    story.add(Record("example", {}), later=timedelta(hours=1))
    story.send("r1")
    assert _violations(_replay(story, tmp_path)) == [Violation.RELEASE_AFTER_EXPIRY]


def test_approval_and_release_after_expiry(story, tmp_path: Path) -> None:
    story.request("r1", expires=timedelta(minutes=10))
    story.add(Record("example", {}), later=timedelta(hours=1))
    story.approve("r1")
    story.send("r1", receipt=False)
    assert _violations(_replay(story, tmp_path)) == [Violation.APPROVAL_AFTER_EXPIRY,
                                                     Violation.RELEASE_AFTER_EXPIRY]


def test_release_after_refusal(story, tmp_path: Path) -> None:
    story.request("r1")
    story.add(le.request_refused("r1", story.UTRECHT))
    story.send("r1", receipt=False)
    assert _violations(_replay(story, tmp_path)) == [Violation.RELEASE_AFTER_REFUSAL]


def test_second_release_on_one_approval(story, tmp_path: Path) -> None:
    story.release("r1")
    story.send("r1")
    assert _violations(_replay(story, tmp_path)) == [Violation.SECOND_RELEASE]


def test_second_release_while_the_first_awaits_its_receipt(story, tmp_path: Path) -> None:
    story.request("r1")
    story.approve("r1")
    story.send("r1", receipt=False)
    story.send("r1", receipt=False)
    assert _violations(_replay(story, tmp_path)) == [Violation.SECOND_RELEASE]


def test_release_to_another_verifier(story, tmp_path: Path) -> None:
    story.request("r1")
    story.approve("r1")
    other = le.Party("https://elsewhere.kluis.example")
    story.add(le.presentation_sent("r1", other, [le.SentPresentation(
        "c", story.INCOME, "h" * 43, [("income_bracket",)])], le.Outcome.SENT))
    assert _violations(_replay(story, tmp_path)) == [Violation.RELEASE_TO_OTHER_VERIFIER]


def test_release_beyond_the_registration_in_the_trust_list(story, tmp_path: Path) -> None:
    both = (("income_bracket",), ("gross_income",))
    story.request("r1", claims=both, trust=True)  # the wallet said: registered
    story.approve("r1", claims=both)
    story.send("r1", claims=both)
    report = _replay(story, tmp_path)
    assert _violations(report) == [Violation.RELEASE_BEYOND_REGISTRATION]
    assert "gross_income" in report.findings[0].detail


def test_approval_without_request(story, tmp_path: Path) -> None:
    story.approve("r1")
    story.send("r1")
    assert _violations(_replay(story, tmp_path)) == [Violation.APPROVAL_WITHOUT_REQUEST]


def test_approval_beyond_request(story, tmp_path: Path) -> None:
    story.request("r1", claims=(("income_bracket",),))
    story.approve("r1", claims=(("income_bracket",), ("tax_year",)))
    assert _violations(_replay(story, tmp_path)) == [Violation.APPROVAL_BEYOND_REQUEST]


ALWAYS = (("iss",), ("iat",), ("exp",), ("vct",), ("status",), ("cnf",))


def test_what_a_credential_always_shows_is_not_beyond_request_or_registration(
    story, tmp_path: Path
) -> None:
    """A real wallet approves and sends the claims the holder cannot withhold (iss, vct,
    cnf, ...) beside the ones asked for; that is not a violation."""
    asked = (("income_bracket",),)
    story.request("r1", claims=asked, trust=True)
    story.approve("r1", claims=asked + ALWAYS)
    story.send("r1", claims=asked + ALWAYS)
    report = _replay(story, tmp_path)
    assert report.clean, report.findings


def test_an_always_shown_name_deeper_in_a_claim_is_still_beyond(story, tmp_path: Path) -> None:
    story.request("r1", claims=(("income_bracket",),))
    story.approve("r1", claims=(("income_bracket",), ("tax_year", "iss")))
    assert _violations(_replay(story, tmp_path)) == [Violation.APPROVAL_BEYOND_REQUEST]


def test_approval_after_a_refusal_and_twice(story, tmp_path: Path) -> None:
    story.request("r1")
    story.add(le.request_refused("r1", story.UTRECHT))
    story.approve("r1")
    story.request("r2")
    story.approve("r2")
    story.approve("r2")
    assert _violations(_replay(story, tmp_path)) == [Violation.APPROVAL_AFTER_DECISION,
                                                     Violation.APPROVAL_AFTER_DECISION]


def test_request_id_reused(story, tmp_path: Path) -> None:
    story.release("r1")
    story.request("r1")
    assert _violations(_replay(story, tmp_path)) == [Violation.REQUEST_REUSED]


def test_receipt_without_release(story, tmp_path: Path) -> None:
    story.release("r1")
    token = story.tokens["r1"]
    story.add(le.receipt_received("r9", token, verify_receipt(token, story.RECEIPT_KEY)))
    assert _violations(_replay(story, tmp_path)) == [Violation.RECEIPT_WITHOUT_RELEASE]


def test_receipt_beyond_release(story, tmp_path: Path) -> None:
    """The agency signs for more than the presentation carried."""
    story.request("r1")
    story.approve("r1")
    presentation = "the presentation"
    story.add(le.presentation_sent("r1", story.UTRECHT, [le.SentPresentation(
        "cred-income", story.INCOME, hash_presentation(presentation), [("income_bracket",)])],
        le.Outcome.SENT))
    token = issue_receipt(
        presentation, verifier=story.UTRECHT.id, request_id="r1", vct=story.INCOME,
        claims=[("income_bracket",), ("gross_income",)],
        purpose=ReceiptPurpose(id=story.WMO.id, dpv=story.WMO.dpv), legal_basis=story.BASIS,
        retention=Retention(duration="P2Y"), processing_activity="utrecht-va-0042",
        received_at=story.now, key=story.RECEIPT_KEY)
    story.add(le.receipt_received("r1", token, verify_receipt(token, story.RECEIPT_KEY)))
    assert _violations(_replay(story, tmp_path)) == [Violation.RECEIPT_BEYOND_RELEASE]


# --- the core on its own --------------------------------------------------------------------


def test_finished_requests_shrink_to_flags(story) -> None:
    replayer = Replayer()
    for i in range(3000):
        story.release(f"r{i}")
    for seq, line in enumerate(story.store.lines(0, story.store.head().size)):
        replayer.feed(parse_entry(line, seq=seq))
    assert replayer.report().clean
    assert len(replayer._open) == 0 and len(replayer._closed) == 3000


def test_expired_requests_are_swept(story) -> None:
    replayer = Replayer()
    for i in range(5000):
        story.request(f"r{i}", expires=timedelta(seconds=30))
    for seq, line in enumerate(story.store.lines(0, story.store.head().size)):
        replayer.feed(parse_entry(line, seq=seq))
    assert len(replayer._open) < 4096


# --- unreadable --------------------------------------------------------------------------------


def test_a_known_kind_without_its_members_is_unreadable(story, tmp_path: Path) -> None:
    story.add(Record("presentation_sent", {"request": "r1"}))
    with pytest.raises(BadEntry):
        _replay(story, tmp_path)


def test_a_non_canonical_line_is_unreadable_even_with_a_matching_checkpoint(
    story, tmp_path: Path
) -> None:
    story.add(Record("example", {}))
    story.store._lines[0] = story.store._lines[0].replace(b'"kind"', b' "kind"')
    story.store._leaves[0] = hash_leaf(story.store._lines[0])
    path = tmp_path / "e"
    story.export(path, size=1)
    with pytest.raises(BadEntry):
        replay_export(path)


def test_integrity_is_checked_too(story, tmp_path: Path) -> None:
    story.release("r1")
    path = story.export(tmp_path / "e")
    lines = (path / "entries.jsonl").read_bytes().replace(b"income_bracket", b"income_brackex")
    (path / "entries.jsonl").write_bytes(lines)
    with pytest.raises(RootMismatch):
        replay_export(path)


def test_a_changed_receipt_is_caught(story, tmp_path: Path) -> None:
    story.release("r1")
    path = story.export(tmp_path / "e")
    data = bytearray((path / "receipts.jsonl").read_bytes())
    inside_token = data.rindex(b'"}') - 5
    data[inside_token] = ord("A") if data[inside_token] != ord("A") else ord("B")
    (path / "receipts.jsonl").write_bytes(bytes(data))
    with pytest.raises(AttachmentMismatch):
        replay_export(path)


def test_a_missing_receipt_is_caught(story, tmp_path: Path) -> None:
    story.release("r1")
    path = story.export(tmp_path / "e")
    (path / "receipts.jsonl").write_bytes(b"")
    with pytest.raises(AttachmentMismatch):
        replay_export(path)


def test_an_extra_trust_list_is_caught(story, tmp_path: Path) -> None:
    story.release("r1")
    path = story.export(tmp_path / "e")
    (path / "trustlists" / ("A" * 43 + ".jws")).write_text(story.TRUST_LIST)
    with pytest.raises(AttachmentMismatch):
        replay_export(path)


def test_a_receipts_line_in_another_form_is_caught(story, tmp_path: Path) -> None:
    story.release("r1")
    path = story.export(tmp_path / "e")
    (path / "receipts.jsonl").write_text('{"seq": 3}\n')
    with pytest.raises(BadExport):
        replay_export(path)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_to_receipts_or_trust_lists_is_caught(story, tmp_path_factory,
                                                                      data) -> None:
    if story.store.head().size == 0:
        story.request("r1", trust=True)
        story.approve("r1")
        story.send("r1")
    base = tmp_path_factory.mktemp("replay")
    path = story.export(base / "e")
    trust = next((path / "trustlists").iterdir())
    targets = [path / "receipts.jsonl", trust]
    target = data.draw(st.sampled_from(targets))
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "e"
        shutil.copytree(path, copy)
        changed = copy / target.relative_to(path)
        raw = bytearray(changed.read_bytes())
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
        changed.write_bytes(bytes(raw))
        with pytest.raises(KluisError):
            replay_export(copy)


def test_a_float_in_an_entry_is_unreadable(story, tmp_path: Path) -> None:
    story.add(Record("example", {}))
    story.store._lines[0] = story.store._lines[0].replace(b'"kind"', b'"amount":1.5,"kind"')
    story.store._leaves[0] = hash_leaf(story.store._lines[0])
    path = tmp_path / "e"
    story.export(path, size=1)
    with pytest.raises(BadEntry) as caught:
        replay_export(path)
    assert "fractions" in caught.value.detail
