"""Parsing OpenID4VP 1.0 requests (file form and signed Request Objects): every malformed case
refused with its code, unknown parameters ignored, the id stable."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from consent_world import (
    DEV_CLIENT,
    NOW,
    UTRECHT_CLIENT,
    World,
    purpose_data,
    request_params,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import KluisError
from verifiers.credential_type import DIPLOMA, EMPLOYEE_CARD, INCOME_STATEMENT, PERSONAL_DATA
from verifiers.jws import Alg, generate_signing_key, sign_jws
from verifiers.trustlist import TrustAnchor, verify_trust_list
from wallet.purpose import format_purpose
from wallet.request import (
    MAX_REQUEST_BYTES,
    ClientIdPrefix,
    ResponseMode,
    parse_request,
    restore_request,
)
from wallet.request_object import TrustListVerifierKeys


def _code(source: object, **kwargs: Any) -> str:
    with pytest.raises(KluisError) as error:
        parse_request(source, **kwargs)
    return error.value.code


def _trust(world: World) -> TrustListVerifierKeys:
    anchor = TrustAnchor.from_jwk("kluis test anchor", world.keys.anchor)
    return TrustListVerifierKeys(verify_trust_list(world.signed_trust_list(), anchor, now=NOW))


def _signed(world: World, params: dict[str, Any], *, key: Any = None, typ: str =
            "oauth-authz-req+jwt", kid: str = "utrecht-requests") -> str:
    signer = key or world.keys.utrecht
    return sign_jws({"alg": signer.alg.value, "typ": typ, "kid": kid}, params, signer)


def test_a_good_file_request_parses() -> None:
    request = parse_request(request_params())
    assert request.client_id == UTRECHT_CLIENT and request.prefix is ClientIdPrefix.X509_HASH
    assert request.response_mode is ResponseMode.DIRECT_POST
    assert request.response_uri == "https://utrecht.kluis.example/openid4vp/response"
    assert request.nonce == "n-0S6_WzA2Mj-Aq9fJ3x7Q" and request.state == "wmo-2027-0001"
    assert [q.id for q in request.dcql.credentials] == ["pid", "income"]
    purpose = request.purpose
    assert (purpose.purpose_id, purpose.dpv, purpose.processing_activity) == (
        "wmo-household-help", "dpv:ServiceProvision", "utrecht-va-0042")
    assert purpose.retention.duration == "P2Y"
    assert request.expires_at == datetime(2027, 3, 6, 12, tzinfo=UTC)
    assert not request.signed and request.expired(datetime(2027, 3, 6, 12, tzinfo=UTC))


def test_json_text_bytes_and_mapping_give_the_same_stable_id() -> None:
    params = request_params()
    text = json.dumps(params, indent=2)
    ids = {parse_request(params).id, parse_request(text).id, parse_request(text.encode()).id,
           parse_request(json.loads(text)).id}
    assert len(ids) == 1 and len(ids.pop()) == 16
    assert parse_request(request_params(nonce="another-nonce-0123456")).id != parse_request(
        params).id


def test_unknown_parameters_are_ignored_and_stored_requests_restore() -> None:
    params = request_params(something_new={"x": 1}, request_uri_method="get")
    request = parse_request(params)
    again = restore_request(json.loads(json.dumps(dict(request.parameters))), signed=False,
                            source=request.source)
    assert again.id == request.id and again.purpose == request.purpose


def test_form_encoded_parameters_are_json_text() -> None:
    params = request_params()
    for name in ("dcql_query", "client_metadata", "verifier_info"):
        params[name] = json.dumps(params[name])
    assert parse_request(params).purpose.purpose_id == "wmo-household-help"


def test_redirect_uri_client_id_is_its_response_uri() -> None:
    ok = parse_request(request_params(client_id=DEV_CLIENT, response_uri=None))
    assert ok.response_uri == "https://dev.kluis.example/response"
    assert ok.prefix is ClientIdPrefix.REDIRECT_URI
    assert _code(request_params(client_id=DEV_CLIENT)) == "request.bad_client_id"


def _without_purpose_member(name: str) -> dict[str, Any]:
    return request_params(verifier_info=[{"format": "kluis_purpose",
                                          "data": purpose_data(**{name: None})}])


def _dcql(*credentials: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"credentials": list(credentials), **extra}


def _query(vct: str = PERSONAL_DATA, *paths: list[Any], **extra: Any) -> dict[str, Any]:
    out = {"id": "q", "format": "dc+sd-jwt", "meta": {"vct_values": [vct]},
           "claims": [{"path": p} for p in paths or (["given_name"],)]}
    out.update(extra)
    return out


def format_purpose_dict() -> dict[str, Any]:
    return {"format": "kluis_purpose", "data": purpose_data()}


MALFORMED: dict[str, tuple[Any, str]] = {
    "not_an_object": ("[1, 2]", "request.malformed"),
    "not_json": ("{nope", "request.malformed"),
    "duplicate_member": ('{"nonce": "a", "nonce": "b"}', "request.malformed"),
    "a_number": (42, "request.malformed"),
    "not_utf8": (b"{\xff}", "request.malformed"),
    "oversized": (json.dumps(request_params(padding="x" * MAX_REQUEST_BYTES)),
                  "request.too_large"),
    "oversized_mapping": (request_params(padding="x" * MAX_REQUEST_BYTES), "request.too_large"),
    "transaction_data": (request_params(transaction_data=["eyJ0eXBlIjoieCJ9"]),
                         "request.transaction_data"),
    "no_client_id": (request_params(client_id=None), "request.bad_client_id"),
    "pre_registered_client_id": (request_params(client_id="utrecht"),
                                 "request.unsupported_client_id"),
    "x509_san_dns_prefix": (request_params(client_id="x509_san_dns:utrecht.kluis.example"),
                            "request.unsupported_client_id"),
    "verifier_attestation_prefix": (request_params(client_id="verifier_attestation:u"),
                                    "request.unsupported_client_id"),
    "origin_prefix": (request_params(client_id="origin:https://u.example"),
                      "request.unsupported_client_id"),
    "short_x509_hash": (request_params(client_id="x509_hash:abc"), "request.bad_client_id"),
    "code_response_type": (request_params(response_type="code"), "request.bad_response_type"),
    "fragment_response_mode": (request_params(response_mode="fragment"),
                               "request.bad_response_mode"),
    "no_response_uri": (request_params(response_uri=None), "request.bad_response_uri"),
    "http_response_uri": (request_params(response_uri="http://utrecht.kluis.example/r"),
                          "request.bad_response_uri"),
    "redirect_uri_with_direct_post": (request_params(redirect_uri="https://u.example/cb"),
                                      "request.bad_response_uri"),
    "no_nonce": (request_params(nonce=None), "request.bad_nonce"),
    "short_nonce": (request_params(nonce="abc123"), "request.bad_nonce"),
    "nonce_with_space": (request_params(nonce="nonce with spaces ok?"), "request.bad_nonce"),
    "nonce_not_text": (request_params(nonce=12345678), "request.bad_nonce"),
    "bad_state": (request_params(state="a b"), "request.bad_state"),
    "no_state_without_holder_binding": (
        request_params(state=None, dcql_query=_dcql(_query(
            require_cryptographic_holder_binding=False))), "request.bad_state"),
    "no_dcql": (request_params(dcql_query=None), "request.no_query"),
    "scope_and_dcql": (request_params(scope="openid"), "request.malformed"),
    "dcql_not_object": (request_params(dcql_query=[1]), "dcql.malformed"),
    "dcql_duplicate_ids": (request_params(dcql_query=_dcql(_query(), _query())),
                           "dcql.duplicate_id"),
    "dcql_bad_path": (request_params(dcql_query=_dcql(_query(PERSONAL_DATA, [-1]))),
                      "dcql.bad_path"),
    "dcql_no_meta": (request_params(dcql_query=_dcql({"id": "q", "format": "dc+sd-jwt"})),
                     "dcql.bad_meta"),
    "mdoc_format": (request_params(dcql_query=_dcql({"id": "q", "format": "mso_mdoc",
                                                     "meta": {"doctype_value": "x"}})),
                    "request.unsupported_format"),
    "unknown_vct": (request_params(dcql_query=_dcql(_query("https://other.example/vct"))),
                    "request.unknown_type"),
    "unknown_claim": (request_params(dcql_query=_dcql(_query(PERSONAL_DATA, ["shoe_size"]))),
                      "request.unknown_claim"),
    "unknown_nested_claim": (request_params(dcql_query=_dcql(_query(
        PERSONAL_DATA, ["address", "floor"]))), "request.unknown_claim"),
    "claim_of_another_type": (request_params(dcql_query=_dcql(_query(DIPLOMA, ["bsn"]))),
                              "request.unknown_claim"),
    "client_metadata_not_object": (request_params(client_metadata=[1]), "request.malformed"),
    "no_verifier_info": (request_params(verifier_info=None), "request.no_purpose"),
    "no_kluis_purpose": (request_params(verifier_info=[{"format": "jwt", "data": "e.x.y"}]),
                         "request.no_purpose"),
    "two_kluis_purposes": (request_params(verifier_info=[format_purpose_dict()] * 2),
                           "request.bad_purpose"),
    "purpose_for_some_credentials": (request_params(verifier_info=[
        {**format_purpose_dict(), "credential_ids": ["pid"]}]), "request.bad_purpose"),
    "missing_purpose_id": (_without_purpose_member("purpose_id"), "request.no_purpose"),
    "missing_description": (_without_purpose_member("description"), "request.no_purpose"),
    "missing_legal_basis": (_without_purpose_member("legal_basis"), "request.no_legal_basis"),
    "missing_retention": (_without_purpose_member("retention"), "request.no_retention"),
    "missing_processing_activity": (_without_purpose_member("processing_activity"),
                                    "request.no_processing_activity"),
    "missing_expiry": (_without_purpose_member("expires_at"), "request.no_expiry"),
    "bad_dpv": (request_params(verifier_info=[{"format": "kluis_purpose", "data": purpose_data(
        dpv="ServiceProvision")}]), "request.bad_purpose"),
    "bad_duration": (request_params(verifier_info=[{"format": "kluis_purpose", "data":
        purpose_data(retention={"duration": "two years"})}]), "request.bad_purpose"),
    "legal_basis_one_language": (request_params(verifier_info=[{"format": "kluis_purpose",
        "data": purpose_data(legal_basis={"nl": "Wmo"})}]), "request.bad_purpose"),
    "bad_expiry_time": (request_params(verifier_info=[{"format": "kluis_purpose", "data":
        purpose_data(expires_at="tomorrow")}]), "request.bad_purpose"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_are_refused_with_their_code(case: str) -> None:
    source, code = MALFORMED[case]
    assert _code(copy.deepcopy(source)) == code


def test_the_four_credential_types_can_be_asked_for() -> None:
    for vct, path in ((PERSONAL_DATA, ["address", "postal_code"]),
                      (INCOME_STATEMENT, ["income_bracket", "code"]),
                      (DIPLOMA, ["degree"]), (EMPLOYEE_CARD, ["organisation"])):
        assert parse_request(request_params(dcql_query=_dcql(_query(vct, path)))).dcql


def test_a_purpose_element_round_trips() -> None:
    purpose = parse_request(request_params()).purpose
    assert parse_request(request_params(verifier_info=[format_purpose(purpose)])).purpose == (
        purpose)


# --- signed Request Objects ----------------------------------------------------------------


def test_a_signed_request_object_verifies_with_the_verifiers_registered_key(
    world: World,
) -> None:
    params = request_params(aud="https://self-issued.me/v2", exp=int(NOW.timestamp()) + 600,
                            iss="ignored")
    params["verifier_info"][0]["data"].pop("expires_at")
    request = parse_request(_signed(world, params), verifier_keys=_trust(world),
                            expected_client_id=UTRECHT_CLIENT)
    assert request.signed and request.expires_at.timestamp() == NOW.timestamp() + 600
    assert request.purpose.purpose_id == "wmo-household-help"


def test_the_earlier_of_exp_and_expires_at_counts(world: World) -> None:
    params = request_params(exp=int(NOW.timestamp()) + 10 * 86400)
    request = parse_request(_signed(world, params), verifier_keys=_trust(world))
    assert request.expires_at == datetime(2027, 3, 6, 12, tzinfo=UTC)


SIGNED_CASES = {
    "wrong_typ": ({"typ": "JWT"}, {}, "request.wrong_type"),
    "other_key": ({"key": "stranger"}, {}, "request.bad_signature"),
    "unknown_kid": ({"kid": "nope"}, {}, "trustlist.unknown_key"),
    "unregistered_signer": ({}, {"client_id": "x509_hash:" + "A" * 43}, "trustlist.not_a_verifier"),
    "signed_redirect_uri": ({"key": "dev", "kid": "dev-requests"},
                            {"client_id": DEV_CLIENT, "response_uri": None},
                            "request.unsupported_client_id"),
    "wrong_audience": ({}, {"aud": "https://wallet.example"}, "request.mismatch"),
    "exp_not_a_number": ({}, {"exp": "soon"}, "request.malformed"),
}


@pytest.mark.parametrize("case", sorted(SIGNED_CASES))
def test_bad_request_objects_are_refused(world: World, case: str) -> None:
    how, changes, code = SIGNED_CASES[case]
    key = {"stranger": generate_signing_key(Alg.ES256), "dev": world.keys.dev}.get(how.get("key"))
    token = _signed(world, request_params(**changes), key=key, typ=how.get("typ",
                    "oauth-authz-req+jwt"), kid=how.get("kid", "utrecht-requests"))
    assert _code(token, verifier_keys=_trust(world)) == code


def test_request_object_checks_the_announced_client_id_and_wallet_nonce(world: World) -> None:
    token = _signed(world, request_params(wallet_nonce="wn-123"))
    keys = _trust(world)
    assert _code(token, verifier_keys=keys, expected_client_id=DEV_CLIENT) == "request.mismatch"
    assert _code(token, verifier_keys=keys, wallet_nonce="other") == "request.mismatch"
    assert parse_request(token, verifier_keys=keys, wallet_nonce="wn-123").signed


def test_a_request_object_without_a_trust_list_is_unverifiable(world: World) -> None:
    assert _code(_signed(world, request_params())) == "request.unverifiable"


def test_alg_none_and_garbage_tokens_are_refused(world: World) -> None:
    keys = _trust(world)
    assert _code("a.b.c", verifier_keys=keys) == "jws.malformed"
    assert _code("not a token", verifier_keys=keys) == "request.malformed"
    token = _signed(world, request_params())
    head = json.dumps({"alg": "none", "typ": "oauth-authz-req+jwt"}).encode()
    import base64

    none = base64.urlsafe_b64encode(head).rstrip(b"=").decode() + "." + token.split(".")[1] + "."
    assert _code(none, verifier_keys=keys) in ("jws.alg_none", "jws.malformed")


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20))
def test_random_json_raises_only_kluis_errors(value: object) -> None:
    for source in (value, json.dumps(value)):
        try:
            parse_request(source)
        except KluisError:
            pass


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_good_requests_raise_only_kluis_errors(data: st.DataObject) -> None:
    params = request_params()
    name = data.draw(st.sampled_from(sorted(params)))
    params[name] = data.draw(st.none() | st.integers() | st.text(max_size=30) | st.lists(
        st.integers(), max_size=3) | st.dictionaries(st.text(max_size=5), st.integers(),
                                                     max_size=3))
    try:
        parse_request(params)
    except KluisError:
        pass
