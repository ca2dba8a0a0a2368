"""Parsing DCQL queries (OpenID4VP 1.0 §6): the published examples, every malformation, fuzz."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from edits import delete_at, set_at
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import InvalidInput, KluisError
from verifiers.dcql import (
    MAX_CLAIMS,
    MAX_CREDENTIALS,
    SD_JWT_VC,
    DcqlQuery,
    format_dcql,
    parse_dcql,
)

VCT = "https://kluis.example/vct/personal-data"


def _published(vectors: Path) -> list[Path]:
    base = vectors / "openid4vp" / "examples"
    files = sorted((base / "query_lang").glob("*.json")) + sorted(
        (base / "request").glob("dcql_*.json")
    )
    assert len(files) == 9  # seven query_lang examples and two request examples
    return files


def test_every_published_query_parses_and_round_trips(vectors: Path) -> None:
    for path in _published(vectors):
        raw = json.loads(path.read_text())
        query = parse_dcql(raw)
        assert [c.id for c in query.credentials] == [c["id"] for c in raw["credentials"]]
        assert parse_dcql(format_dcql(query)) == query, path.name


def test_published_details_are_read_right(vectors: Path) -> None:
    base = vectors / "openid4vp" / "examples" / "query_lang"
    alternatives = parse_dcql((base / "claims_alternatives.json").read_text())
    pid = alternatives.credential("pid")
    assert pid.claim_sets == (("a", "c", "d", "e"), ("a", "b", "e"))
    assert pid.require_cryptographic_holder_binding is True and pid.multiple is False
    values = parse_dcql((base / "value_matching_simple.json").read_text()).credentials[0]
    assert values.claims is not None and values.claims[3].values == ("90210", "90211")
    sets = parse_dcql((base / "credentials_alternatives.json").read_text()).credential_sets
    assert sets is not None and [s.required for s in sets] == [True, False]
    assert sets[0].options[2] == ("pid_reduced_cred_1", "pid_reduced_cred_2")
    mdoc = parse_dcql((base / "complex_mdoc.json").read_text()).credentials[0]
    assert mdoc.format == "mso_mdoc" and mdoc.vct_values == ()


def _good() -> dict:
    return {
        "credentials": [
            {
                "id": "personal",
                "format": SD_JWT_VC,
                "meta": {"vct_values": [VCT]},
                "claims": [
                    {"id": "name", "path": ["family_name"]},
                    {"id": "zip", "path": ["address", "postal_code"], "values": ["3511 AB"]},
                ],
                "claim_sets": [["name", "zip"], ["name"]],
            },
            {"id": "income", "format": SD_JWT_VC, "meta": {"vct_values": ["x"]}},
        ],
        "credential_sets": [
            {"options": [["personal"]]},
            {"options": [["income"]], "required": False},
        ],
    }


def test_defaults_and_unknown_properties() -> None:
    doc = _good()
    doc["future_extension"] = {"anything": 1}
    doc["credentials"][1]["new_thing"] = True
    doc["credentials"][0]["claims"][0]["extra"] = "ignored"
    query = parse_dcql(doc)
    assert query == parse_dcql(_good())
    income = query.credential("income")
    assert income.claims is None and income.require_cryptographic_holder_binding is True
    assert query.credential_sets is not None and query.credential_sets[0].required is True


def _mutated(change) -> dict:
    doc = _good()
    change(doc)
    return doc




C0 = ("credentials", 0)
MALFORMED = {
    "not_an_object": (lambda d: d.clear() or d.update({"x": 1}), "dcql.malformed"),
    "credentials_missing": (delete_at(("credentials",)), "dcql.malformed"),
    "credentials_empty": (set_at(("credentials",), []), "dcql.malformed"),
    "credentials_not_array": (set_at(("credentials",), {"id": "a"}), "dcql.malformed"),
    "credential_not_object": (set_at(C0, "personal"), "dcql.malformed"),
    "id_missing": (delete_at((*C0, "id")), "dcql.bad_id"),
    "id_empty": (set_at((*C0, "id"), ""), "dcql.bad_id"),
    "id_with_space": (set_at((*C0, "id"), "my id"), "dcql.bad_id"),
    "id_not_string": (set_at((*C0, "id"), 7), "dcql.bad_id"),
    "id_duplicate": (set_at(("credentials", 1, "id"), "personal"), "dcql.duplicate_id"),
    "format_missing": (delete_at((*C0, "format")), "dcql.malformed"),
    "format_not_string": (set_at((*C0, "format"), ["dc+sd-jwt"]), "dcql.malformed"),
    "meta_missing": (delete_at((*C0, "meta")), "dcql.bad_meta"),
    "vct_values_missing": (set_at((*C0, "meta"), {}), "dcql.bad_meta"),
    "vct_values_empty": (set_at((*C0, "meta", "vct_values"), []), "dcql.bad_meta"),
    "vct_value_not_string": (set_at((*C0, "meta", "vct_values"), [1]), "dcql.bad_meta"),
    "multiple_not_bool": (set_at((*C0, "multiple"), "yes"), "dcql.malformed"),
    "binding_not_bool": (
        set_at((*C0, "require_cryptographic_holder_binding"), 0), "dcql.malformed"
    ),
    "claims_empty": (set_at((*C0, "claims"), []), "dcql.malformed"),
    "claim_not_object": (set_at((*C0, "claims", 0), ["family_name"]), "dcql.malformed"),
    "path_missing": (delete_at((*C0, "claims", 0, "path")), "dcql.bad_path"),
    "path_empty": (set_at((*C0, "claims", 0, "path"), []), "dcql.bad_path"),
    "path_negative": (set_at((*C0, "claims", 0, "path"), ["a", -1]), "dcql.bad_path"),
    "path_bool": (set_at((*C0, "claims", 0, "path"), ["a", False]), "dcql.bad_path"),
    "path_float": (set_at((*C0, "claims", 0, "path"), ["a", 0.5]), "dcql.bad_path"),
    "path_too_long": (set_at((*C0, "claims", 0, "path"), ["a"] * 17), "dcql.too_large"),
    "claim_id_bad": (set_at((*C0, "claims", 0, "id"), "a.b"), "dcql.bad_id"),
    "claim_id_duplicate": (set_at((*C0, "claims", 1, "id"), "name"), "dcql.duplicate_id"),
    "claim_id_missing_with_claim_sets": (delete_at((*C0, "claims", 1, "id")), "dcql.bad_id"),
    "values_empty": (set_at((*C0, "claims", 1, "values"), []), "dcql.bad_values"),
    "values_float": (set_at((*C0, "claims", 1, "values"), [1.5]), "dcql.bad_values"),
    "values_null": (set_at((*C0, "claims", 1, "values"), [None]), "dcql.bad_values"),
    "values_object": (set_at((*C0, "claims", 1, "values"), [{}]), "dcql.bad_values"),
    "claim_sets_without_claims": (delete_at((*C0, "claims")), "dcql.malformed"),
    "claim_sets_empty": (set_at((*C0, "claim_sets"), []), "dcql.malformed"),
    "claim_set_empty": (set_at((*C0, "claim_sets"), [[]]), "dcql.malformed"),
    "claim_set_unknown_id": (set_at((*C0, "claim_sets"), [["nope"]]), "dcql.unknown_reference"),
    "claim_set_not_string": (set_at((*C0, "claim_sets"), [[1]]), "dcql.malformed"),
    "authorities_empty": (set_at((*C0, "trusted_authorities"), []), "dcql.malformed"),
    "authority_without_values": (
        set_at((*C0, "trusted_authorities"), [{"type": "aki"}]),
        "dcql.malformed",
    ),
    "credential_sets_empty": (set_at(("credential_sets",), []), "dcql.malformed"),
    "options_missing": (set_at(("credential_sets", 0), {"required": True}), "dcql.malformed"),
    "option_empty": (set_at(("credential_sets", 0, "options"), [[]]), "dcql.malformed"),
    "option_unknown_id": (
        set_at(("credential_sets", 0, "options"), [["ghost"]]),
        "dcql.unknown_reference",
    ),
    "required_not_bool": (set_at(("credential_sets", 1, "required"), "false"), "dcql.malformed"),
    "too_many_credentials": (
        set_at(
            ("credentials",),
            [{"id": f"c{i}", "format": "x", "meta": {}} for i in range(MAX_CREDENTIALS + 1)],
        ),
        "dcql.too_large",
    ),
    "too_many_claims": (
        set_at(
            ("credentials",),
            [
                {
                    "id": f"c{i}",
                    "format": "x",
                    "meta": {},
                    "claims": [{"path": [str(j)]} for j in range(200)],
                }
                for i in range(2)
            ],
        ),
        "dcql.too_large",
    ),
    "string_too_long": (set_at((*C0, "meta", "vct_values"), ["x" * 5000]), "dcql.too_large"),
}


@pytest.mark.parametrize("tamper", sorted(MALFORMED))
def test_malformed_query_is_refused_with_its_code(tamper: str) -> None:
    change, code = MALFORMED[tamper]
    with pytest.raises(InvalidInput) as caught:
        parse_dcql(_mutated(change))
    assert caught.value.code == code
    assert caught.value.detail  # names the rule or the limit


def test_the_claim_limit_counts_the_whole_query() -> None:
    assert MAX_CLAIMS < 2 * 200


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", '"query"', "[" * 100_000, b"\xff\xfe"])
def test_bad_json_text_is_malformed(text) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_dcql(text)
    assert caught.value.code == "dcql.malformed"


def test_oversized_text_is_too_large() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_dcql(" " * (300 * 1024) + json.dumps(_good()))
    assert caught.value.code == "dcql.too_large"


def test_unknown_credential_lookup_is_an_error() -> None:
    with pytest.raises(KluisError) as caught:
        parse_dcql(_good()).credential("missing")
    assert caught.value.code == "dcql.unknown_reference"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
KEYS = st.sampled_from(
    [
        "credentials",
        "id",
        "format",
        "meta",
        "vct_values",
        "claims",
        "path",
        "values",
        "claim_sets",
        "credential_sets",
        "options",
        "required",
        "multiple",
        "trusted_authorities",
        "type",
    ]
)
SHAPED = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from(["dc+sd-jwt", "a", "", "x y"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300)
@given(st.one_of(JSON, SHAPED))
def test_random_json_raises_nothing_but_kluis_errors(obj) -> None:
    try:
        query = parse_dcql(obj)
    except KluisError as error:
        assert error.code.startswith("dcql.")
    else:
        assert isinstance(query, DcqlQuery)


@settings(max_examples=200)
@given(st.data())
def test_mutating_one_value_of_a_good_query_raises_only_kluis_errors(data) -> None:
    doc = _good()
    node, keys = doc, []
    while isinstance(node, dict | list) and node:
        key = data.draw(
            st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
        )
        keys.append(key)
        if data.draw(st.booleans()):
            break
        node = node[key]
    mutated = copy.deepcopy(doc)
    set_at(keys, data.draw(JSON))(mutated)
    try:
        parse_dcql(mutated)
    except KluisError as error:
        assert error.code.startswith("dcql.")
