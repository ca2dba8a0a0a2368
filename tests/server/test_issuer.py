"""The issuer service over real HTTP (uvicorn on loopback, httpx and the wallet's client), on
SQLite and PostgreSQL: the whole pre-authorized flow for each credential type, the metadata
documents, the status list and revocation; then every kind of bad input and abuse, each
answered with the right OAuth error or problem document, with nothing issued or stored that
should not be."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from issuer_service import (
    CLAIMS,
    VCTS,
    IssuerService,
    running_issuer,
)
from jwcrypto.jwk import JWK

from server.problem import PROBLEM_JSON
from vault import KluisError
from verifiers.credential_type import credential_type
from verifiers.jws import (
    Alg,
    SigningKey,
    b64url_encode,
    format_jwk,
    format_private_jwk,
    generate_signing_key,
    parse_jwk,
    sign_jws,
)
from verifiers.proof import PROOF_TYP
from verifiers.statuslist import StatusListChecker
from verifiers.verifier import IssuerKeyMap, verify_issued
from wallet.credential_offer import parse_credential_offer
from wallet.openid4vci import redeem_offer
from wallet.proof import make_proof_jwt
from wallet.transport import HttpxTransport


@pytest.fixture(scope="module")
def service(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IssuerService]:
    """One issuer per backend for the module: tests compare counts, never assume zero."""
    with running_issuer(module_store_url, tmp_path_factory.mktemp("issuer"),
                        issuer_nonce_seconds=60) as running:
        yield running


@pytest.fixture(autouse=True)
def _real_time(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "service" in request.fixturenames:
        request.getfixturevalue("service").clock.offset = timedelta(0)


@pytest.fixture(scope="module")
def holder() -> SigningKey:
    return generate_signing_key(Alg.ES256)


def _now(service: IssuerService) -> int:
    return int(service.clock().timestamp())


def _proof(service: IssuerService, key: SigningKey, nonce: str | None = None,
           aud: str | None = None) -> str:
    return make_proof_jwt(key, audience=aud or service.url, nonce=nonce or service.nonce(),
                          now=_now(service))


def _request(proof: str, configuration: str = "personal-data", **extra: Any) -> dict[str, Any]:
    return {"credential_configuration_id": configuration, "proofs": {"jwt": [proof]}, **extra}


def _oauth(response: httpx.Response, error: str, code: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert (body["error"], body["code"]) == (error, code)
    assert body["error_description"].isascii() and '"' not in body["error_description"]


def _problem(response: httpx.Response, status: int, code: str,
             error: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body.get("error") == error
    return body


class Snapshot:
    """What issuing leaves behind; a refused request must change none of it."""

    def __init__(self, service: IssuerService) -> None:
        self.service = service
        self.before = self.now()

    def now(self) -> tuple[int, int, str]:
        state = self.service.rows("SELECT list_id, bits, lst FROM issuer_status_list")
        return (self.service.count("issuer_issued"), self.service.count("issuer_token"),
                json.dumps(state))

    def unchanged(self) -> bool:
        return self.now() == self.before


def _issued_keys(service: IssuerService) -> IssuerKeyMap:
    return IssuerKeyMap.of({service.agency.id: service.agency.signing_key.public})


# --- the happy paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("configuration", sorted(VCTS))
def test_full_flow_over_http_for_each_type(
    service: IssuerService, holder: SigningKey, configuration: str
) -> None:
    offer = service.offer(configuration)
    issued_before = service.count("issuer_issued")
    with HttpxTransport() as transport:
        [token] = redeem_offer(
            parse_credential_offer(offer.reference_uri), transport=transport,
            tx_code=offer.tx_code, holder_key=holder, receive=lambda credential: credential,
        )
    verified = verify_issued(token, issuer_keys=_issued_keys(service), now=_now(service),
                             holder_key=holder.public, expected_vct=VCTS[configuration])
    assert {k: verified.claims[k] for k in CLAIMS[configuration]} == CLAIMS[configuration]
    assert verified.issuer == service.agency.id
    assert verified.header["kid"] == "gemeente-2027" and verified.header["typ"] == "dc+sd-jwt"
    status = verified.claims["status"]["status_list"]
    assert status["uri"] == f"{service.url}/status/1" and isinstance(status["idx"], int)
    assert verified.disclosed  # the type's selectively disclosable claims really are
    assert service.count("issuer_issued") == issued_before + 1
    # Once everything offered is issued the agency keeps no copy of the claims.
    ((claims,),) = service.rows("SELECT claims FROM issuer_offer WHERE offer_id = ?",
                                (offer.offer_id,))
    assert claims is None


def test_offer_by_value_redeems_two_credentials_in_offer_order(
    service: IssuerService, holder: SigningKey
) -> None:
    offer = service.offer("diploma", "employee-card", tx_code=False)
    with HttpxTransport() as transport:
        tokens = redeem_offer(parse_credential_offer(offer.uri), transport=transport, tx_code=None,
                              holder_key=holder, receive=lambda credential: credential)
    vcts = [verify_issued(t, issuer_keys=_issued_keys(service), now=_now(service)).vct
            for t in tokens]
    assert vcts == [VCTS["diploma"], VCTS["employee-card"]]
    indices = {i for _, i in service.rows(
        "SELECT configuration, idx FROM issuer_issued WHERE offer_id = ?", (offer.offer_id,))}
    assert len(indices) == 2


def test_the_same_holder_key_can_be_bound_with_eddsa(service: IssuerService) -> None:
    key = generate_signing_key(Alg.EDDSA)
    offer = service.offer("diploma")
    with HttpxTransport() as transport:
        [token] = redeem_offer(parse_credential_offer(offer.uri), transport=transport,
                               tx_code=offer.tx_code, holder_key=key, receive=lambda c: c)
    verify_issued(token, issuer_keys=_issued_keys(service), now=_now(service),
                  holder_key=key.public)


CREDENTIAL_ISSUER_SHAPE = {
    "type": "object",
    "required": ["credential_issuer", "credential_endpoint", "nonce_endpoint",
                 "credential_configurations_supported"],
    "properties": {
        "credential_issuer": {"type": "string", "pattern": "^http"},
        "credential_endpoint": {"type": "string"},
        "nonce_endpoint": {"type": "string"},
        "display": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "locale"]}},
        "credential_configurations_supported": {
            "type": "object", "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["format", "vct", "cryptographic_binding_methods_supported",
                             "credential_signing_alg_values_supported", "proof_types_supported"],
                "properties": {
                    "format": {"const": "dc+sd-jwt"},
                    "cryptographic_binding_methods_supported": {"const": ["jwk"]},
                    "credential_signing_alg_values_supported": {
                        "type": "array", "items": {"enum": ["ES256", "EdDSA"]}},
                    "proof_types_supported": {
                        "type": "object", "required": ["jwt"], "additionalProperties": False,
                        "properties": {"jwt": {
                            "type": "object", "required": ["proof_signing_alg_values_supported"],
                            "properties": {"proof_signing_alg_values_supported": {
                                "type": "array", "minItems": 1,
                                "items": {"enum": ["ES256", "EdDSA"]}}}}}},
                    "credential_metadata": {"type": "object", "required": ["display"]},
                },
            },
        },
    },
}


def test_credential_issuer_metadata(service: IssuerService) -> None:
    answer = service.client.get(service.url + "/.well-known/openid-credential-issuer")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    metadata = answer.json()
    jsonschema.validate(metadata, CREDENTIAL_ISSUER_SHAPE)
    assert metadata["credential_issuer"] == service.url
    assert metadata["credential_endpoint"] == service.url + "/credential"
    assert metadata["nonce_endpoint"] == service.url + "/nonce"
    assert "authorization_servers" not in metadata  # the issuer is its own AS
    supported = metadata["credential_configurations_supported"]
    assert {k: v["vct"] for k, v in supported.items()} == VCTS
    for configuration_id, vct in VCTS.items():
        display = supported[configuration_id]["credential_metadata"]["display"]
        assert {d["locale"]: d["name"] for d in display} == dict(credential_type(vct).names)
    assert {d["locale"] for d in metadata["display"]} == {"nl", "en"}


def test_authorization_server_metadata_names_the_token_endpoint(service: IssuerService) -> None:
    metadata = service.client.get(service.url + "/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == service.url
    assert metadata["token_endpoint"] == service.url + "/token"
    assert metadata["grant_types_supported"] == [
        "urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    assert metadata["pre-authorized_grant_anonymous_access_supported"] is True


def test_jwt_vc_issuer_metadata_holds_the_signing_key_only(service: IssuerService) -> None:
    metadata = service.client.get(service.url + "/.well-known/jwt-vc-issuer").json()
    assert metadata["issuer"] == service.agency.id
    [key] = metadata["jwks"]["keys"]
    assert "d" not in key and key["kid"] == "gemeente-2027"
    assert parse_jwk(key).public_bytes() == service.agency.signing_key.public.public_bytes()


def test_offer_by_reference_is_json_and_served_only_while_open(service: IssuerService) -> None:
    offer = service.offer()
    answer = service.client.get(offer.offer_url)
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == offer.document
    service.token(offer)
    _problem(service.client.get(offer.offer_url), 404, "issuer.unknown_offer")
    ((document,),) = service.rows("SELECT document FROM issuer_offer WHERE offer_id = ?",
                                  (offer.offer_id,))
    assert document is None


def test_nonce_endpoint_is_never_cached_and_never_repeats(service: IssuerService) -> None:
    answers = [service.client.post(service.url + "/nonce") for _ in range(3)]
    assert all(a.headers["cache-control"] == "no-store" for a in answers)
    assert len({a.json()["c_nonce"] for a in answers}) == 3


def _checker(service: IssuerService) -> StatusListChecker:
    key = JWK(**service.agency.public_jwk)

    def fetch(uri: str) -> bytes:
        answer = service.client.get(uri)
        assert answer.headers["content-type"] == "application/statuslist+jwt"
        return answer.content

    return StatusListChecker(fetch, [key])


def test_status_list_and_revocation_through_the_admin_app(
    service: IssuerService, holder: SigningKey
) -> None:
    offer = service.offer("employee-card")
    with HttpxTransport() as transport:
        [token] = redeem_offer(parse_credential_offer(offer.uri), transport=transport,
                               tx_code=offer.tx_code, holder_key=holder, receive=lambda c: c)
    checker = _checker(service)
    now = _now(service)
    verify_issued(token, issuer_keys=_issued_keys(service), now=now, status_checker=checker)
    listed = service.client.get(f"{service.admin_url}/offers/{offer.offer_id}/credentials").json()
    assert [c["configuration"] for c in listed["credentials"]] == ["employee-card"]

    def act(action: str) -> httpx.Response:
        return service.client.post(
            f"{service.admin_url}/offers/{offer.offer_id}/credentials/employee-card/{action}")

    ttl = service.issuer.policy.status_ttl
    assert act("suspend").json() == {"status": "suspended"}
    with pytest.raises(KluisError) as caught:
        verify_issued(token, issuer_keys=_issued_keys(service), now=now + ttl + 1,
                      status_checker=checker)
    assert caught.value.code == "status.suspended"
    assert act("reinstate").json() == {"status": "valid"}
    assert act("revoke").json() == {"status": "invalid"}
    with pytest.raises(KluisError) as caught:
        verify_issued(token, issuer_keys=_issued_keys(service), now=now + 2 * ttl + 2,
                      status_checker=checker)
    assert caught.value.code == "status.revoked"
    _problem(act("reinstate"), 409, "status.already_revoked")
    # The public app has no route that changes a status.
    answer = service.client.post(
        f"{service.url}/offers/{offer.offer_id}/credentials/employee-card/reinstate")
    assert answer.status_code in (404, 405)


def test_two_nodes_share_every_step(
    module_store_url: str, tmp_path: Path, service: IssuerService, holder: SigningKey
) -> None:
    """A second node on the same store and the same public URL answers any step: the offer
    created on one is redeemed on the other, and a nonce from one is spent on the other."""
    offer = service.offer("income-statement")
    with running_issuer(module_store_url, tmp_path, issuer_agency=service.agency,
                        public_url=service.url) as other:
        token = other.token(offer)
        nonce = service.nonce()
        # Both nodes are the same Credential Issuer: the proof names the public URL.
        answer = other.credential(token, _request(_proof(service, holder, nonce),
                                                  "income-statement"))
        assert answer.status_code == 200, answer.text
        replay = service.credential(token, _request(_proof(service, holder, nonce),
                                                    "income-statement"))
    _problem(replay, 400, "issuer.already_issued", "credential_request_denied")


# --- the token endpoint: OAuth 2.0 errors -----------------------------------------------------


def test_wrong_tx_code_is_counted_and_the_fifth_burns_the_code(service: IssuerService) -> None:
    offer = service.offer()
    for left in (4, 3, 2, 1):
        answer = service.token_response(offer, tx_code="000000" if offer.tx_code != "000000"
                                        else "111111")
        _oauth(answer, "invalid_grant", "issuer.wrong_tx_code")
        assert f"{left} more" in answer.json()["error_description"]
    _oauth(service.token_response(offer, tx_code="999999" if offer.tx_code != "999999"
                                  else "888888"), "invalid_grant", "issuer.code_burned")
    _oauth(service.token_response(offer), "invalid_grant", "issuer.code_burned")
    ((state, failures, claims, document),) = service.rows(
        "SELECT state, failures, claims, document FROM issuer_offer WHERE offer_id = ?",
        (offer.offer_id,))
    assert (state, failures, claims, document) == ("burned", 5, None, None)
    assert service.rows("SELECT 1 FROM issuer_token t JOIN issuer_offer o ON o.code_hash ="
                        " t.code_hash WHERE o.offer_id = ?", (offer.offer_id,)) == []


def test_missing_tx_code(service: IssuerService) -> None:
    offer = service.offer()
    _oauth(service.token_response(offer, tx_code=None), "invalid_request",
           "issuer.tx_code_missing")
    ((failures,),) = service.rows("SELECT failures FROM issuer_offer WHERE offer_id = ?",
                                  (offer.offer_id,))
    assert failures == 0
    service.token(offer)  # the code still works


def test_extra_tx_code(service: IssuerService) -> None:
    offer = service.offer(tx_code=False)
    _oauth(service.token_response(offer, tx_code="123456"), "invalid_request",
           "issuer.tx_code_unexpected")
    service.token(offer)


def test_empty_tx_code_is_a_wrong_one(service: IssuerService) -> None:
    offer = service.offer()
    _oauth(service.token_response(offer, tx_code=""), "invalid_grant", "issuer.wrong_tx_code")


def test_replayed_pre_authorized_code(service: IssuerService) -> None:
    offer = service.offer()
    service.token(offer)
    tokens = service.count("issuer_token")
    _oauth(service.token_response(offer), "invalid_grant", "issuer.code_used")
    assert service.count("issuer_token") == tokens


def test_unknown_pre_authorized_code(service: IssuerService) -> None:
    offer = service.offer()
    _oauth(service.token_response(offer, **{"pre-authorized_code": "x" * 43}),
           "invalid_grant", "issuer.unknown_code")


def test_expired_pre_authorized_code(service: IssuerService) -> None:
    offer = service.offer()
    service.clock.offset = timedelta(seconds=service.issuer.policy.offer_seconds + 1)
    _oauth(service.token_response(offer), "invalid_grant", "issuer.code_expired")
    _problem(service.client.get(offer.offer_url), 404, "issuer.unknown_offer")


@pytest.mark.parametrize(("content", "content_type"), [
    (b'{"grant_type": "x"}', "application/json"),
    (b"grant_type=a&grant_type=b", "application/x-www-form-urlencoded"),
    (b"pre-authorized_code=abc", "application/x-www-form-urlencoded"),
    (b"\xff\xfe=\x00", "application/x-www-form-urlencoded"),
    (b"grant_type", "application/x-www-form-urlencoded"),
    (b"", "application/x-www-form-urlencoded"),
])
def test_malformed_token_requests(
    service: IssuerService, content: bytes, content_type: str
) -> None:
    answer = service.client.post(service.url + "/token", content=content,
                                 headers={"Content-Type": content_type})
    _oauth(answer, "invalid_request", "issuer.bad_token_request")


def test_pre_authorized_grant_without_code(service: IssuerService) -> None:
    answer = service.client.post(service.url + "/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code"})
    _oauth(answer, "invalid_request", "issuer.bad_token_request")


def test_unsupported_grant_type(service: IssuerService) -> None:
    answer = service.client.post(service.url + "/token", data={
        "grant_type": "authorization_code", "code": "abc"})
    _oauth(answer, "unsupported_grant_type", "issuer.unsupported_grant_type")


def test_oversized_token_request(service: IssuerService) -> None:
    answer = service.client.post(service.url + "/token", content=b"a=" + b"b" * 200_000,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    _problem(answer, 413, "http.body_too_large")


# --- the credential endpoint ------------------------------------------------------------------


@pytest.fixture
def token(service: IssuerService) -> str:
    return service.token(service.offer("personal-data", "diploma"))


def test_wrong_c_nonce(service: IssuerService, holder: SigningKey, token: str) -> None:
    snapshot = Snapshot(service)
    answer = service.credential(token, _request(_proof(service, holder, "not-a-nonce")))
    _problem(answer, 400, "proof.wrong_nonce", "invalid_nonce")
    assert snapshot.unchanged()


def test_expired_c_nonce(service: IssuerService, holder: SigningKey, token: str) -> None:
    nonce = service.nonce()
    service.clock.offset = timedelta(seconds=61)  # nonces live 60 s here, tokens 300 s
    snapshot = Snapshot(service)
    answer = service.credential(token, _request(_proof(service, holder, nonce)))
    _problem(answer, 400, "proof.wrong_nonce", "invalid_nonce")
    assert snapshot.unchanged()


def test_replayed_c_nonce(service: IssuerService, holder: SigningKey, token: str) -> None:
    nonce = service.nonce()
    first = service.credential(token, _request(_proof(service, holder, nonce)))
    assert first.status_code == 200, first.text
    snapshot = Snapshot(service)
    again = service.credential(token, _request(_proof(service, holder, nonce), "diploma"))
    _problem(again, 400, "proof.wrong_nonce", "invalid_nonce")
    assert snapshot.unchanged()


def test_proof_with_wrong_aud_keeps_the_nonce(
    service: IssuerService, holder: SigningKey, token: str
) -> None:
    nonce = service.nonce()
    snapshot = Snapshot(service)
    answer = service.credential(token, _request(
        _proof(service, holder, nonce, aud="https://other-issuer.example")))
    _problem(answer, 400, "proof.wrong_audience", "invalid_proof")
    assert snapshot.unchanged()
    # A refused proof does not use up the nonce: the right proof with it still works.
    assert service.credential(token, _request(_proof(service, holder, nonce))).status_code == 200


def _forged(service: IssuerService, header: dict[str, Any], signer: SigningKey) -> str:
    payload = {"aud": service.url, "iat": _now(service), "nonce": service.nonce()}
    return sign_jws({"typ": PROOF_TYP, "alg": signer.alg.value, **header}, payload, signer)


def test_proof_signed_by_another_key_than_its_header_jwk(
    service: IssuerService, holder: SigningKey, token: str
) -> None:
    other = generate_signing_key(Alg.ES256)
    proof = _forged(service, {"jwk": format_jwk(holder.public, with_kid=False)}, other)
    snapshot = Snapshot(service)
    _problem(service.credential(token, _request(proof)), 400, "proof.bad_signature",
             "invalid_proof")
    assert snapshot.unchanged()


def test_private_key_in_the_proof_header(
    service: IssuerService, holder: SigningKey, token: str
) -> None:
    proof = _forged(service, {"jwk": format_private_jwk(holder)}, holder)
    snapshot = Snapshot(service)
    _problem(service.credential(token, _request(proof)), 400, "proof.private_key", "invalid_proof")
    assert snapshot.unchanged()


def test_proof_with_alg_none(service: IssuerService, holder: SigningKey, token: str) -> None:
    header = {"typ": PROOF_TYP, "alg": "none", "jwk": format_jwk(holder.public, with_kid=False)}
    payload = {"aud": service.url, "iat": _now(service), "nonce": service.nonce()}
    proof = ".".join(b64url_encode(json.dumps(p).encode()) for p in (header, payload)) + "."
    snapshot = Snapshot(service)
    _problem(service.credential(token, _request(proof)), 400, "proof.bad_alg", "invalid_proof")
    assert snapshot.unchanged()


def test_missing_bearer_token(service: IssuerService, holder: SigningKey) -> None:
    snapshot = Snapshot(service)
    answer = service.credential(None, _request(_proof(service, holder)))
    _problem(answer, 401, "issuer.no_token")
    assert answer.headers["www-authenticate"] == "Bearer"
    assert snapshot.unchanged()


@pytest.mark.parametrize("authorization", ["Bearer nonsense", "Basic dXNlcjpwdw==", "Bearer"])
def test_invalid_bearer_token(
    service: IssuerService, holder: SigningKey, authorization: str
) -> None:
    answer = service.credential(None, _request(_proof(service, holder)),
                                Authorization=authorization)
    code = "issuer.no_token" if authorization.startswith("Basic") else "issuer.invalid_token"
    body = _problem(answer, 401, code, None if code == "issuer.no_token" else "invalid_token")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "nonsense" not in json.dumps(body)


def test_expired_access_token(service: IssuerService, holder: SigningKey, token: str) -> None:
    service.clock.offset = timedelta(seconds=service.issuer.policy.token_seconds + 1)
    answer = service.credential(token, _request(_proof(service, holder)))
    _problem(answer, 401, "issuer.invalid_token", "invalid_token")
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(("content", "content_type"), [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'{"credential_configuration_id": NaN}', "application/json"),
    (b"credential_configuration_id=x", "application/x-www-form-urlencoded"),
    (b'{"proofs": {}}', "application/json"),
    (b'{"credential_identifier": "x", "proofs": {}}', "application/json"),
])
def test_malformed_credential_requests(
    service: IssuerService, token: str, content: bytes, content_type: str
) -> None:
    snapshot = Snapshot(service)
    answer = service.client.post(service.url + "/credential", content=content, headers={
        "Authorization": f"Bearer {token}", "Content-Type": content_type})
    _problem(answer, 400, "issuer.bad_credential_request", "invalid_credential_request")
    assert snapshot.unchanged()


@pytest.mark.parametrize("proofs", [
    None, {}, {"jwt": []}, {"jwt": "x"}, {"jwt": ["a", "b"]}, {"di_vp": [{}]}, {"jwt": [1]},
    {"jwt": ["a"], "attestation": ["b"]},
])
def test_bad_proofs_member(service: IssuerService, token: str, proofs: Any) -> None:
    body: dict[str, Any] = {"credential_configuration_id": "personal-data"}
    if proofs is not None:
        body["proofs"] = proofs
    _problem(service.credential(token, body), 400, "issuer.bad_proofs", "invalid_proof")


def test_unknown_credential_configuration(
    service: IssuerService, holder: SigningKey, token: str
) -> None:
    nonce = service.nonce()
    answer = service.credential(token, _request(_proof(service, holder, nonce), "passport"))
    _problem(answer, 400, "issuer.unknown_configuration", "unknown_credential_configuration")
    # The refusal came before the proof was looked at: the nonce is still good.
    assert service.credential(token, _request(_proof(service, holder, nonce))).status_code == 200


def test_configuration_not_offered_under_this_token(
    service: IssuerService, holder: SigningKey, token: str
) -> None:
    answer = service.credential(token, _request(_proof(service, holder), "employee-card"))
    _problem(answer, 400, "issuer.not_offered", "credential_request_denied")


def test_encrypted_response_requested(
    service: IssuerService, holder: SigningKey, token: str
) -> None:
    body = _request(_proof(service, holder), credential_response_encryption={
        "jwk": {"kty": "EC"}, "enc": "A128GCM"})
    _problem(service.credential(token, body), 400, "issuer.encryption_unsupported",
             "invalid_encryption_parameters")


def test_oversized_credential_request(service: IssuerService, token: str) -> None:
    answer = service.client.post(service.url + "/credential", content=b"[" * 200_000, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    _problem(answer, 413, "http.body_too_large")


def test_unknown_members_are_ignored(
    service: IssuerService, holder: SigningKey, token: str
) -> None:
    answer = service.credential(token, _request(_proof(service, holder), future_member={"a": 1}))
    assert answer.status_code == 200, answer.text


# --- other routes ----------------------------------------------------------------------------


def test_unknown_offer_and_status_list(service: IssuerService) -> None:
    _problem(service.client.get(service.url + "/offers/nothing-here"), 404, "issuer.unknown_offer")
    _problem(service.client.get(service.url + "/status/2"), 404, "issuer.unknown_status_list")
    _problem(service.client.get(service.url + "/status/a.b"), 400, "http.invalid_request")


def test_admin_refuses_a_bad_offer(service: IssuerService) -> None:
    answer = service.client.post(service.admin_url + "/offers", json={
        "credentials": {"diploma": {"institution": "X"}}})
    _problem(answer, 400, "credential_type.invalid_claims")
    answer = service.client.post(service.admin_url + "/offers", json={
        "credentials": {"diploma": {**CLAIMS["diploma"], "iss": "https://evil.example"}}})
    _problem(answer, 400, "sdjwt.claim_reserved")
    answer = service.client.post(service.admin_url + "/offers", json={
        "credentials": {"passport": {}}})
    _problem(answer, 400, "issuer.unknown_configuration")


def test_admin_creates_an_offer_the_wallet_redeems(
    service: IssuerService, holder: SigningKey
) -> None:
    answer = service.client.post(service.admin_url + "/offers", json={
        "credentials": {"diploma": CLAIMS["diploma"]}})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert len(created["tx_code"]) == 6 and created["tx_code"].isdigit()
    with HttpxTransport() as transport:
        [credential] = redeem_offer(
            parse_credential_offer(created["credential_offer_by_reference"]),
            transport=transport, tx_code=created["tx_code"], holder_key=holder,
            receive=lambda c: c)
    assert verify_issued(credential, issuer_keys=_issued_keys(service),
                         now=_now(service)).vct == VCTS["diploma"]


def test_sweep_forgets_what_can_no_longer_be_used(service: IssuerService) -> None:
    waiting = service.offer()
    redeemed = service.offer()
    service.token(redeemed)
    service.nonce()
    later = service.clock() + timedelta(seconds=3600)
    assert service.issuer.sweep(now=later) >= 4
    for offer in (waiting, redeemed):
        assert service.rows("SELECT 1 FROM issuer_offer WHERE offer_id = ?",
                            (offer.offer_id,)) == []
    assert service.rows("SELECT 1 FROM issuer_nonce WHERE expires_at <= ?",
                        (int(later.timestamp()),)) == []


def test_token_lifetime_is_short(service: IssuerService) -> None:
    body = service.token_response(service.offer()).json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 300
