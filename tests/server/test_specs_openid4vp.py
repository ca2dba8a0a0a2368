"""The worked example of specs/openid4vp.md §9 is checked with the code: the link and the
Request Object are a request the wallet reads, its client metadata is one the wallet can
encrypt to, the JWE header fits the verifier's profile and the request's key, the response
has the vp_token shape of the query, and the receipt is a valid receipt of that request."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from verifiers.encrypted_response import seal_response
from verifiers.receipt import Receipt
from wallet.openid4vp import parse_request_uri
from wallet.request import ResponseMode, restore_request
from wallet.request_object import TYP

SPEC = Path(__file__).resolve().parents[2] / "specs" / "openid4vp.md"


def _example() -> tuple[str, list[dict[str, Any]]]:
    text = SPEC.read_text()
    section = text[text.index("## 9. Worked example"):text.index("## 10. Endpoints")]
    link = re.search(r"```\n(openid4vp://\S+)\n```", section)
    assert link is not None
    blocks = re.findall(r"```json\n(.*?)\n```", section, re.S)
    return link.group(1), [json.loads(block) for block in blocks]


def test_the_worked_example_agrees_with_the_code() -> None:
    link, (header, payload, jwe_header, response, receipt) = _example()
    reference = parse_request_uri(link)
    assert reference.client_id == payload["client_id"]
    assert (header["alg"], header["typ"]) == ("ES256", TYP) and len(header["x5c"]) == 1

    request = restore_request(payload, signed=True, source="")
    assert request.response_mode is ResponseMode.DIRECT_POST_JWT
    assert request.expires_at.timestamp() == payload["exp"]
    assert request.purpose.purpose_id == "wmo-household-help"

    sealed = seal_response({"state": request.state}, request.client_metadata)
    assert sealed.count(".") == 4  # the example's key is a real P-256 key to encrypt to
    [key] = payload["client_metadata"]["jwks"]["keys"]
    assert (jwe_header["alg"], jwe_header["enc"], jwe_header["kid"]) == (
        "ECDH-ES", "A256GCM", key["kid"])

    assert response["state"] == request.state
    assert set(response["vp_token"]) == {q.id for q in request.dcql.credentials}
    assert all(isinstance(v, list) and len(v) == 1 for v in response["vp_token"].values())

    parsed = Receipt.model_validate_json(json.dumps(receipt))
    assert parsed.request_id == request.state and parsed.client_id == request.client_id
    pid = request.dcql.credential("pid")
    assert parsed.vct in pid.vct_values
    assert [tuple(c.path) for c in pid.claims or ()] == list(parsed.claims)
