"""The unsigned trust-list document: parse_trust_list checks it as signing would, and
format_trust_list gives back the document that signs to the same payload."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jwcrypto.jwk import JWK

from vault import InvalidInput
from verifiers import format_trust_list, parse_trust_list, sign_trust_list

ANCHOR = JWK.generate(kty="OKP", crv="Ed25519", kid="anchor")
ISSUER_KEY = JWK.generate(kty="EC", crv="P-256", kid="brp-1")
VERIFIER_KEY = JWK.generate(kty="OKP", crv="Ed25519", kid="utrecht-1")


def _doc() -> dict[str, Any]:
    return {
        "list_id": "https://trust.kluis.example/nl",
        "issuer": "kluis test anchor",
        "issued_at": "2027-03-01T00:00:00Z",
        "next_update": "2027-04-01T00:00:00Z",
        "sequence": 3,
        "agencies": [
            {
                "id": "https://brp.kluis.example",
                "names": {"nl": "Basisregistratie Personen", "en": "Personal Records Database"},
                "roles": ["issuer"],
                "jwks": {"keys": [ISSUER_KEY.export_public(as_dict=True)]},
            },
            {
                "id": "https://utrecht.kluis.example",
                "names": {"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"},
                "roles": ["verifier"],
                "jwks": {"keys": [VERIFIER_KEY.export_public(as_dict=True)]},
                "purposes": [
                    {
                        "id": "wmo",
                        "dpv": "dpv:ServiceProvision",
                        "description": {"nl": "Hulp bij het huishouden", "en": "Household help"},
                        "legal_basis": {"nl": "Wmo 2015", "en": "Social Support Act 2015"},
                        "processing_activity": "utrecht-va-0042",
                        "credentials": [
                            {"vct": "https://kluis.example/vct/pd", "claims": [["address"]]}
                        ],
                    }
                ],
            },
        ],
    }


def test_object_and_text_forms_parse_to_the_same_list() -> None:
    doc = _doc()
    pretty = json.dumps(doc, indent=2)
    lists = [parse_trust_list(doc), parse_trust_list(pretty), parse_trust_list(pretty.encode())]
    assert lists[0] == lists[1] == lists[2]
    assert [a.id for a in lists[0].agencies] == [a["id"] for a in doc["agencies"]]


def test_format_gives_back_the_document() -> None:
    doc = _doc()
    assert format_trust_list(parse_trust_list(doc)) == doc
    signed = sign_trust_list(doc, ANCHOR)
    assert sign_trust_list(parse_trust_list(doc), ANCHOR).split(".")[1] == signed.split(".")[1]


def _with(**changes: Any) -> dict[str, Any]:
    return {**_doc(), **changes}


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        pytest.param(
            '{"sequence": 1, "sequence": 2}', "trustlist.malformed", id="duplicate_member"
        ),
        pytest.param("{not json", "trustlist.malformed", id="not_json"),
        pytest.param(b"\xff", "trustlist.malformed", id="not_utf8"),
        pytest.param("[]", "trustlist.schema_violation", id="array"),
        pytest.param(_with(sequence=-1), "trustlist.schema_violation", id="negative_sequence"),
        pytest.param(
            _with(next_update="2027-02-01T00:00:00Z"),
            "trustlist.schema_violation",
            id="next_update_before_issued_at",
        ),
        pytest.param(_with(extra=1), "trustlist.schema_violation", id="unknown_member"),
        pytest.param(_with(sequence=2**64), "trustlist.schema_violation", id="huge_number"),
        pytest.param(
            _with(agencies=[_doc()["agencies"][0]] * 2),
            "trustlist.duplicate_agency",
            id="duplicate_agency",
        ),
        pytest.param(
            _with(agencies=[{**_doc()["agencies"][0], "roles": ["auditor"]}]),
            "trustlist.unknown_role",
            id="unknown_role",
        ),
        pytest.param(
            _with(
                agencies=[
                    {
                        **_doc()["agencies"][0],
                        "jwks": {"keys": [ANCHOR.export_private(as_dict=True)]},
                    }
                ]
            ),
            "trustlist.schema_violation",
            id="private_key_on_the_list",
        ),
    ],
)
def test_bad_documents_are_refused_with_their_code(doc: Any, code: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_trust_list(doc)
    assert raised.value.code == code
