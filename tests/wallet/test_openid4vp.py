"""The wallet's OpenID4VP client against a scripted verifier: request links parsed strictly,
Request Objects fetched and checked (typ, x5c hash = client id, signature, client id as
announced), every hostile answer met with its code; then the answer sent encrypted only after
the approval is logged, failures recorded as such, receipts verified and logged, and a refusal
told as access_denied. The real-HTTP flow is tests/server/test_verifier.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from consent_world import NOW, Citizen, World, new_citizen, request_params
from scripted_verifier import JWT, KEY, REQUEST_URI, RESPONSE_URI, FakeVerifier, request_object
from verifier_service import signed_trust_list, utrecht

from server.verifier_agency import VerifierAgency, make_verifier_agency
from vault import KluisError
from verifiers.client_certificate import issue_client_certificate
from verifiers.credential_type import INCOME_STATEMENT, PERSONAL_DATA
from verifiers.encrypted_response import open_response
from verifiers.jws import Alg, generate_signing_key
from wallet.evaluation import Status
from wallet.openid4vp import (
    RequestReference,
    approve_and_send,
    fetch_request,
    parse_request_uri,
    refuse_and_send,
)
from wallet.transport import Response, TransportFailed
from wallet.trust import set_trust_list


@pytest.fixture(scope="module")
def agency(world: World) -> VerifierAgency:
    return utrecht(world, NOW)


@pytest.fixture
def holder(tmp_path: Path, world: World, agency: VerifierAgency) -> Iterator[Citizen]:
    """A citizen whose trust list names the municipality by its real certificate."""
    opened = new_citizen(tmp_path / "citizen", world)
    set_trust_list(opened.vault, signed_trust_list(world, agency), world.anchor(), now=NOW)
    opened.receive(PERSONAL_DATA)
    opened.receive(INCOME_STATEMENT)
    try:
        yield opened
    finally:
        opened.wallet.close()


def _reference(agency: VerifierAgency) -> RequestReference:
    return RequestReference(agency.client_id, REQUEST_URI)


def _fetch(fake: FakeVerifier) -> Any:
    return fetch_request(_reference(fake.agency), transport=fake, now=NOW)


def _code(call: Callable[[], object]) -> str:
    with pytest.raises(KluisError) as caught:
        call()
    return caught.value.code


# --- request links ---------------------------------------------------------------------------


def _link(scheme: str = "openid4vp", **params: str) -> str:
    return f"{scheme}://?" + urlencode(params, quote_via=quote)


def test_request_links_by_reference_are_read() -> None:
    for scheme in ("openid4vp", "haip-vp"):
        text = "\n " + _link(scheme, client_id="x509_hash:abc", request_uri=REQUEST_URI) + " "
        assert parse_request_uri(text) == RequestReference("x509_hash:abc", REQUEST_URI)
    with_post = _link(client_id="c:1", request_uri=REQUEST_URI, request_uri_method="post")
    assert parse_request_uri(with_post).request_uri == REQUEST_URI  # fetched with GET (§5.1)


@pytest.mark.parametrize(("text", "code"), [
    ("https://wallet.example/?client_id=a&request_uri=https%3A%2F%2Fv", "vp.bad_request_uri"),
    (_link(client_id="a"), "vp.bad_request_uri"),
    (_link(request_uri=REQUEST_URI), "vp.bad_request_uri"),
    ("openid4vp://?client_id=a&client_id=b&request_uri=https%3A%2F%2Fv", "vp.bad_request_uri"),
    (_link(client_id="a", request_uri=REQUEST_URI, request_uri_method="put"),
     "vp.bad_request_uri"),
    (_link(client_id="a", request="eyJ.e30.sig"), "vp.unsupported"),
    (_link(client_id="a", request_uri="http://verifier.example/r"), "vp.insecure_url"),
    (_link(client_id="a", request_uri="https://user@verifier.example/r"), "vp.insecure_url"),
    ("openid4vp://?" + "x" * 5000, "vp.bad_request_uri"),
], ids=["https-link", "no-request-uri", "no-client-id", "repeated", "bad-method", "by-value",
        "plain-http", "user-info", "too-long"])
def test_bad_request_links_are_refused(text: str, code: str) -> None:
    assert _code(lambda: parse_request_uri(text)) == code


# --- fetching the Request Object -------------------------------------------------------------


def test_a_signed_request_with_a_matching_certificate_is_read(agency: VerifierAgency) -> None:
    request = _fetch(FakeVerifier(agency, request_object(agency)))
    assert request.signed and request.client_id == agency.client_id
    assert request.client_metadata["jwks"]["keys"][0]["kid"] == KEY.kid


@pytest.mark.parametrize(("make", "code"), [
    (lambda a: request_object(a, header={"typ": "JWT"}), "request.wrong_type"),
    (lambda a: request_object(a, key=generate_signing_key(Alg.ES256)), "request.bad_signature"),
    (lambda a: request_object(a, header={"x5c": list(issue_client_certificate(
        a.signing_key, name="other", now=NOW).x5c)}), "vp.certificate_mismatch"),
    (lambda a: request_object(a, header={"x5c": None}), "vp.no_certificate"),
    (lambda a: request_object(make_verifier_agency(a.id, a.names, a.purposes, now=NOW,
                                            signing_key=a.signing_key)), "request.mismatch"),
    (lambda a: request_object(a, header={"alg": "none"}), "jws.alg_none"),
], ids=["wrong-typ", "bad-signature", "x5c-not-the-client-id", "no-x5c",
        "client-id-not-as-announced", "alg-none"])
def test_a_request_object_that_fails_a_check_is_refused(
    agency: VerifierAgency, make: Callable[[VerifierAgency], str], code: str
) -> None:
    token = make(agency)
    if code == "vp.no_certificate":  # drop the header member entirely
        head, rest = token.split(".", 1)
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        del header["x5c"]
        head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
        token = f"{head}.{rest}"
    assert _code(lambda: _fetch(FakeVerifier(agency, token))) == code


def test_a_signed_redirect_uri_request_is_refused(agency: VerifierAgency) -> None:
    fake = FakeVerifier(agency, request_object(agency, client_id=f"redirect_uri:{RESPONSE_URI}"))
    reference = RequestReference(f"redirect_uri:{RESPONSE_URI}", REQUEST_URI)
    assert _code(lambda: fetch_request(reference, transport=fake, now=NOW)) == \
        "request.unsupported_client_id"


@pytest.mark.parametrize(("answer", "code"), [
    (Response(302, {"location": "https://elsewhere.example/"}, b""), "vp.redirected"),
    (Response(404, {}, b""), "vp.request_gone"),
    (Response(409, {}, b""), "vp.request_gone"),
    (Response(503, {}, b""), "vp.verifier_unavailable"),
    (Response(200, {"content-type": "application/json"}, b"{}"), "vp.bad_answer"),
    (Response(200, {"content-type": JWT}, json.dumps(request_params()).encode()),
     "vp.unsigned_request"),
    (Response(200, {"content-type": JWT}, b"x" * (300 * 1024)), "vp.answer_too_large"),
    (Response(200, {"content-type": JWT}, "é".encode()), "vp.bad_answer"),
], ids=["redirect", "gone", "used", "unavailable", "json", "unsigned", "huge", "not-ascii"])
def test_hostile_answers_to_the_fetch_are_refused(agency: VerifierAgency, answer: Response,
                                                  code: str) -> None:
    assert _code(lambda: _fetch(FakeVerifier(agency, object_answer=answer))) == code


def test_a_verifier_missing_from_the_trust_list_is_blocked_and_logged(
    holder: Citizen, world: World
) -> None:
    stranger = utrecht(world, NOW)  # the same key, but another certificate: another client id
    request = _fetch(FakeVerifier(stranger, request_object(stranger)))
    evaluation = holder.consent.receive(request, now=NOW)
    assert evaluation.status is Status.BLOCKED
    assert [e["kind"] for e in holder.entries()][-2:] == ["request_received", "request_blocked"]


# --- answering ----------------------------------------------------------------------------------


def test_the_answer_is_encrypted_and_posted_only_after_the_approval_is_logged(
    holder: Citizen, agency: VerifierAgency
) -> None:
    fake = FakeVerifier(agency, request_object(agency))
    request = _fetch(fake)
    holder.consent.receive(request, now=NOW)
    fake.on_post = lambda: _assert_last(holder, "request_approved")
    delivery = approve_and_send(holder.consent, request.id, transport=fake, now=NOW,
                                clock=lambda: NOW)
    [form] = fake.posted
    assert set(form) == {"response"}
    assert json.loads(base64.urlsafe_b64decode(form["response"].split(".")[0] + "==")
                      )["enc"] == "A256GCM"
    payload = open_response(form["response"], KEY)
    assert payload["state"] == request.state and set(payload["vp_token"]) == {"pid", "income"}
    assert len(delivery.receipts) == 2
    kinds = [e["kind"] for e in holder.entries()]
    assert kinds[-4:] == ["request_approved", "presentation_sent", "receipt_received",
                          "receipt_received"]


def _assert_last(holder: Citizen, kind: str) -> None:
    assert holder.entries()[-1]["kind"] == kind


@pytest.mark.parametrize(("answer", "recorded"), [
    (lambda form: Response(422, {"content-type": "application/problem+json"},
                           b'{"code": "sdjwt.kb_wrong_aud", "error": "invalid_request"}'),
     "sdjwt.kb_wrong_aud"),
    (lambda form: Response(503, {}, b""), "vp.verifier_unavailable"),
], ids=["refused", "unavailable"])
def test_a_failed_send_is_recorded_as_failed(
    holder: Citizen, agency: VerifierAgency, answer: Callable[[Mapping[str, str]], Response],
    recorded: str,
) -> None:
    fake = FakeVerifier(agency, request_object(agency), response_answer=answer)
    request = _fetch(fake)
    holder.consent.receive(request, now=NOW)
    with pytest.raises(KluisError):
        approve_and_send(holder.consent, request.id, transport=fake, now=NOW,
                         clock=lambda: NOW)
    last = holder.entries()[-1]
    assert (last["kind"], last["outcome"], last["error"]) == (
        "presentation_sent", "failed", recorded)


def test_an_unreachable_verifier_is_recorded_as_failed(holder: Citizen,
                                                       agency: VerifierAgency) -> None:
    fake = FakeVerifier(agency, request_object(agency))
    request = _fetch(fake)
    holder.consent.receive(request, now=NOW)

    def down(form: Mapping[str, str]) -> Response:
        raise TransportFailed("ConnectError")

    fake.response_answer = down
    assert _code(lambda: approve_and_send(holder.consent, request.id, transport=fake, now=NOW,
                                          clock=lambda: NOW)) == "transport.unreachable"
    assert holder.entries()[-1]["error"] == "transport.unreachable"


def test_a_forged_receipt_is_refused_after_the_send_is_recorded(
    holder: Citizen, agency: VerifierAgency, world: World
) -> None:
    impostor = utrecht(world, NOW)
    forged = generate_signing_key(Alg.ES256, kid="utrecht-requests")
    object.__setattr__(impostor, "signing_key", forged)
    fake = FakeVerifier(agency, request_object(agency))
    request = _fetch(fake)
    holder.consent.receive(request, now=NOW)
    fake.response_answer = FakeVerifier(impostor).receipts
    assert _code(lambda: approve_and_send(holder.consent, request.id, transport=fake, now=NOW,
                                          clock=lambda: NOW)) == "receipt.bad_signature"
    last = holder.entries()[-1]
    assert (last["kind"], last["outcome"]) == ("presentation_sent", "sent")


def test_a_refusal_is_logged_then_told_as_access_denied(holder: Citizen,
                                                        agency: VerifierAgency) -> None:
    fake = FakeVerifier(agency, request_object(agency))
    request = _fetch(fake)
    holder.consent.receive(request, now=NOW)
    fake.on_post = lambda: _assert_last(holder, "request_refused")
    refuse_and_send(holder.consent, request.id, transport=fake, now=NOW)
    [form] = fake.posted
    assert form["error"] == "access_denied" and form["state"] == request.state
    assert "vp_token" not in form and "response" not in form
