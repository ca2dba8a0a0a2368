"""Entry kinds: every builder gives a canonical entry without values; commitments open to
the value logged and to nothing else."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import Retention
from verifiers import log_entry as le
from verifiers.disclosure import format_disclosure
from verifiers.receipt import verify_receipt
from verifiers.tlog import BadRecord, MemoryLogStore, append, parse_entry

UTRECHT = le.Party("https://utrecht.kluis.example", "Gemeente Utrecht", "Municipality of Utrecht")
INCOME = "https://kluis.example/vct/income-statement"
PERSONAL = "https://kluis.example/vct/personal-data"

NOW = datetime(2027, 3, 3, 10, 15, tzinfo=UTC)
SECRET_VALUES = ("Jansen", "1234 AB", "Modal-2 income 31.500", "9999-secret-digest")


def _one(signer, record) -> dict:
    store = MemoryLogStore()
    line = append(store, signer, [record], now=NOW).entries[0].line
    return parse_entry(line, seq=0)


def test_every_kind_builds_a_canonical_entry_without_values(story) -> None:
    approval = le.request_approved("r1", UTRECHT, [
        le.ReleasedCredential("c1", PERSONAL, [(("family_name",), "Jansen"),
                                               (("address", "postal_code"), "1234 AB")]),
        le.ReleasedCredential("c2", INCOME, [(("income_bracket",), "Modal-2 income 31.500")]),
    ], left_out=[le.ClaimRef(PERSONAL, ("birthdate",), optional=True)])
    records = [
        le.credential_received("c1", PERSONAL, le.Party("https://brp.kluis.example"),
                               [("family_name",), ("address", "postal_code")]),
        le.request_blocked("r0", UTRECHT, le.BlockReason.OVER_ASKING,
                           [le.ClaimRef(PERSONAL, ("bsn",))]),
        approval,
        le.request_refused("r2", UTRECHT),
        le.item_event(le.Kind.ITEM_ADDED, "income-2026", "document", "application/pdf", 1234,
                      "9999-secret-digest"),
        le.key_rotated(le.KeyRole.HOLDER, "thumbprint-new", "thumbprint-old"),
        le.export_made(le.ExportKind.AUDIT),
    ]
    story.add(*records)
    kinds = set()
    for seq, line in enumerate(story.store.lines(0, 99)):
        entry = parse_entry(line, seq=seq)
        kinds.add(entry["kind"])
        for secret in SECRET_VALUES:
            assert secret.encode() not in line
    assert kinds == {"credential_received", "request_blocked", "request_approved",
                     "request_refused", "item_added", "key_rotated", "export_made"}
    story.release("r3")
    kinds |= {parse_entry(line)["kind"] for line in story.store.lines(7, 99)}
    assert kinds >= {"request_received", "presentation_sent", "receipt_received"}


def test_approval_names_paths_and_commitments(log_signer) -> None:
    record = le.request_approved("r1", UTRECHT, [
        le.ReleasedCredential("c1", PERSONAL, [(("family_name",), "Jansen")])])
    entry = _one(log_signer, record)
    assert entry["credentials"] == [{
        "credential": "c1", "vct": PERSONAL,
        "claims": [{"path": ["family_name"], "commitment": entry["credentials"][0]["claims"][0]
                    ["commitment"]}],
    }]
    assert entry["verifier"] == {"id": UTRECHT.id, "name": {"nl": "Gemeente Utrecht",
                                                            "en": "Municipality of Utrecht"}}
    opened = le.check_opening(entry, record.openings[0])
    assert (opened.path, opened.value, opened.credential, opened.vct) == (
        ("family_name",), "Jansen", "c1", PERSONAL)


def test_the_same_value_gets_a_fresh_commitment_each_time(log_signer) -> None:
    def commitment() -> str:
        record = le.request_approved("r", UTRECHT, [le.ReleasedCredential("c", INCOME,
                                                                          [(("x",), "same")])])
        return str(_one(log_signer, record)["credentials"][0]["claims"][0]["commitment"])

    assert commitment() != commitment()


def test_an_opening_with_another_value_fails(log_signer) -> None:
    record = le.request_approved("r", UTRECHT, [le.ReleasedCredential("c", INCOME,
                                                                      [(("x",), "true value")])])
    entry = _one(log_signer, record)
    salt = json.loads(base64.urlsafe_b64decode(record.openings[0] + "=="))[0]
    forged = format_disclosure(salt, '["x"]', "another value").encoded
    with pytest.raises(le.BadOpening):
        le.check_opening(entry, forged)


def test_an_opening_under_another_name_fails(log_signer) -> None:
    """Even a digest that matches (here: made so by construction) must carry the committed
    path: an opening for ["y"] cannot pass for the commitment to ["x"]."""
    record = le.request_approved("r", UTRECHT, [le.ReleasedCredential("c", INCOME,
                                                                      [(("x",), "v")])])
    entry = _one(log_signer, record)
    wrong = format_disclosure("salt-salt-salt-salt-salt", '["y"]', "v")
    entry["credentials"][0]["claims"][0]["commitment"] = wrong.digest
    with pytest.raises(le.BadOpening) as caught:
        le.check_opening(entry, wrong.encoded)
    assert "commits to" in caught.value.detail


@pytest.mark.parametrize("junk", ["", "not base64 !", "WyJhIl0", "eyJhIjoxfQ"])
def test_junk_openings_fail(log_signer, junk: str) -> None:
    record = le.request_approved("r", UTRECHT, [le.ReleasedCredential("c", INCOME,
                                                                      [(("x",), "v")])])
    with pytest.raises(le.BadOpening):
        le.check_opening(_one(log_signer, record), junk)


def test_item_events_commit_to_the_content_digest(log_signer) -> None:
    record = le.item_event(le.Kind.ITEM_CHANGED, "income-2026", "attribute", None, 12, "ab" * 32)
    entry = _one(log_signer, record)
    assert entry["item"]["name"] == "income-2026" and "media_type" not in entry["item"]
    opened = le.check_opening(entry, record.openings[0])
    assert (opened.path, opened.value) == (None, "ab" * 32)
    with pytest.raises(BadRecord):
        le.item_event(le.Kind.EXPORT_MADE, "x", "note", None, 0, "")


def test_a_claim_released_twice_from_one_credential_is_refused() -> None:
    with pytest.raises(BadRecord):
        le.request_approved("r", UTRECHT, [le.ReleasedCredential("c", INCOME,
                                                                 [(("x",), 1), (("x",), 2)])])


def test_values_that_are_not_json_are_refused() -> None:
    with pytest.raises(BadRecord):
        le.request_approved("r", UTRECHT, [le.ReleasedCredential("c", INCOME,
                                                                 [(("x",), float("nan"))])])


def test_receipt_entries_bind_the_token(story) -> None:
    story.release("r1")
    token = story.tokens["r1"]
    receipt = verify_receipt(token, story.RECEIPT_KEY)
    citizen = le.receipt_received("r1", token, receipt)
    agency = le.agency_receipt(token, receipt)
    assert citizen.body["receipt_hash"] == agency.body["receipt_hash"] == le.receipt_hash(token)
    assert citizen.attachments == agency.attachments
    assert citizen.attachments[0].kind == "receipt"
    assert agency.body["presentation_hash"] == citizen.body["receipt"]["presentation_hash"]
    assert "kind" not in citizen.body["receipt"]


def test_request_received_refers_to_the_trust_list_by_hash(log_signer, story) -> None:
    record = le.request_received(
        "r", UTRECHT, registered=True, purpose=story.WMO, legal_basis=story.BASIS,
        retention=Retention(until="2029-03-03"),
        processing_activity="utrecht-va-0042", expires_at=NOW,
        claims=[le.ClaimRef(INCOME, ("income_bracket",))], trust_list=(7, "eyJ.eyJ.sig"),
    )
    entry = _one(log_signer, record)
    assert entry["trust_list"]["sequence"] == 7
    assert record.attachments[0].name == entry["trust_list"]["hash"]
    assert record.attachments[0].content == "eyJ.eyJ.sig"


@given(st.text(max_size=40), st.binary(max_size=8))
@settings(max_examples=100)
def test_check_opening_raises_only_its_own_error(text: str, noise: bytes) -> None:
    entry = {"kind": "request_approved", "seq": 0, "credentials": [
        {"credential": "c", "vct": INCOME, "claims": [{"path": ["x"], "commitment": "abc"}]}]}
    try:
        le.check_opening(entry, text + noise.hex())
    except le.BadOpening:
        pass
