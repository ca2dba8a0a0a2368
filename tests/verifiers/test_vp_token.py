"""The VP Token check of OpenID4VP 1.0 §8.6 (STANDARDS.md §1.4 G): shape, every presentation
verified with key binding to this request, each credential meeting its query, the answers
meeting the request; the specification's own example presentation accepted; and each way a
response can fall short refused with its code."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from vault import KluisError
from verifiers.dcql import DcqlQuery, parse_dcql
from verifiers.holder import parse_issued, present_sd_jwt
from verifiers.issuer import issue_sd_jwt
from verifiers.jws import Alg, generate_signing_key, parse_jwk
from verifiers.keybinding import KeyBinding
from verifiers.statuslist import Revoked
from verifiers.verifier import IssuerKeyMap
from verifiers.vp_token import verify_vp_token

NOW = 1_804_248_000
ISS = "https://brp.kluis.example"
TAX = "https://belastingdienst.kluis.example"
PID = "https://kluis.example/vct/personal-data"
INCOME = "https://kluis.example/vct/income-statement"
CLIENT = "x509_hash:Zwhlos6wYBiy1VFV-9xugz6pvoyDB1D00wqTdqvJ7LU"
NONCE = "tB15R2Ew2aiw9dLFLow0seuXFT9gljJ0"
BINDING = KeyBinding(NONCE, CLIENT)
ISSUER = generate_signing_key(Alg.ES256, kid="brp")
TAX_KEY = generate_signing_key(Alg.EDDSA, kid="tax")
HOLDER = generate_signing_key(Alg.ES256)
KEYS = IssuerKeyMap.of({ISS: ISSUER.public, TAX: TAX_KEY.public})
PERSON = {"given_name": "Anna", "family_name": "de Vries",
          "address": {"locality": "Utrecht", "postal_code": "3511 NK"}}
STATUS = {"status_list": {"idx": 7, "uri": "https://brp.kluis.example/status/1"}}

PERSONAL = issue_sd_jwt(PERSON, issuer_key=ISSUER, iss=ISS, vct=PID, now=NOW, exp=NOW + 86400,
                        holder_key=HOLDER.public, status=STATUS)
INCOME_CREDENTIAL = issue_sd_jwt({"income_bracket": "2", "tax_year": 2026}, issuer_key=TAX_KEY,
                                 iss=TAX, vct=INCOME, now=NOW, exp=NOW + 86400,
                                 holder_key=HOLDER.public)


def _query(**extra: Any) -> DcqlQuery:
    return parse_dcql({"credentials": [
        {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [PID]},
         "claims": [{"path": ["given_name"]}, {"path": ["address"]}]},
        {"id": "income", "format": "dc+sd-jwt", "meta": {"vct_values": [INCOME]},
         "claims": [{"path": ["income_bracket"]}]},
    ], **extra})


QUERY = _query()


def _present(token: str, *claims: list[Any], nonce: str = NONCE, aud: str = CLIENT,
             bound: bool = True) -> str:
    held = parse_issued(token)
    if not bound:
        return present_sd_jwt(held, disclose=claims)
    return present_sd_jwt(held, disclose=claims, holder_key=HOLDER, nonce=nonce, aud=aud, now=NOW)


PID_SHOWN = _present(PERSONAL, ["given_name"], ["address"])
INCOME_SHOWN = _present(INCOME_CREDENTIAL, ["income_bracket"])
GOOD = {"pid": [PID_SHOWN], "income": [INCOME_SHOWN]}


def _verify(vp_token: object, query: DcqlQuery = QUERY, **options: Any) -> Any:
    return verify_vp_token(vp_token, query, issuer_keys=KEYS, key_binding=BINDING, now=NOW,
                           **options)


def _code(vp_token: object, query: DcqlQuery = QUERY, **options: Any) -> str:
    with pytest.raises(KluisError) as caught:
        _verify(vp_token, query, **options)
    return caught.value.code


def test_a_full_answer_is_verified_query_by_query() -> None:
    pid, income = _verify(GOOD)
    assert (pid.query_id, pid.vct, pid.requested) == ("pid", PID, (("given_name",), ("address",)))
    assert pid.credential.claims["address"] == PERSON["address"]
    assert "family_name" not in pid.credential.claims  # not disclosed, not there
    assert (income.query_id, income.requested) == ("income", (("income_bracket",),))
    assert pid.token == PID_SHOWN


def test_the_status_of_each_credential_is_asked_of_its_issuers_checker() -> None:
    asked: list[tuple[str, Mapping[str, Any]]] = []

    class Checker:
        def __init__(self, iss: str) -> None:
            self.iss = iss

        def check_status(self, status: Mapping[str, Any], *, now: int) -> None:
            asked.append((self.iss, status))
            raise Revoked("test: index 7 is INVALID")

    with pytest.raises(KluisError) as caught:
        _verify(GOOD, status_checkers=Checker)
    assert caught.value.code == "status.revoked"
    assert asked == [(ISS, STATUS)]


@pytest.mark.parametrize("vp_token", [
    None, [], {}, "text", {"pid": PID_SHOWN}, {"pid": []}, {"pid": [7]}, {"pid": [""]},
    {"pid": [PID_SHOWN, PID_SHOWN], "income": [INCOME_SHOWN]},
], ids=["none", "array", "empty", "string", "not-array", "empty-array", "number", "blank",
        "two-without-multiple"])
def test_a_malformed_vp_token_is_refused(vp_token: object) -> None:
    assert _code(vp_token) == "vp.bad_vp_token"


def test_an_answer_to_a_query_that_was_not_asked_is_refused() -> None:
    assert _code({**GOOD, "diploma": [PID_SHOWN]}) == "vp.unexpected_credential"


def test_a_missing_answer_is_refused() -> None:
    assert _code({"pid": [PID_SHOWN]}) == "vp.query_not_satisfied"


def test_a_credential_without_a_requested_claim_is_refused() -> None:
    short = _present(PERSONAL, ["given_name"])
    assert _code({"pid": [short], "income": [INCOME_SHOWN]}) == "vp.query_not_satisfied"


def test_a_credential_of_another_type_is_refused() -> None:
    assert _code({"pid": [INCOME_SHOWN], "income": [INCOME_SHOWN]}) == "sdjwt.wrong_vct"


@pytest.mark.parametrize(("changes", "code"), [
    ({"aud": "x509_hash:another-verifier"}, "sdjwt.kb_wrong_aud"),
    ({"nonce": "another-request-nonce-0000"}, "sdjwt.kb_wrong_nonce"),
    ({"bound": False}, "sdjwt.kb_missing"),
])
def test_key_binding_is_to_this_request_and_this_verifier(changes: dict[str, Any],
                                                          code: str) -> None:
    shown = _present(PERSONAL, ["given_name"], ["address"], **changes)
    assert _code({"pid": [shown], "income": [INCOME_SHOWN]}) == code


def test_a_query_without_holder_binding_refuses_a_kb_jwt() -> None:
    query = parse_dcql({"credentials": [
        {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [PID]},
         "claims": [{"path": ["given_name"]}], "require_cryptographic_holder_binding": False}]})
    assert _code({"pid": [PID_SHOWN]}, query) == "sdjwt.kb_unexpected"
    [unbound] = _verify({"pid": [_present(PERSONAL, ["given_name"], bound=False)]}, query)
    assert unbound.credential.key_bound is False


def test_credential_sets_need_one_option_of_each_required_set() -> None:
    sets = {"credential_sets": [{"options": [["pid"]]},
                                {"options": [["income"]], "required": False}]}
    [only] = _verify({"pid": [PID_SHOWN]}, _query(**sets))
    assert only.query_id == "pid"
    assert _code({"income": [INCOME_SHOWN]}, _query(**sets)) == "vp.query_not_satisfied"


def test_multiple_allows_several_presentations_of_one_query() -> None:
    query = parse_dcql({"credentials": [
        {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [PID]}, "multiple": True,
         "claims": [{"path": ["given_name"]}]}]})
    shown = [_present(PERSONAL, ["given_name"]), _present(PERSONAL, ["given_name"])]
    assert len(_verify({"pid": shown}, query)) == 2


def test_the_openid4vp_example_presentation_is_accepted(vectors: Path) -> None:
    example = json.loads((vectors / "openid4vp/sd_jwt_vcld_01_vector.json").read_text())
    payload = example["sd_jwt_payload"]
    query = parse_dcql({"credentials": [
        {"id": "example", "format": "dc+sd-jwt", "meta": {"vct_values": [payload["vct"]]},
         "claims": [{"path": ["ld", "credentialSubject", "givenName"]}]}]})
    [presentation] = verify_vp_token(
        {"example": [example["presentation"]]}, query,
        issuer_keys=IssuerKeyMap.of({payload["iss"]: parse_jwk(example["issuer_public_jwk"])}),
        key_binding=KeyBinding(example["expected_nonce"], example["expected_aud"]),
        now=example["kb_jwt_iat"],
    )
    assert presentation.requested == (("ld", "credentialSubject", "givenName"),)
    assert presentation.credential.claims == example["processed_payload"]
    with pytest.raises(KluisError) as caught:  # bound to the example verifier only
        verify_vp_token({"example": [example["presentation"]]}, query,
                        issuer_keys=IssuerKeyMap.of(
                            {payload["iss"]: parse_jwk(example["issuer_public_jwk"])}),
                        key_binding=KeyBinding(example["expected_nonce"], CLIENT),
                        now=example["kb_jwt_iat"])
    assert caught.value.code == "sdjwt.kb_wrong_aud"
