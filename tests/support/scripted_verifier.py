"""A scripted verifier for the wallet's tests: Request Objects signed like kluis's verifier
(x5c certificate, x509_hash client id, an ephemeral response key) and a response endpoint that
decrypts the answer and returns receipts; any answer can be replaced to play a hostile one."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from consent_world import NOW, purpose_data, request_params
from jwcrypto.jwk import JWK

from server.verifier_agency import VerifierAgency
from verifiers.credential_type import INCOME_STATEMENT, PERSONAL_DATA
from verifiers.encrypted_response import new_response_key, open_response, response_metadata
from verifiers.jws import SigningKey, format_private_jwk, sign_jws
from verifiers.receipt import ReceiptPurpose, Retention, issue_receipt
from wallet.transport import Response

VERIFIER = "https://utrecht.kluis.example"
REQUEST_URI = f"{VERIFIER}/requests/abc"
RESPONSE_URI = f"{VERIFIER}/response"
JWT = "application/oauth-authz-req+jwt"
KEY = new_response_key()


def request_object(agency: VerifierAgency, *, header: Mapping[str, Any] | None = None,
            key: SigningKey | None = None, **changes: Any) -> str:
    params = request_params(**{
        "client_id": agency.client_id, "response_mode": "direct_post.jwt",
        "response_uri": RESPONSE_URI,
        "verifier_info": [{"format": "kluis_purpose", "data": purpose_data(expires_at=None)}],
        "exp": int((NOW + timedelta(hours=1)).timestamp()), **changes})
    params["client_metadata"] = {**params["client_metadata"], **response_metadata(KEY)}
    head = {"alg": "ES256", "typ": "oauth-authz-req+jwt", "x5c": list(agency.certificate.x5c)}
    return sign_jws({**head, **(header or {})}, params, key or agency.signing_key)


@dataclass
class FakeVerifier:
    """Answers GET request_uri with a Request Object and POST response_uri with receipts."""

    agency: VerifierAgency
    request_object: str = ""
    object_answer: Response | None = None
    response_answer: Callable[[Mapping[str, str]], Response] | None = None
    posted: list[dict[str, str]] = field(default_factory=list)
    on_post: Callable[[], None] | None = None

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes = b"",
                timeout: float | None = None) -> Response:
        if method == "GET" and url == REQUEST_URI:
            return self.object_answer or Response(200, {"content-type": JWT},
                                                  self.request_object.encode())
        if method == "POST" and url == RESPONSE_URI:
            assert headers["Content-Type"] == "application/x-www-form-urlencoded"
            if self.on_post is not None:
                self.on_post()
            form = dict(parse_qsl(body.decode("ascii"), strict_parsing=True))
            self.posted.append(form)
            if self.response_answer is not None:
                return self.response_answer(form)
            return self.receipts(form)
        return Response(404, {}, b"")

    def receipts(self, form: Mapping[str, str]) -> Response:
        if "response" not in form:
            return Response(200, {"content-type": "application/json"}, b"{}")
        payload = open_response(form["response"], KEY)
        key = JWK(**format_private_jwk(self.agency.signing_key))
        receipts = [issue_receipt(token, verifier=VERIFIER, request_id=payload["state"],
                                  vct=PERSONAL_DATA if query == "pid" else INCOME_STATEMENT,
                                  claims=[], purpose=ReceiptPurpose(
                                      id="wmo-household-help", dpv="dpv:ServiceProvision"),
                                  legal_basis=self.agency.purposes[0].registration.legal_basis,
                                  retention=Retention(duration="P2Y"),
                                  processing_activity="utrecht-va-0042", received_at=NOW,
                                  key=key)
                    for query, tokens in payload["vp_token"].items() for token in tokens]
        return Response(200, {"content-type": "application/json"},
                        json.dumps({"receipts": receipts}).encode())
