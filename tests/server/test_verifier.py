"""OpenID4VP over real HTTP, on SQLite and PostgreSQL: the municipality's verifier service asks
through the citizen's relay, the wallet fetches and checks the signed request, the consent
engine decides, the encrypted answer is verified (status over HTTP at the issuer), receipted
and logged on both sides. Then every kind of bad input and abuse at the response endpoint,
each answered with its problem document, recorded as an attempt, and leaving nothing stored
that should not be."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from consent_world import BRP, NOW, Citizen, World, make_world, new_citizen
from issuer_service import Clock, IssuerService, running_issuer
from jwcrypto.jwk import JWK
from verifier_service import (
    WMO_QUERY,
    VerifierService,
    running_relay,
    running_verifier,
    signed_trust_list,
    utrecht,
    verified_trust_list,
)

from server.issuer_agency import IssuerAgency, configuration
from server.verifier_agency import make_verifier_agency, parse_verifier_purpose
from vault import KluisError
from verifiers import log_entry as le
from verifiers.audit_export import verify_export
from verifiers.credential_type import INCOME_STATEMENT, PERSONAL_DATA
from verifiers.encrypted_response import new_response_key, response_metadata, seal_response
from verifiers.holder import present_sd_jwt
from verifiers.keybinding import holder_key_of
from verifiers.note import parse_verifier_key
from verifiers.receipt import verify_receipt
from verifiers.tlog import parse_entry
from wallet.credential import held_credentials
from wallet.credential_offer import parse_credential_offer
from wallet.evaluation import Status
from wallet.holder_key import holder_key, signing_key
from wallet.inbox import URI_LIST, collect
from wallet.openid4vci import redeem_offer
from wallet.openid4vp import (
    X509HashKeys,
    approve_and_send,
    fetch_request,
    parse_request_uri,
    refuse_and_send,
    response_body,
)
from wallet.relay_account import agency_address, mailbox_client, register_relay
from wallet.request import Request, parse_request
from wallet.transport import HttpxTransport
from wallet.trust import set_trust_list

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Services:
    relay: str
    verifier: VerifierService
    brp: IssuerService
    world: World
    signed: str
    transport: HttpxTransport


@pytest.fixture(scope="module")
def services(module_store_url: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Services]:
    """Relay, the municipality's verifier and BRP's issuer, one set per backend."""
    folder = tmp_path_factory.mktemp("services")
    world = make_world()
    agency = utrecht(world, NOW)
    signed = signed_trust_list(world, agency)
    brp_agency = IssuerAgency(
        id=BRP, names={"nl": "Basisregistratie Personen", "en": "Personal Records Database"},
        signing_key=world.keys.issuers[PERSONAL_DATA],
        configurations=(configuration(PERSONAL_DATA),))
    clock = Clock(at=NOW)
    with running_relay(module_store_url, folder) as relay, \
            running_issuer(module_store_url, folder, issuer_agency=brp_agency,
                           clock=clock) as brp, \
            running_verifier(module_store_url, folder, agency=agency,
                             trust=verified_trust_list(world, signed, NOW), clock=clock,
                             max_body_bytes=64 * 1024) as verifier, \
            HttpxTransport() as transport:
        yield Services(relay, verifier, brp, world, signed, transport)


@pytest.fixture
def citizen(tmp_path: Path, services: Services) -> Iterator[Citizen]:
    """A citizen with the trust list naming the real municipality, personal data issued by
    BRP over OpenID4VCI (with a status list entry) and an income statement, registered at
    the relay with an address for the municipality."""
    opened = new_citizen(tmp_path / "citizen", services.world)
    set_trust_list(opened.vault, services.signed, services.world.anchor(), now=NOW)
    offer = services.brp.offer("personal-data", tx_code=False)
    public = holder_key(opened.vault, now=NOW).public
    redeem_offer(parse_credential_offer(offer.uri), transport=services.transport, tx_code=None,
                 holder_key=signing_key(opened.vault, public),
                 receive=lambda token: opened.wallet.receive_credential(token, now=NOW),
                 clock=lambda: NOW)
    opened.receive(INCOME_STATEMENT)
    register_relay(opened.vault, services.relay, transport=services.transport, now=NOW)
    try:
        yield opened
    finally:
        opened.wallet.close()


def _send(services: Services, citizen: Citizen, dcql: dict[str, Any] = WMO_QUERY,
          *, verifier: VerifierService | None = None, **extra: Any) -> tuple[dict[str, Any], Any]:
    """The agency creates a request and posts its URI to the citizen's address; the wallet's
    inbox takes it in. Returns the created request and the inbox item."""
    verifier = verifier or services.verifier
    created = verifier.create(dcql, **extra)
    address = agency_address(citizen.vault, verifier.agency.id, transport=services.transport,
                             now=NOW)
    posted = httpx.post(address.url, json={"content_type": URI_LIST, "body": created["uri"]})
    assert posted.status_code == 202, posted.text
    client = mailbox_client(citizen.vault, transport=services.transport)
    collected = collect(citizen.vault, citizen.consent, client, transport=services.transport,
                        clock=lambda: NOW)
    [item] = collected.items
    assert client.fetch().messages == ()  # acknowledged once safely in the vault
    return created, item


def _fetched(services: Services, **extra: Any) -> tuple[dict[str, Any], Request]:
    """A request fetched by hand (no wallet): for crafting answers."""
    created = services.verifier.create(WMO_QUERY, **extra)
    request = fetch_request(parse_request_uri(created["uri"]), transport=services.transport,
                            now=NOW)
    return created, request


def _vp_token(citizen: Citizen, request: Request, *, aud: str | None = None,
              claims: dict[str, list[Any]] | None = None) -> dict[str, list[str]]:
    """Presentations made straight from the held credentials, outside the consent engine."""
    token: dict[str, list[str]] = {}
    for query in request.dcql.credentials:
        held = next(c for c in held_credentials(citizen.vault, now=NOW)
                    if c.vct in query.vct_values)
        paths = (claims or {}).get(query.id) or [list(c.path) for c in query.claims or ()]
        key = signing_key(citizen.vault, holder_key_of(held.claims))
        token[query.id] = [present_sd_jwt(held.issued(), disclose=paths, holder_key=key,
                                          nonce=request.nonce, aud=aud or request.client_id,
                                          now=int(NOW.timestamp()))]
    return token


def _post(services: Services, body: bytes | str, headers: dict[str, str] | None = None
          ) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return services.verifier.client.post(services.verifier.url + "/response", content=content,
                                         headers=FORM if headers is None else headers)


def _answer(services: Services, request: Request, payload: dict[str, Any]) -> httpx.Response:
    return _post(services, response_body(payload, request))


def _refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == code
    assert problem["error"] == "invalid_request"


def _attempts(services: Services, request_id: str | None = None) -> list[str]:
    if request_id is None:
        rows = services.verifier.rows("SELECT code FROM verifier_attempt WHERE request_id IS NULL"
                                      " ORDER BY id")
    else:
        rows = services.verifier.rows("SELECT code FROM verifier_attempt WHERE request_id = ?"
                                      " ORDER BY id", (request_id,))
    return [str(row[0]) for row in rows]


def _received(services: Services, request_id: str) -> list[tuple[Any, ...]]:
    return services.verifier.rows(
        "SELECT query_id, claims FROM verifier_received WHERE request_id = ? ORDER BY position",
        (request_id,))


def _kinds(citizen: Citizen) -> list[str]:
    return [e["kind"] for e in citizen.entries()]


# --- the whole flow -------------------------------------------------------------------------


def test_the_citizen_approves_and_both_sides_hold_the_same_receipts(
    services: Services, citizen: Citizen, tmp_path: Path
) -> None:
    created, item = _send(services, citizen)
    evaluation = item.evaluation
    assert item.error is None and item.address_agency == services.verifier.agency.id
    assert not item.foreign
    # the consent screen's evaluation: registered, signed, exactly what would leave
    assert evaluation.status is Status.READY and evaluation.registered
    assert evaluation.request.signed and evaluation.request.client_id == created["client_id"]
    shown = {line.query_id: [c.path for c in line.claims if not c.always]
             for line in evaluation.lines}
    assert shown == {"pid": [("given_name",), ("family_name",), ("address",)],
                     "income": [("income_bracket",)]}

    delivery = approve_and_send(citizen.consent, evaluation.request.id,
                                transport=services.transport, now=NOW, clock=lambda: NOW)

    assert [r.vct for r in delivery.receipts] == [PERSONAL_DATA, INCOME_STATEMENT]
    status = services.verifier.status(created["id"])
    assert (status["status"], status["attempts"]) == ("received", [])
    kept = {row[0]: json.loads(row[1]) for row in _received(services, created["id"])}
    assert kept["pid"]['["given_name"]'] == "Anna Maria"
    assert set(kept["pid"]) == {'["given_name"]', '["family_name"]', '["address"]'}
    assert kept["income"] == {'["income_bracket"]': {"code": "2",
                                                    "label": "€ 30.001 – € 45.000"}}
    # nothing of the request's secrets stays once it is answered
    assert services.verifier.rows(
        "SELECT request_object, response_key FROM verifier_request WHERE id = ?",
        (created["id"],)) == [(None, None)]
    # the citizen's trail: received, approved, sent, and one receipt per presentation
    kinds = _kinds(citizen)
    tail = kinds[kinds.index("request_received"):]
    assert tail == ["request_received", "request_approved", "presentation_sent",
                    "receipt_received", "receipt_received"]
    sent = [e for e in citizen.entries() if e["kind"] == "presentation_sent"][0]
    assert sent["outcome"] == "sent"
    wallet_hashes = {e["receipt"]["presentation_hash"] for e in citizen.entries()
                     if e["kind"] == "receipt_received"}
    # the agency's receipt log: the same receipts, and it verifies as an audit export
    log = services.verifier.verifier.receipt_log
    assert log.check() is not None
    agency_entries = [parse_entry(line) for line in log.lines()]
    assert wallet_hashes <= {e["presentation_hash"] for e in agency_entries}
    assert all(e["kind"] == le.Kind.RECEIPT for e in agency_entries)
    exported = log.export(tmp_path / "receipts")
    verified = verify_export(tmp_path / "receipts",
                             key=parse_verifier_key(log.verifier_key_text()))
    assert verified.checkpoint.size == exported.size == log.head().size
    # and the agency kept no claim value in its log
    assert "Oudegracht" not in b"".join(log.lines()).decode()


def test_the_citizen_refuses_and_both_sides_record_it(services: Services,
                                                      citizen: Citizen) -> None:
    created, item = _send(services, citizen)
    refusal = refuse_and_send(citizen.consent, item.evaluation.request.id,
                              transport=services.transport, now=NOW)
    assert refusal.response()["error"] == "access_denied"
    status = services.verifier.status(created["id"])
    assert (status["status"], status["outcome"]) == ("refused", "access_denied")
    assert _received(services, created["id"]) == []
    assert _kinds(citizen)[-2:] == ["request_received", "request_refused"]


def test_an_over_asking_request_is_blocked_at_the_wallet_and_in_the_trail(
    services: Services, citizen: Citizen
) -> None:
    greedy = {"credentials": [{"id": "pid", "format": "dc+sd-jwt",
                               "meta": {"vct_values": [PERSONAL_DATA]},
                               "claims": [{"path": ["given_name"]}, {"path": ["bsn"]}]}]}
    created, item = _send(services, citizen, greedy)
    assert created["over_asked"] == [f"{PERSONAL_DATA} bsn"]  # the agency was told, too
    assert item.evaluation.status is Status.BLOCKED
    blocked = citizen.entries()[-1]
    assert blocked["kind"] == "request_blocked" and blocked["reason"] == "over_asking"
    assert ["bsn"] in [c["path"] for c in blocked["claims"]]
    with pytest.raises(KluisError) as caught:
        approve_and_send(citizen.consent, item.evaluation.request.id,
                         transport=services.transport, now=NOW, clock=lambda: NOW)
    assert caught.value.code == "consent.blocked"
    assert services.verifier.status(created["id"])["status"] == "fetched"  # nothing was sent


def test_a_verifier_missing_from_the_trust_list_is_blocked_and_logged(
    services: Services, citizen: Citizen, module_store_url: str, tmp_path: Path
) -> None:
    """Correctly signed, its certificate matching its client id, but not on the list."""
    stranger = make_verifier_agency(
        "https://stranger.kluis.example", {"nl": "Vreemde", "en": "Stranger"},
        tuple(parse_verifier_purpose({**p, "retention": {"duration": "P1M"}})
              for p in (services.verifier.agency.purposes[0].registration.model_dump(
                  mode="json", exclude_none=True),)), now=NOW)
    with running_verifier(module_store_url, tmp_path, agency=stranger,
                          trust=verified_trust_list(services.world, services.signed, NOW),
                          clock=Clock(at=NOW)) as other:
        created, item = _send(services, citizen, verifier=other)
    assert item.evaluation.status is Status.BLOCKED
    assert item.evaluation.block.reason is le.BlockReason.NOT_REGISTERED
    assert citizen.entries()[-1]["kind"] == "request_blocked"
    assert created["client_id"] in json.dumps(citizen.entries()[-2])


def test_a_revoked_credential_is_refused_with_the_status_read_over_http(
    services: Services, citizen: Citizen
) -> None:
    created, item = _send(services, citizen)
    [stored] = [c for c in held_credentials(citizen.vault, now=NOW) if c.vct == PERSONAL_DATA]
    index = stored.claims["status"]["status_list"]["idx"]
    [issued] = services.brp.rows("SELECT offer_id FROM issuer_issued WHERE idx = ?", (index,))
    services.brp.issuer.change_status(str(issued[0]), "personal-data", "revoke", now=NOW)
    # A verifier keeps a status list for its ttl (300 s, Token Status List §13.7): answer
    # once that has passed, as a wallet would some minutes later.
    later = NOW + timedelta(seconds=301)
    services.verifier.clock.offset = later - NOW
    try:
        with pytest.raises(KluisError) as caught:
            approve_and_send(citizen.consent, item.evaluation.request.id,
                             transport=services.transport, now=later, clock=lambda: later)
    finally:
        services.verifier.clock.offset = timedelta(0)
    assert caught.value.code == "vp.response_refused"
    assert caught.value.fields["problem"] == "status.revoked"
    status = services.verifier.status(created["id"])
    assert (status["status"], status["outcome"]) == ("failed", "status.revoked")
    assert _received(services, created["id"]) == []
    sent = citizen.entries()[-1]
    assert (sent["kind"], sent["outcome"], sent["error"]) == (
        "presentation_sent", "failed", "status.revoked")


# --- bad input and abuse at the response endpoint ---------------------------------------------


def test_a_replayed_response_is_refused(services: Services, citizen: Citizen) -> None:
    created, request = _fetched(services)
    body = response_body({"vp_token": _vp_token(citizen, request), "state": request.state},
                         request)
    first = _post(services, body)
    assert first.status_code == 200 and len(first.json()["receipts"]) == 2
    again = _post(services, body)  # the very same JWE: same state, same nonce
    _refused(again, 409, "verifier.replayed")
    fresh = response_body({"vp_token": _vp_token(citizen, request), "state": request.state},
                          request)
    _refused(_post(services, fresh), 409, "verifier.replayed")
    assert len(_received(services, created["id"])) == 2
    assert _attempts(services, created["id"]) == ["verifier.replayed", "verifier.replayed"]


def test_responses_to_unknown_state_are_refused(services: Services, citizen: Citizen) -> None:
    before = _attempts(services)
    _, request = _fetched(services)
    plain = f"state={secrets.token_urlsafe(24)}&error=access_denied"
    _refused(_post(services, plain), 404, "verifier.unknown_state")
    stranger = new_response_key()
    jwe = seal_response({"vp_token": _vp_token(citizen, request), "state": request.state},
                        response_metadata(stranger))
    _refused(_post(services, f"response={jwe}"), 404, "verifier.unknown_state")
    created = services.verifier.create(WMO_QUERY)  # made, but never fetched
    state = services.verifier.rows("SELECT state FROM verifier_request WHERE id = ?",
                                   (created["id"],))[0][0]
    _refused(_post(services, f"state={state}&error=access_denied"), 404,
             "verifier.unknown_state")
    assert _attempts(services)[len(before):] == ["verifier.unknown_state"] * 3
    assert services.verifier.status(created["id"])["status"] == "created"


def test_a_response_after_expiry_is_refused(services: Services, citizen: Citizen) -> None:
    created, request = _fetched(services)
    services.verifier.clock.offset = timedelta(days=2)
    try:
        answer = _answer(services, request, {"vp_token": _vp_token(citizen, request),
                                             "state": request.state})
    finally:
        services.verifier.clock.offset = timedelta(0)
    _refused(answer, 400, "verifier.expired")
    assert _received(services, created["id"]) == []


def test_a_wrong_audience_in_the_kb_jwt_fails_the_request(services: Services,
                                                         citizen: Citizen) -> None:
    created, request = _fetched(services)
    forged = _vp_token(citizen, request, aud="x509_hash:" + "A" * 43)
    _refused(_answer(services, request, {"vp_token": forged, "state": request.state}),
             422, "sdjwt.kb_wrong_aud")
    status = services.verifier.status(created["id"])
    assert (status["status"], status["outcome"]) == ("failed", "sdjwt.kb_wrong_aud")
    good = {"vp_token": _vp_token(citizen, request), "state": request.state}
    _refused(_answer(services, request, good), 409, "verifier.replayed")  # spent
    assert _received(services, created["id"]) == []


def test_a_tampered_jwe_is_refused_and_the_request_stays_open(services: Services,
                                                              citizen: Citizen) -> None:
    created, request = _fetched(services)
    payload = {"vp_token": _vp_token(citizen, request), "state": request.state}
    jwe = seal_response(payload, request.client_metadata)
    head, key, iv, ciphertext, tag = jwe.split(".")
    flipped = ciphertext[:10] + ("A" if ciphertext[10] != "A" else "B") + ciphertext[11:]
    _refused(_post(services, f"response={'.'.join([head, key, iv, flipped, tag])}"),
             422, "vp.undecryptable")
    assert services.verifier.status(created["id"])["status"] == "fetched"
    accepted = _post(services, f"response={jwe}")
    assert accepted.status_code == 200, accepted.text
    assert _attempts(services, created["id"]) == ["vp.undecryptable"]


def test_a_response_encrypted_to_another_key_is_refused(services: Services,
                                                        citizen: Citizen) -> None:
    created, request = _fetched(services)
    metadata = response_metadata(new_response_key())
    metadata["jwks"]["keys"][0]["kid"] = request.client_metadata["jwks"]["keys"][0]["kid"]
    jwe = seal_response({"vp_token": _vp_token(citizen, request), "state": request.state},
                        metadata)
    _refused(_post(services, f"response={jwe}"), 422, "vp.undecryptable")
    assert _received(services, created["id"]) == []


def test_an_unencrypted_response_to_an_encrypted_request_is_refused(
    services: Services, citizen: Citizen
) -> None:
    created, request = _fetched(services)
    token = json.dumps(_vp_token(citizen, request))
    plain = httpx.QueryParams({"vp_token": token, "state": request.state})
    _refused(_post(services, str(plain)), 400, "verifier.encryption_required")
    assert services.verifier.status(created["id"])["status"] == "fetched"
    assert _received(services, created["id"]) == []


def test_a_state_of_another_request_inside_the_jwe_is_refused(services: Services,
                                                              citizen: Citizen) -> None:
    created, request = _fetched(services)
    _, other = _fetched(services)
    jwe = seal_response({"vp_token": _vp_token(citizen, request), "state": other.state},
                        request.client_metadata)
    _refused(_post(services, f"response={jwe}"), 422, "verifier.state_mismatch")
    assert services.verifier.status(created["id"])["status"] == "fetched"


def test_an_oversized_body_is_refused_unread(services: Services) -> None:
    answer = _post(services, "response=" + "A" * (64 * 1024))
    assert answer.status_code == 413
    assert answer.json()["code"] == "http.body_too_large"


@pytest.mark.parametrize(("body", "headers"), [
    ("vp_token=%7B%7D&state=x", {"Content-Type": "application/json"}),
    ("state=a&state=b&error=access_denied", None),
    ("response=a.b.c.d.e&vp_token=%7B%7D", None),
    (b"state=%ff%fe&error=access_denied", None),
    ("&&&", None),
    ("error=access_denied", None),
    ("&".join(f"p{n}=1" for n in range(17)), None),
], ids=["json", "repeated", "response-and-more", "not-utf8", "empty-pairs", "no-state",
        "too-many"])
def test_a_malformed_form_is_refused(services: Services, body: bytes | str,
                                     headers: dict[str, str] | None) -> None:
    _refused(_post(services, body, headers), 400, "verifier.bad_response")


def test_malformed_json_and_errors_in_a_plain_response_are_refused(
    services: Services, citizen: Citizen
) -> None:
    created, request = _fetched(services, response_mode="direct_post")
    assert request.client_metadata.get("jwks") is None
    _refused(_post(services, f"vp_token=%7Bnot+json&state={request.state}"), 400,
             "verifier.bad_response")
    _refused(_post(services, f"error=no%20spaces&state={request.state}"), 400,
             "verifier.bad_response")
    _refused(_post(services, f"vp_token=%5B%5D&state={request.state}"), 400,
             "vp.bad_vp_token")
    status = services.verifier.status(created["id"])
    assert status["status"] == "failed"  # a vp_token that is no vp_token spends the request


def test_a_plain_response_is_taken_when_the_request_asked_for_direct_post(
    services: Services, citizen: Citizen
) -> None:
    created, request = _fetched(services, response_mode="direct_post")
    answer = _answer(services, request, {"vp_token": _vp_token(citizen, request),
                                         "state": request.state})
    assert answer.status_code == 200 and len(answer.json()["receipts"]) == 2


def test_nothing_beyond_the_registration_is_kept(services: Services, citizen: Citizen) -> None:
    """A request that asks for the BSN too (the agency was warned) answered by a wallet that
    does not check: the BSN is neither kept nor named in the receipt."""
    dcql = {"credentials": [{"id": "pid", "format": "dc+sd-jwt",
                             "meta": {"vct_values": [PERSONAL_DATA]},
                             "claims": [{"path": ["family_name"]}, {"path": ["bsn"]}]}]}
    created = services.verifier.create(dcql)
    assert created["over_asked"]
    request = fetch_request(parse_request_uri(created["uri"]), transport=services.transport,
                            now=NOW)
    answer = _answer(services, request, {"vp_token": _vp_token(citizen, request),
                                         "state": request.state})
    assert answer.status_code == 200, answer.text
    [(query_id, claims)] = _received(services, created["id"])
    assert json.loads(claims) == {'["family_name"]': "de Vries"}
    [receipt] = answer.json()["receipts"]
    parsed = verify_receipt(receipt, JWK(**services.verifier.agency.public_jwk))
    assert parsed.claims == (("family_name",),)
    assert "999990019" not in json.dumps(services.verifier.received())


def test_a_request_object_is_served_once(services: Services) -> None:
    created = services.verifier.create(WMO_QUERY)
    first = httpx.get(created["request_uri"])
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/oauth-authz-req+jwt"
    again = httpx.get(created["request_uri"])
    assert again.status_code == 409 and again.json()["code"] == "verifier.request_used"
    unknown = httpx.get(f"{services.verifier.url}/requests/{secrets.token_urlsafe(24)}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "verifier.unknown_request"
    assert services.verifier.rows("SELECT request_object FROM verifier_request WHERE id = ?",
                                  (created["id"],)) == [(None,)]


def test_the_admin_app_refuses_an_unknown_purpose_and_a_bad_query(services: Services) -> None:
    admin = services.verifier.client
    unknown = admin.post(services.verifier.admin_url + "/requests",
                         json={"purpose": "spying", "dcql_query": WMO_QUERY})
    assert unknown.status_code == 400 and unknown.json()["code"] == "verifier.unknown_purpose"
    bad = admin.post(services.verifier.admin_url + "/requests",
                     json={"purpose": "wmo-household-help", "dcql_query": {"credentials": []}})
    assert bad.status_code == 400 and bad.json()["code"].startswith("dcql.")
    public = httpx.post(services.verifier.url + "/requests",
                        json={"purpose": "wmo-household-help", "dcql_query": WMO_QUERY})
    assert public.status_code == 404  # the public app makes no requests
    assert httpx.get(services.verifier.url + "/received").status_code == 404


def test_two_nodes_serve_one_store_without_double_answers(
    services: Services, citizen: Citizen, module_store_url: str, tmp_path: Path
) -> None:
    """A second node of the same agency on the same database: a request made on one is
    served (once) by the other, answers to both nodes at once all land in one receipt log
    that still verifies, and a replay on the other node is refused."""
    first = services.verifier
    trust = verified_trust_list(services.world, services.signed, NOW)
    with running_verifier(module_store_url, tmp_path, agency=first.agency, trust=trust,
                          clock=Clock(at=NOW)) as second:
        made = [first.create(WMO_QUERY) for _ in range(4)]
        objects = [httpx.get(f"{second.url}/requests/{m['id']}") for m in made]
        assert [o.status_code for o in objects] == [200] * 4
        assert httpx.get(made[0]["request_uri"]).status_code == 409  # taken on the other node
        requests = [parse_request(o.text, verifier_keys=X509HashKeys(NOW)) for o in objects]
        bodies = [response_body({"vp_token": _vp_token(citizen, r), "state": r.state}, r)
                  for r in requests]
        size = first.verifier.receipt_log.head().size
        answers: list[httpx.Response] = []

        def post(node: VerifierService, body: bytes) -> None:
            answers.append(httpx.post(node.url + "/response", content=body, headers=FORM))

        threads = [threading.Thread(target=post, args=(node, body)) for node, body in
                   zip([first, second, first, second], bodies, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers) == [200] * 4
        replay = httpx.post(second.url + "/response", content=bodies[0], headers=FORM)
        assert replay.status_code == 409 and replay.json()["code"] == "verifier.replayed"
    log = first.verifier.receipt_log
    assert log.head().size == size + 8  # two receipts per answer, none lost or doubled
    assert log.check() is not None


def test_the_sweep_ends_expired_requests_and_erases_their_secrets(
    services: Services, citizen: Citizen
) -> None:
    created, request = _fetched(services)
    ended = services.verifier.verifier.sweep(now=NOW + timedelta(days=2))
    assert ended >= 1
    assert services.verifier.rows(
        "SELECT status, request_object, response_key FROM verifier_request WHERE id = ?",
        (created["id"],)) == [("expired", None, None)]
    answer = _answer(services, request, {"vp_token": _vp_token(citizen, request),
                                         "state": request.state})
    _refused(answer, 400, "verifier.expired")  # and its key is gone: nobody can open it


def test_malformed_json_at_the_back_office_is_a_problem_document(services: Services) -> None:
    answer = services.verifier.client.post(
        services.verifier.admin_url + "/requests", content=b'{"purpose": ',
        headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["code"] == "http.malformed_json"
    extra = services.verifier.client.post(
        services.verifier.admin_url + "/requests",
        json={"purpose": "wmo-household-help", "dcql_query": {}, "deliver_to": "x"})
    assert extra.status_code == 400 and extra.json()["code"] == "http.invalid_request"
