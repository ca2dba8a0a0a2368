"""The consent engine: evaluation (registered, blocked, over-asking, expired, optional claims,
claim sets), one-off decisions, releases the real verifier accepts with exactly the approved
claims, and the log entries of every path (commitments, never values)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from consent_world import (
    CLAIMS,
    DEV_CLIENT,
    NOW,
    STRANGER_CLIENT,
    UTRECHT,
    UTRECHT_CLIENT,
    Citizen,
    purpose_data,
    request_params,
)
from jwcrypto.jwk import JWK

from vault import KluisError
from verifiers import log_entry as le
from verifiers.audit_export import verify_export
from verifiers.credential_type import DIPLOMA, INCOME_STATEMENT, PERSONAL_DATA
from verifiers.jws import format_private_jwk
from verifiers.keybinding import KeyBinding
from verifiers.receipt import ReceiptPurpose, Retention, issue_receipt
from verifiers.verifier import verify_sd_jwt
from wallet.evaluation import Status
from wallet.release import Release
from wallet.request import parse_request

VALUES = ("Anna Maria", "de Vries", "Oudegracht", "3511 NK", "999990019", "1984-07-12",
          "41250", "30.001", "Universiteit Utrecht", "MSc Informatica")


def _receive(citizen: Citizen, **changes: Any) -> Any:
    return citizen.consent.receive(parse_request(request_params(**changes)), now=NOW)


def _kinds(citizen: Citizen) -> list[str]:
    return [e["kind"] for e in citizen.entries()]


def _code(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(KluisError) as error:
        call(*args, **kwargs)
    return error.value.code


def _dcql(*credentials: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"credentials": list(credentials), **extra}


def _query(qid: str, vct: str, *claims: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": qid, "format": "dc+sd-jwt", "meta": {"vct_values": [vct]},
            "claims": list(claims), **extra}


def _verify(citizen: Citizen, release: Release) -> dict[str, Any]:
    """Every presentation through the real verifier, with the request's nonce and client id."""
    request = citizen.consent.find(release.request_id).request
    out = {}
    for presentation in release.presentations:
        verified = verify_sd_jwt(
            presentation.token, issuer_keys=citizen.trust(), now=int(NOW.timestamp()),
            key_binding=KeyBinding(nonce=request.nonce, aud=request.client_id),
        )
        out[presentation.query_id] = verified
    return out


# --- evaluation -------------------------------------------------------------------------


def test_a_registered_request_within_its_registration_is_ready(citizen: Citizen) -> None:
    citizen.receive(PERSONAL_DATA)
    citizen.receive(INCOME_STATEMENT)
    evaluation = _receive(citizen)
    assert evaluation.status is Status.READY and evaluation.block is None
    assert evaluation.verifier_name().en == "Municipality of Utrecht"
    pid, income = evaluation.lines
    asked = [(c.path, c.value) for c in pid.claims if not c.always]
    assert asked == [(("given_name",), "Anna Maria"), (("family_name",), "de Vries"),
                     (("address",), CLAIMS[PERSONAL_DATA]["address"])]
    always = {c.path for c in pid.claims if c.always}
    assert {("iss",), ("vct",), ("cnf",), ("exp",)} <= always
    assert not always & {("bsn",), ("birthdate",)}
    assert [c.path for c in income.claims if not c.always] == [("income_bracket",)]
    assert [w.code for w in evaluation.warnings] == ["retention_long", "unsigned"]
    assert _kinds(citizen)[-1] == "request_received"
    entry = citizen.entries()[-1]
    assert entry["registered"] is True and entry["verifier"]["id"] == UTRECHT
    assert entry["purpose"]["id"] == "wmo-household-help"
    assert entry["claims"][0] == {"vct": PERSONAL_DATA, "path": ["given_name"]}


def test_receiving_a_request_twice_logs_it_once(citizen: Citizen) -> None:
    _receive(citizen)
    _receive(citizen)
    assert _kinds(citizen).count("request_received") == 1
    assert len(citizen.consent.requests()) == 1


def test_an_unregistered_verifier_is_blocked_and_the_block_is_logged(citizen: Citizen) -> None:
    citizen.receive(PERSONAL_DATA)
    evaluation = _receive(citizen, client_id=STRANGER_CLIENT)
    assert evaluation.status is Status.BLOCKED and evaluation.lines == ()
    assert evaluation.block.reason is le.BlockReason.NOT_REGISTERED
    assert "not on the trust list" in evaluation.block.explanation.en
    assert "niet op de vertrouwenslijst" in evaluation.block.explanation.nl
    assert _kinds(citizen)[-2:] == ["request_received", "request_blocked"]
    received, blocked = citizen.entries()[-2:]
    assert received["registered"] is False and blocked["reason"] == "not_registered"
    rid = evaluation.request.id
    assert _code(citizen.consent.approve, rid, now=NOW) == "consent.blocked"


def test_over_asking_is_blocked_naming_the_extra_claims(citizen: Citizen) -> None:
    citizen.receive(PERSONAL_DATA)
    dcql = _dcql(_query("pid", PERSONAL_DATA, {"path": ["given_name"]}, {"path": ["bsn"]},
                        {"path": ["birthdate"]}))
    evaluation = _receive(citizen, dcql_query=dcql)
    assert evaluation.status is Status.BLOCKED
    block = evaluation.block
    assert block.reason is le.BlockReason.OVER_ASKING
    assert [r.path for r in block.over_asked] == [("bsn",), ("birthdate",)]
    assert "Burgerservicenummer (BSN) (Persoonsgegevens) en Geboortedatum" in block.explanation.nl
    assert "Citizen service number (BSN) (Personal data) and Date of birth" in block.explanation.en
    blocked = citizen.entries()[-1]
    assert blocked["reason"] == "over_asking"
    assert blocked["claims"] == [{"vct": PERSONAL_DATA, "path": ["bsn"]},
                                 {"vct": PERSONAL_DATA, "path": ["birthdate"]}]


def test_asking_for_a_type_not_registered_for_the_purpose_is_over_asking(
    citizen: Citizen,
) -> None:
    dcql = _dcql(_query("dip", DIPLOMA, {"path": ["degree"]}))
    evaluation = _receive(citizen, dcql_query=dcql)
    assert evaluation.block.reason is le.BlockReason.OVER_ASKING
    assert "Diploma" in evaluation.block.explanation.en


def test_a_type_asked_without_claims_is_named_as_the_type(citizen: Citizen) -> None:
    dcql = _dcql({"id": "dip", "format": "dc+sd-jwt", "meta": {"vct_values": [DIPLOMA]}})
    evaluation = _receive(citizen, dcql_query=dcql)
    assert [(r.vct, r.path) for r in evaluation.block.over_asked] == [(DIPLOMA, ("vct",))]
    assert "for: Diploma. kluis" in evaluation.block.explanation.en


def test_the_dpv_iri_and_its_short_form_are_the_same_purpose(citizen: Citizen) -> None:
    info = [{"format": "kluis_purpose",
             "data": purpose_data(dpv="https://w3id.org/dpv#ServiceProvision")}]
    assert _receive(citizen, verifier_info=info).block is None


def test_a_purpose_the_verifier_is_not_registered_for_is_blocked(citizen: Citizen) -> None:
    info = [{"format": "kluis_purpose", "data": purpose_data(purpose_id="marketing")}]
    evaluation = _receive(citizen, verifier_info=info)
    assert evaluation.block.reason is le.BlockReason.UNKNOWN_PURPOSE
    assert "'marketing'" in evaluation.block.explanation.en


def test_another_processing_activity_than_registered_is_blocked(citizen: Citizen) -> None:
    info = [{"format": "kluis_purpose", "data": purpose_data(processing_activity="other-1")}]
    evaluation = _receive(citizen, verifier_info=info)
    assert evaluation.status is Status.BLOCKED
    assert evaluation.block.reason is le.BlockReason.UNKNOWN_PURPOSE


def test_an_expired_request_is_recorded_and_releases_nothing(citizen: Citizen) -> None:
    citizen.receive(PERSONAL_DATA)
    citizen.receive(INCOME_STATEMENT)
    info = [{"format": "kluis_purpose",
             "data": purpose_data(expires_at="2027-03-05T11:00:00Z")}]
    evaluation = _receive(citizen, verifier_info=info)
    assert evaluation.status is Status.EXPIRED and evaluation.lines == ()
    assert citizen.entries()[-1]["reason"] == "invalid_request"
    rid = evaluation.request.id
    assert _code(citizen.consent.approve, rid, now=NOW) == "request.expired"
    assert citizen.consent.find(rid).state.value == "expired"


def test_a_request_that_expires_while_pending_cannot_be_approved(citizen: Citizen) -> None:
    citizen.receive(PERSONAL_DATA)
    citizen.receive(INCOME_STATEMENT)
    rid = _receive(citizen).request.id
    later = NOW + timedelta(days=2)
    assert _code(citizen.consent.approve, rid, now=later) == "request.expired"
    assert _kinds(citizen)[-1] == "request_blocked"
    assert _code(citizen.consent.approve, rid, now=NOW) == "request.expired"
    assert not [k for k in _kinds(citizen) if k == "request_approved"]


def test_a_missing_required_credential_leaves_only_refusal(citizen: Citizen) -> None:
    citizen.receive(PERSONAL_DATA)
    evaluation = _receive(citizen)
    assert evaluation.status is Status.UNMATCHED and evaluation.missing == ("income",)
    assert "unmatched" in [w.code for w in evaluation.warnings]
    rid = evaluation.request.id
    assert _code(citizen.consent.approve, rid, now=NOW) == "consent.unsatisfiable"
    refusal = citizen.consent.refuse(rid, now=NOW)
    assert refusal.response() == {"error": "access_denied", "state": "wmo-2027-0001",
                                  "error_description": refusal.response()["error_description"]}


def test_bsn_and_long_retention_are_warned_about(citizen: Citizen) -> None:
    citizen.receive(PERSONAL_DATA)
    citizen.receive(DIPLOMA)
    data = purpose_data(purpose_id="job-application", processing_activity="utrecht-va-0100",
                        retention={"duration": "P5Y"})
    dcql = _dcql(_query("pid", PERSONAL_DATA, {"path": ["bsn"]}),
                 _query("dip", DIPLOMA, {"path": ["degree"]}))
    evaluation = _receive(citizen, dcql_query=dcql,
                          verifier_info=[{"format": "kluis_purpose", "data": data}])
    assert evaluation.status is Status.READY
    codes = [w.code for w in evaluation.warnings]
    assert "bsn" in codes and "retention_long" in codes
    assert "5 maart 2032" in evaluation.warnings[codes.index("retention_long")].text.nl


# --- decisions ----------------------------------------------------------------------------


def _ready(citizen: Citizen, **changes: Any) -> str:
    citizen.receive(PERSONAL_DATA)
    citizen.receive(INCOME_STATEMENT)
    evaluation = _receive(citizen, **changes)
    assert evaluation.status is Status.READY, evaluation
    return evaluation.request.id


def test_approval_releases_exactly_the_approved_claims_to_the_real_verifier(
    citizen: Citizen,
) -> None:
    rid = _ready(citizen)
    release = citizen.consent.approve(rid, now=NOW)
    verified = _verify(citizen, release)
    pid, income = verified["pid"], verified["income"]
    assert set(pid.disclosed) == {("given_name",), ("family_name",), ("address",),
                                  ("address", "street_address"), ("address", "house_number"),
                                  ("address", "postal_code"), ("address", "locality"),
                                  ("address", "country")}
    assert "bsn" not in pid.claims and "birthdate" not in pid.claims
    assert set(income.disclosed) == {("income_bracket",)}
    assert "gross_income" not in income.claims and "tax_year" not in income.claims
    response = release.response()
    assert response["state"] == "wmo-2027-0001"
    assert sorted(response["vp_token"]) == ["income", "pid"]
    assert all(len(v) == 1 for v in response["vp_token"].values())


def test_the_approval_is_logged_before_the_release_with_commitments_only(
    citizen: Citizen,
) -> None:
    rid = _ready(citizen)
    release = citizen.consent.approve(rid, now=NOW)
    approved = citizen.log.entry(release.entry)
    assert approved["kind"] == "request_approved" and approved["request"] == rid
    paths = {tuple(c["path"]) for c in approved["credentials"][0]["claims"]}
    assert {("given_name",), ("family_name",), ("address",)} <= paths
    assert all(len(c["commitment"]) == 43 for cred in approved["credentials"]
               for c in cred["claims"])
    openings = citizen.log.openings(release.entry)
    opened = {tuple(o.path): o.value for o in (le.check_opening(approved, x) for x in openings)}
    assert opened[("given_name",)] == "Anna Maria"
    lines = b"\n".join(citizen.log.lines()).decode()
    for value in VALUES:
        assert value not in lines


def test_a_second_decision_is_refused(citizen: Citizen) -> None:
    rid = _ready(citizen)
    citizen.consent.approve(rid, now=NOW)
    assert _code(citizen.consent.approve, rid, now=NOW) == "request.already_decided"
    assert _code(citizen.consent.refuse, rid, now=NOW) == "request.already_decided"
    assert _kinds(citizen).count("request_approved") == 1


def test_refusal_releases_nothing_and_is_logged(citizen: Citizen) -> None:
    rid = _ready(citizen)
    refusal = citizen.consent.refuse(rid, now=NOW)
    assert refusal.response()["error"] == "access_denied"
    assert _kinds(citizen)[-1] == "request_refused"
    assert _code(citizen.consent.release, rid) == "consent.no_release"
    assert _code(citizen.consent.approve, rid, now=NOW) == "request.already_decided"
    assert citizen.consent.find(rid).state.value == "refused"


def test_optional_claims_can_be_left_out(citizen: Citizen) -> None:
    dcql = _dcql(_query("pid", PERSONAL_DATA, {"id": "g", "path": ["given_name"]},
                        {"id": "f", "path": ["family_name"]}, {"id": "a", "path": ["address"]},
                        claim_sets=[["g", "f", "a"], ["f", "a"]]),
                 _query("income", INCOME_STATEMENT, {"path": ["income_bracket"]}))
    rid = _ready(citizen, dcql_query=dcql)
    evaluation = citizen.consent.evaluation(rid, now=NOW)
    optional = [c.path for c in evaluation.lines[0].claims if c.optional]
    assert optional == [("given_name",)]
    assert _code(citizen.consent.approve, rid, leave_out=[("family_name",)],
                 now=NOW) == "consent.not_optional"
    assert _code(citizen.consent.approve, rid, leave_out=[("bsn",)],
                 now=NOW) == "consent.not_in_request"
    release = citizen.consent.approve(rid, leave_out=[("given_name",)], now=NOW)
    pid = _verify(citizen, release)["pid"]
    assert "given_name" not in pid.claims and pid.claims["family_name"] == "de Vries"
    approved = citizen.log.entry(release.entry)
    assert approved["left_out"] == [{"vct": PERSONAL_DATA, "path": ["given_name"],
                                     "optional": True}]
    assert ["given_name"] not in [c["path"] for c in approved["credentials"][0]["claims"]]


def test_the_first_satisfiable_claim_set_is_used(citizen: Citizen) -> None:
    dcql = _dcql(_query("pid", PERSONAL_DATA, {"id": "pc", "path": ["address", "postal_code"]},
                        {"id": "ad", "path": ["address"]}, claim_sets=[["pc"], ["ad"]]),
                 _query("income", INCOME_STATEMENT, {"path": ["income_bracket"]}))
    rid = _ready(citizen, dcql_query=dcql)
    release = citizen.consent.approve(rid, now=NOW)
    pid = _verify(citizen, release)["pid"]
    assert pid.claims["address"] == {"postal_code": "3511 NK"}
    assert set(pid.disclosed) == {("address",), ("address", "postal_code")}


def test_an_optional_credential_can_be_skipped(citizen: Citizen) -> None:
    dcql = _dcql(_query("pid", PERSONAL_DATA, {"path": ["given_name"]}),
                 _query("income", INCOME_STATEMENT, {"path": ["income_bracket"]}),
                 credential_sets=[{"options": [["pid"]]},
                                  {"options": [["income"]], "required": False}])
    rid = _ready(citizen, dcql_query=dcql)
    evaluation = citizen.consent.evaluation(rid, now=NOW)
    assert [(line.query_id, line.optional) for line in evaluation.lines] == [
        ("pid", False), ("income", True)]
    assert _code(citizen.consent.approve, rid, skip=["pid"], now=NOW) == "consent.not_optional"
    release = citizen.consent.approve(rid, skip=["income"], now=NOW)
    assert list(release.vp_token()) == ["pid"]
    assert citizen.log.entry(release.entry)["left_out"] == [
        {"vct": INCOME_STATEMENT, "path": ["income_bracket"], "optional": True}]


def test_outcome_and_receipt_are_logged_after_the_release(citizen: Citizen) -> None:
    rid = _ready(citizen)
    release = citizen.consent.approve(rid, now=NOW)
    citizen.consent.record_outcome(release, sent=False, error="transport.unreachable", now=NOW)
    citizen.consent.record_outcome(release, sent=True, now=NOW)
    assert _code(citizen.consent.record_outcome, release, sent=True,
                 now=NOW) == "consent.already_sent"
    failed, sent = [e for e in citizen.entries() if e["kind"] == "presentation_sent"]
    assert (failed["outcome"], failed["error"], sent["outcome"]) == (
        "failed", "transport.unreachable", "sent")
    assert {p["hash"] for p in sent["presentations"]} == release.hashes()
    presentation = release.presentations[0]
    key = JWK(**format_private_jwk(citizen.world.keys.utrecht))
    receipt = issue_receipt(
        presentation.token, verifier=UTRECHT, request_id="wmo-2027-0001",
        vct=presentation.vct, claims=[("given_name",)],
        purpose=ReceiptPurpose(id="wmo-household-help", dpv="dpv:ServiceProvision"),
        legal_basis=citizen.consent.find(rid).request.purpose.legal_basis,
        retention=Retention(duration="P2Y"), processing_activity="utrecht-va-0042",
        received_at=NOW, key=key, client_id=UTRECHT_CLIENT,
    )
    got = citizen.consent.record_receipt(citizen.consent.release(rid), receipt, now=NOW)
    assert got.presentation_hash == presentation.hash
    assert citizen.entries()[-1]["kind"] == "receipt_received"
    other = issue_receipt(
        "some other presentation", verifier=UTRECHT, request_id="x", vct=presentation.vct,
        claims=[], purpose=ReceiptPurpose(id="wmo-household-help", dpv="dpv:ServiceProvision"),
        legal_basis=got.legal_basis, retention=Retention(duration="P2Y"),
        processing_activity="utrecht-va-0042", received_at=NOW, key=key,
    )
    assert _code(citizen.consent.record_receipt, release, other,
                 now=NOW) == "receipt.hash_mismatch"


def test_outcomes_need_a_release(citizen: Citizen) -> None:
    rid = _ready(citizen)
    refused = citizen.consent.refuse(rid, now=NOW)
    fake = Release(refused.request_id, UTRECHT_CLIENT, "https://x.example",
                   parse_request(request_params()).response_mode, None, (), 0)
    assert _code(citizen.consent.record_outcome, fake, sent=True, now=NOW) == "consent.no_release"


def test_a_signed_request_is_received_and_approved(citizen: Citizen) -> None:
    from verifiers.jws import sign_jws
    from wallet.request_object import TrustListVerifierKeys

    citizen.receive(PERSONAL_DATA)
    citizen.receive(INCOME_STATEMENT)
    key = citizen.world.keys.utrecht
    token = sign_jws({"alg": "ES256", "typ": "oauth-authz-req+jwt", "kid": key.kid},
                     request_params(), key)
    request = parse_request(token, verifier_keys=TrustListVerifierKeys(citizen.trust()))
    evaluation = citizen.consent.receive(request, now=NOW)
    assert "unsigned" not in [w.code for w in evaluation.warnings]
    stored = citizen.consent.find(request.id)
    assert stored.request.signed and stored.request.source == token
    release = citizen.consent.approve(request.id, now=NOW)
    assert set(_verify(citizen, release)) == {"pid", "income"}


def test_redirect_uri_verifier_gets_its_full_client_id_as_audience(citizen: Citizen) -> None:
    rid = _ready(citizen, client_id=DEV_CLIENT, response_uri=None)
    release = citizen.consent.approve(rid, now=NOW)
    assert release.client_id == DEV_CLIENT
    _verify(citizen, release)


def test_ids_can_be_shortened_but_not_too_much(citizen: Citizen) -> None:
    rid = _ready(citizen)
    assert citizen.consent.find(rid[:5]).id == rid
    assert _code(citizen.consent.find, rid[:3]) == "request.not_found"
    assert _code(citizen.consent.find, "ffffffff") == "request.not_found"


def test_an_audit_export_of_every_path_holds_no_values(citizen: Citizen, tmp_path: Any) -> None:
    """The folder an auditor receives (entries, checkpoints, receipts, trust lists): every
    decision path is in it, no released value is, and it verifies."""
    rid = _ready(citizen)
    release = citizen.consent.approve(rid, now=NOW)
    citizen.consent.record_outcome(release, sent=True, now=NOW)
    second = _receive(citizen, nonce="second-request-nonce-01").request.id
    citizen.consent.refuse(second, now=NOW)
    _receive(citizen, client_id=STRANGER_CLIENT, nonce="third-request-nonce-001")
    target = tmp_path / "export"
    citizen.log.export(target, now=NOW)
    verified = verify_export(target)
    assert verified.checkpoint.size == citizen.log.size
    text = "".join(p.read_text(errors="replace") for p in target.rglob("*") if p.is_file())
    for kind in ("request_approved", "request_refused", "request_blocked", "presentation_sent"):
        assert kind in text
    for value in VALUES:
        assert value not in text
    assert citizen.log.check() is not None
