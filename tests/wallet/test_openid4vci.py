"""The wallet's OpenID4VCI client without a server: offers parsed strictly, and every answer
an issuer could give (good, malformed, hostile, oversized, redirecting) met with the right
``vci.*`` error and nothing handed to ``receive``. The real-HTTP flow against kluis's own
issuer is in tests/server/test_issuer.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest

from vault import KluisError
from verifiers.credential_type import DIPLOMA
from verifiers.issuer import issue_sd_jwt
from verifiers.jws import Alg, SigningKey, generate_signing_key
from verifiers.proof import verify_proof_jwt
from wallet.credential_offer import (
    CredentialOffer,
    OfferReference,
    TxCodeSpec,
    check_tx_code,
    parse_credential_offer,
)
from wallet.openid4vci import redeem_offer, well_known_url
from wallet.transport import Response

ISSUER = "https://duo.kluis.example"
GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
NOW = 1_800_000_000


def _offer(**changes: Any) -> dict[str, Any]:
    offer: dict[str, Any] = {
        "credential_issuer": ISSUER,
        "credential_configuration_ids": ["diploma"],
        "grants": {GRANT: {"pre-authorized_code": "code-1",
                           "tx_code": {"input_mode": "numeric", "length": 6}}},
    }
    offer.update(changes)
    return offer


def _uri(document: Mapping[str, Any]) -> str:
    return "openid-credential-offer://?credential_offer=" + quote(json.dumps(document), safe="")


def _code(call: Callable[[], object]) -> str:
    with pytest.raises(KluisError) as caught:
        call()
    return caught.value.code


# --- offers ------------------------------------------------------------------------------------


def test_offer_by_value_uri() -> None:
    offer = parse_credential_offer(_uri(_offer()))
    assert offer == CredentialOffer(ISSUER, ("diploma",), "code-1", TxCodeSpec("numeric", 6))


def test_offer_as_qr_text_and_as_json() -> None:
    assert parse_credential_offer("\n  " + _uri(_offer()) + " \n") == parse_credential_offer(
        json.dumps(_offer()))


def test_offer_by_reference() -> None:
    uri = "openid-credential-offer://?credential_offer_uri=" + quote(
        "https://duo.kluis.example/offers/abc", safe="")
    assert parse_credential_offer(uri) == OfferReference("https://duo.kluis.example/offers/abc")


def test_empty_tx_code_object_still_means_a_code_is_needed() -> None:
    offer = parse_credential_offer(_uri(_offer(grants={GRANT: {
        "pre-authorized_code": "c", "tx_code": {}}})))
    assert isinstance(offer, CredentialOffer) and offer.tx_code == TxCodeSpec()


def test_unknown_members_are_ignored() -> None:
    offer = parse_credential_offer(_uri(_offer(future={"x": 1})))
    assert isinstance(offer, CredentialOffer)


@pytest.mark.parametrize(("text", "code"), [
    ("", "vci.bad_offer"),
    ("hello", "vci.bad_offer"),
    ("openid-credential-offer://?foo=bar", "vci.bad_offer"),
    ("openid-credential-offer://?credential_offer=%7B", "vci.bad_offer"),
    ("openid-credential-offer://?credential_offer=%5B%5D", "vci.bad_offer"),
    ("openid-credential-offer://?credential_offer=x&credential_offer=y", "vci.bad_offer"),
    ("openid-credential-offer://?credential_offer=%7B%7D&credential_offer_uri=https%3A%2F%2Fa",
     "vci.bad_offer"),
    ("openid-credential-offer://?credential_offer_uri=http%3A%2F%2Fevil.example%2Fo",
     "vci.insecure_url"),
    ("openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fu%3Ap%40evil.example%2F",
     "vci.insecure_url"),
    ("{" + "x" * 20_000 + "}", "vci.bad_offer"),
    ('{"credential_issuer": NaN}', "vci.bad_offer"),
])
def test_not_an_offer(text: str, code: str) -> None:
    assert _code(lambda: parse_credential_offer(text)) == code


@pytest.mark.parametrize(("changes", "code"), [
    ({"credential_issuer": None}, "vci.bad_offer"),
    ({"credential_issuer": "http://duo.kluis.example"}, "vci.insecure_url"),
    ({"credential_issuer": "https://duo.kluis.example?x=1"}, "vci.bad_offer"),
    ({"credential_configuration_ids": []}, "vci.bad_offer"),
    ({"credential_configuration_ids": ["a", "a"]}, "vci.bad_offer"),
    ({"credential_configuration_ids": "diploma"}, "vci.bad_offer"),
    ({"grants": {"authorization_code": {"issuer_state": "s"}}}, "vci.unsupported"),
    ({"grants": None}, "vci.unsupported"),
    ({"grants": {GRANT: {}}}, "vci.bad_offer"),
    ({"grants": {GRANT: {"pre-authorized_code": 5}}}, "vci.bad_offer"),
    ({"grants": {GRANT: {"pre-authorized_code": "c", "tx_code": "123"}}}, "vci.bad_offer"),
    ({"grants": {GRANT: {"pre-authorized_code": "c", "tx_code": {"input_mode": "morse"}}}},
     "vci.bad_offer"),
    ({"grants": {GRANT: {"pre-authorized_code": "c", "tx_code": {"length": 0}}}},
     "vci.bad_offer"),
    ({"grants": {GRANT: {"pre-authorized_code": "c", "tx_code": {"description": "x" * 301}}}},
     "vci.bad_offer"),
])
def test_bad_offer_members(changes: dict[str, Any], code: str) -> None:
    document = {k: v for k, v in _offer(**changes).items() if v is not None}
    assert _code(lambda: parse_credential_offer(json.dumps(document))) == code


def _parsed(**changes: Any) -> CredentialOffer:
    offer = parse_credential_offer(json.dumps(_offer(**changes)))
    assert isinstance(offer, CredentialOffer)
    return offer


@pytest.mark.parametrize(("tx_code", "code"), [
    (None, "vci.tx_code_required"),
    ("12345", "vci.bad_tx_code"),
    ("12345a", "vci.bad_tx_code"),
    ("１２３４５６", "vci.bad_tx_code"),  # full-width digits are not ASCII digits
    ("", "vci.bad_tx_code"),
])
def test_tx_code_checked_against_the_offer(tx_code: str | None, code: str) -> None:
    assert _code(lambda: check_tx_code(_parsed(), tx_code)) == code


def test_tx_code_for_an_offer_without_one() -> None:
    offer = _parsed(grants={GRANT: {"pre-authorized_code": "c"}})
    assert check_tx_code(offer, None) is None
    assert _code(lambda: check_tx_code(offer, "123456")) == "vci.tx_code_unexpected"


def test_well_known_url_goes_between_host_and_path() -> None:
    assert well_known_url("https://issuer.example.com/tenant", "openid-credential-issuer") == (
        "https://issuer.example.com/.well-known/openid-credential-issuer/tenant")
    assert well_known_url("https://a.example", "oauth-authorization-server") == (
        "https://a.example/.well-known/oauth-authorization-server")


# --- the flow against a scripted issuer ---------------------------------------------------------


def _json(status: int, body: Any, **headers: str) -> Response:
    return Response(status, {"content-type": "application/json", **headers},
                    json.dumps(body).encode())


@dataclass
class FakeIssuer:
    """A scripted issuer: answers by (method, URL); ``overrides`` replace single answers."""

    key: SigningKey = field(default_factory=lambda: generate_signing_key(Alg.ES256))
    overrides: dict[tuple[str, str], Callable[[Mapping[str, str], bytes], Response]] = field(
        default_factory=dict)
    calls: list[tuple[str, str, Mapping[str, str], bytes]] = field(default_factory=list)
    nonces: list[str] = field(default_factory=list)
    vct: str = DIPLOMA
    metadata: dict[str, Any] = field(default_factory=lambda: {
        "credential_issuer": ISSUER,
        "credential_endpoint": ISSUER + "/credential",
        "nonce_endpoint": ISSUER + "/nonce",
        "credential_configurations_supported": {"diploma": {
            "format": "dc+sd-jwt", "vct": DIPLOMA,
            "cryptographic_binding_methods_supported": ["jwk"],
            "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
        }},
    })
    as_metadata: dict[str, Any] = field(default_factory=lambda: {
        "issuer": ISSUER, "token_endpoint": ISSUER + "/token",
        "grant_types_supported": [GRANT]})

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes = b"",
                timeout: float | None = None) -> Response:
        self.calls.append((method, url, headers, body))
        if (method, url) in self.overrides:
            return self.overrides[(method, url)](headers, body)
        routes: dict[tuple[str, str], Callable[[Mapping[str, str], bytes], Response]] = {
            ("GET", ISSUER + "/.well-known/openid-credential-issuer"):
                lambda h, b: _json(200, self.metadata),
            ("GET", ISSUER + "/.well-known/oauth-authorization-server"):
                lambda h, b: _json(200, self.as_metadata),
            ("POST", ISSUER + "/token"): self.token,
            ("POST", ISSUER + "/nonce"): self.nonce,
            ("POST", ISSUER + "/credential"): self.credential,
        }
        return routes[(method, url)](headers, body) if (method, url) in routes else _json(404, {})

    def token(self, headers: Mapping[str, str], body: bytes) -> Response:
        form = dict(parse_qsl(body.decode()))
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        if form.get("tx_code") != "493536":
            return _json(400, {"error": "invalid_grant", "error_description": "wrong code"})
        return _json(200, {"access_token": "at-1", "token_type": "Bearer", "expires_in": 300})

    def nonce(self, headers: Mapping[str, str], body: bytes) -> Response:
        self.nonces.append(f"n-{len(self.nonces)}")
        return _json(200, {"c_nonce": self.nonces[-1]}, **{"cache-control": "no-store"})

    def credential(self, headers: Mapping[str, str], body: bytes) -> Response:
        assert headers["Authorization"] == "Bearer at-1"
        request = json.loads(body)
        [proof] = request["proofs"]["jwt"]
        holder = verify_proof_jwt(proof, audience=ISSUER, nonce=self.nonces[-1], now=NOW,
                                  max_age=60)
        token = issue_sd_jwt({"institution": "UU", "degree": "MSc", "date_awarded": "2009-08-31"},
                             issuer_key=self.key, iss=ISSUER, vct=self.vct, now=NOW,
                             exp=NOW + 3600, holder_key=holder)
        return _json(200, {"credentials": [{"credential": token}]})


@pytest.fixture
def holder() -> SigningKey:
    return generate_signing_key(Alg.ES256)


def _clock() -> datetime:
    return datetime.fromtimestamp(NOW, UTC)


def _redeem(issuer: FakeIssuer, holder: SigningKey, *, tx_code: str | None = "493536",
            offer: CredentialOffer | OfferReference | None = None,
            receive: Callable[[str], Any] = lambda credential: credential) -> list[Any]:
    return redeem_offer(offer or _parsed(), transport=issuer, tx_code=tx_code, holder_key=holder,
                        receive=receive, clock=_clock)


def test_the_flow_sends_what_the_spec_says(holder: SigningKey) -> None:
    issuer = FakeIssuer()
    [credential] = _redeem(issuer, holder)
    assert credential.endswith("~") and credential.count(".") >= 2
    assert [(m, u.removeprefix(ISSUER)) for m, u, _, _ in issuer.calls] == [
        ("GET", "/.well-known/openid-credential-issuer"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("POST", "/token"), ("POST", "/nonce"), ("POST", "/credential")]
    token_form = dict(parse_qsl(issuer.calls[2][3].decode()))
    assert token_form == {"grant_type": GRANT, "pre-authorized_code": "code-1",
                          "tx_code": "493536"}


def test_offer_by_reference_is_fetched_first(holder: SigningKey) -> None:
    issuer = FakeIssuer()
    issuer.overrides[("GET", ISSUER + "/offers/o1")] = lambda h, b: _json(200, _offer())
    received = _redeem(issuer, holder, offer=OfferReference(ISSUER + "/offers/o1"), receive=len)
    assert received[0] > 100 and issuer.calls[0][1] == ISSUER + "/offers/o1"


def test_missing_tx_code_sends_nothing(holder: SigningKey) -> None:
    issuer = FakeIssuer()
    assert _code(lambda: _redeem(issuer, holder, tx_code=None)) == "vci.tx_code_required"
    assert issuer.calls == []


def test_wrong_tx_code_is_a_refused_grant(holder: SigningKey) -> None:
    issuer = FakeIssuer()
    with pytest.raises(KluisError) as caught:
        _redeem(issuer, holder, tx_code="000000")
    assert caught.value.code == "vci.grant_refused"
    assert caught.value.fields["reason"] == "wrong code"
    assert [u for _, u, _, _ in issuer.calls][-1] == ISSUER + "/token"


def _override(issuer: FakeIssuer, method: str, path: str, answer: Response) -> FakeIssuer:
    issuer.overrides[(method, ISSUER + path)] = lambda h, b: answer
    return issuer


METADATA = "/.well-known/openid-credential-issuer"
AS_METADATA = "/.well-known/oauth-authorization-server"


@pytest.mark.parametrize(("method", "path", "answer", "code"), [
    ("GET", METADATA, Response(302, {"location": "https://evil.example/"}, b""), "vci.redirected"),
    ("GET", METADATA, Response(200, {"content-type": "application/json"}, b"{" * 70_000),
     "vci.answer_too_large"),
    ("GET", METADATA, Response(200, {"content-type": "application/json",
                                     "content-length": "99999999"}, b"{}"),
     "vci.answer_too_large"),
    ("GET", METADATA, Response(200, {"content-type": "text/html"}, b"<html>"), "vci.bad_answer"),
    ("GET", METADATA, Response(200, {"content-type": "application/json"}, b"[]"),
     "vci.bad_answer"),
    ("GET", METADATA, Response(503, {}, b""), "vci.unavailable"),
    ("GET", METADATA, Response(429, {"retry-after": "5"}, b""), "vci.unavailable"),
    ("GET", METADATA, Response(404, {}, b""), "vci.bad_answer"),
    ("GET", AS_METADATA, _json(200, {"issuer": "https://other.example",
                                     "token_endpoint": ISSUER + "/token"}), "vci.bad_metadata"),
    ("GET", AS_METADATA, _json(200, {"issuer": ISSUER, "token_endpoint": "https://evil.example/t"}),
     "vci.bad_metadata"),
    ("GET", AS_METADATA, _json(200, {"issuer": ISSUER, "token_endpoint": ISSUER + "/token",
                                     "grant_types_supported": ["authorization_code"]}),
     "vci.unsupported"),
    ("POST", "/token", _json(400, {"error": "invalid_request"}), "vci.token_refused"),
    ("POST", "/token", Response(400, {}, b"oops"), "vci.bad_answer"),
    ("POST", "/token", _json(200, {"access_token": "x", "token_type": "DPoP"}), "vci.unsupported"),
    ("POST", "/token", _json(200, {"token_type": "Bearer"}), "vci.bad_answer"),
    ("POST", "/nonce", _json(200, {"c_nonce": 5}), "vci.bad_answer"),
    ("POST", "/credential", _json(202, {"transaction_id": "t", "interval": 5}), "vci.unsupported"),
    ("POST", "/credential", _json(400, {"error": "invalid_proof"}), "vci.credential_refused"),
    ("POST", "/credential", _json(200, {"credentials": []}), "vci.bad_answer"),
    ("POST", "/credential", _json(200, {"credentials": [{"credential": {"a": 1}}]}),
     "vci.bad_answer"),
    ("POST", "/credential", _json(200, {"credentials": [{"credential": "not.an.sdjwt"}]}),
     "vci.bad_answer"),
    ("POST", "/credential", Response(200, {"content-type": "application/json"},
                                     b"x" * 600_000), "vci.answer_too_large"),
])
def test_bad_answers_stop_the_flow_before_receive(
    holder: SigningKey, method: str, path: str, answer: Response, code: str
) -> None:
    issuer = _override(FakeIssuer(), method, path, answer)
    received: list[str] = []
    with pytest.raises(KluisError) as caught:
        _redeem(issuer, holder, receive=received.append)
    assert caught.value.code == code
    assert received == []


@pytest.mark.parametrize(("changes", "code"), [
    ({"credential_issuer": "https://other.example"}, "vci.bad_metadata"),
    ({"credential_endpoint": "https://evil.example/credential"}, "vci.bad_metadata"),
    ({"credential_endpoint": "http://duo.kluis.example/credential"}, "vci.bad_metadata"),
    ({"credential_endpoint": None}, "vci.bad_metadata"),
    ({"authorization_servers": ["https://as.evil.example"]}, "vci.bad_metadata"),
    ({"authorization_servers": "https://duo.kluis.example"}, "vci.bad_metadata"),
    ({"credential_configurations_supported": {}}, "vci.bad_metadata"),
    ({"credential_configurations_supported": {"diploma": {"format": "mso_mdoc"}}},
     "vci.unsupported"),
    ({"credential_configurations_supported": {"diploma": {
        "format": "dc+sd-jwt", "vct": DIPLOMA,
        "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["RS256"]}}}}},
     "vci.unsupported"),
    ({"nonce_endpoint": None}, "vci.unsupported"),
])
def test_bad_metadata(holder: SigningKey, changes: dict[str, Any], code: str) -> None:
    issuer = FakeIssuer()
    for name, value in changes.items():
        if value is None:
            issuer.metadata.pop(name)
        else:
            issuer.metadata[name] = value
    assert _code(lambda: _redeem(issuer, holder)) == code
    # Found out from the metadata, before the transaction code is sent anywhere.
    assert ("POST", ISSUER + "/token") not in [(m, u) for m, u, _, _ in issuer.calls]


def test_an_authorization_server_on_the_issuers_origin_is_used(holder: SigningKey) -> None:
    issuer = FakeIssuer()
    issuer.metadata["authorization_servers"] = [ISSUER + "/as"]
    issuer.as_metadata["issuer"] = ISSUER + "/as"
    issuer.overrides[("GET", ISSUER + "/.well-known/oauth-authorization-server/as")] = (
        lambda h, b: _json(200, issuer.as_metadata))
    assert len(_redeem(issuer, holder)) == 1


def test_a_refused_nonce_is_retried_once(holder: SigningKey) -> None:
    issuer = FakeIssuer()
    refusals = [_json(400, {"error": "invalid_nonce"})]

    def credential(headers: Mapping[str, str], body: bytes) -> Response:
        return refusals.pop() if refusals else issuer.credential(headers, body)

    issuer.overrides[("POST", ISSUER + "/credential")] = credential
    assert len(_redeem(issuer, holder)) == 1
    assert len(issuer.nonces) == 2


def test_a_nonce_refused_twice_ends_the_flow(holder: SigningKey) -> None:
    issuer = _override(FakeIssuer(), "POST", "/credential", _json(400, {"error": "invalid_nonce"}))
    with pytest.raises(KluisError) as caught:
        _redeem(issuer, holder)
    assert (caught.value.code, caught.value.fields["error"]) == (
        "vci.credential_refused", "invalid_nonce")


def test_a_bearer_refusal_in_the_header_only(holder: SigningKey) -> None:
    issuer = _override(FakeIssuer(), "POST", "/credential", Response(
        401, {"www-authenticate": 'Bearer error="invalid_token"'}, b""))
    assert _code(lambda: _redeem(issuer, holder)) == "vci.credential_refused"


def test_another_credential_type_than_offered_is_not_received(holder: SigningKey) -> None:
    issuer = FakeIssuer(vct="https://kluis.example/vct/employee-card")
    assert _code(lambda: _redeem(issuer, holder)) == "vci.wrong_credential"


def test_receive_errors_come_through(holder: SigningKey) -> None:
    class Refused(KluisError):
        code = ""

    def receive(credential: str) -> None:
        raise Refused("not trusted")

    with pytest.raises(Refused):
        _redeem(FakeIssuer(), holder, receive=receive)
