"""Credential types: metadata and schema agree, labels in both languages, validation."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault import InvalidInput, KluisError, NotFound
from verifiers.credential_type import (
    DIPLOMA,
    EMPLOYEE_CARD,
    FILES,
    INCOME_STATEMENT,
    PERSONAL_DATA,
    REGISTERED_LABELS,
    Disclosability,
    credential_type,
    credential_types,
    label,
    validate_claims,
)

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs" / "credentials"
PACKAGED = resources.files("verifiers") / "types"
FORMAT = jsonschema.FormatChecker(["date"])  # date needs no extra package; date-time does

REGISTERED = {
    "iss": "https://brp.kluis.example",
    "iat": 1_800_000_000,
    "exp": 1_900_000_000,
    "cnf": {"jwk": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}},
    "status": {"status_list": {"idx": 7, "uri": "https://brp.kluis.example/status/1"}},
}
SAMPLES = {
    PERSONAL_DATA: {
        "given_name": "Anna Maria",
        "family_name": "de Vries",
        "birthdate": "1980-04-01",
        "bsn": "999990019",
        "address": {
            "street_address": "Oudegracht",
            "house_number": "12A",
            "postal_code": "3511 AB",
            "locality": "Utrecht",
            "country": "NL",
        },
    },
    INCOME_STATEMENT: {
        "tax_year": 2026,
        "gross_income": 38250,
        "income_bracket": {"code": "2", "label": "€ 30.001 – € 45.000"},
    },
    DIPLOMA: {
        "institution": "Universiteit Utrecht",
        "degree": "Master of Science in Data Science",
        "date_awarded": "2024-08-30",
    },
    EMPLOYEE_CARD: {
        "given_name": "Sanne",
        "family_name": "Bakker",
        "role": "Wmo-consulent",
        "organisation": "Gemeente Utrecht",
    },
}


def _schema(vct: str) -> dict:
    return json.loads((SPECS / f"{FILES[vct]}.schema.json").read_text())


def _validator(vct: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema(vct), format_checker=FORMAT)


def _both(vct: str, claims: dict) -> tuple[bool, bool]:
    """(schema accepts, code accepts)."""
    schema_ok = not list(_validator(vct).iter_errors(claims))
    try:
        validate_claims(vct, claims)
        code_ok = True
    except InvalidInput as error:
        assert error.code == "credential_type.invalid_claims" and error.detail
        code_ok = False
    return schema_ok, code_ok


def test_the_package_ships_exactly_the_documented_files() -> None:
    packaged = {p.name: p.read_bytes() for p in PACKAGED.iterdir() if p.name.endswith(".json")}
    documented = {p.name: p.read_bytes() for p in SPECS.glob("*.json")}
    assert packaged == documented
    assert set(packaged) == {
        f"{stem}.{kind}.json" for stem in FILES.values() for kind in ("metadata", "schema")
    }


@pytest.mark.parametrize("vct", credential_types())
def test_schema_is_valid_2020_12(vct: str) -> None:
    schema = _schema(vct)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["vct"] == {"const": vct}


@pytest.mark.parametrize("vct", credential_types())
def test_sample_passes_schema_and_code(vct: str) -> None:
    assert _both(vct, SAMPLES[vct]) == (True, True)
    assert _both(vct, {**SAMPLES[vct], **REGISTERED, "vct": vct}) == (True, True)


def _broken(vct: str) -> dict[str, dict]:
    good = SAMPLES[vct]
    cases = {}
    for name in good:
        cases[f"missing_{name}"] = {k: v for k, v in good.items() if k != name}
    cases["unknown_claim"] = {**good, "nickname": "x"}
    cases["sd_digests_left_in"] = {**good, "_sd": ["abc"]}
    cases["other_vct"] = {**good, "vct": DIPLOMA if vct != DIPLOMA else PERSONAL_DATA}
    cases["iss_not_https"] = {**good, "iss": "http://brp.kluis.example"}
    cases["iat_as_string"] = {**good, "iat": "1800000000"}
    cases["iat_negative"] = {**good, "iat": -1}
    cases["exp_null"] = {**good, "exp": None}
    cases["cnf_not_object"] = {**good, "cnf": "key"}
    first = next(iter(good))
    cases[f"{first}_as_number"] = {**good, first: 12}
    return cases


SPECIFIC = {
    PERSONAL_DATA: {
        "bsn_eight_digits": ("bsn", "12345678"),
        "bsn_as_number": ("bsn", 999990019),
        "birthdate_not_a_day": ("birthdate", "1980-02-30"),
        "birthdate_other_form": ("birthdate", "01-04-1980"),
        "given_name_empty": ("given_name", ""),
        "postal_code_foreign": ("address.postal_code", "SW1A 1AA"),
        "house_number_zero": ("address.house_number", "0"),
        "country_lowercase": ("address.country", "nl"),
        "address_extra_part": ("address.floor", "2"),
        "address_as_text": ("address", "Oudegracht 12A, Utrecht"),
    },
    INCOME_STATEMENT: {
        "tax_year_as_string": ("tax_year", "2026"),
        "tax_year_too_early": ("tax_year", 1999),
        "gross_income_negative": ("gross_income", -1),
        "gross_income_cents": ("gross_income", 38250.5),
        "gross_income_bool": ("gross_income", True),
        "bracket_code_lowercase": ("income_bracket.code", "a"),
        "bracket_without_label": ("income_bracket", {"code": "2"}),
    },
    DIPLOMA: {
        "date_with_time": ("date_awarded", "2024-08-30T10:00:00Z"),
        "degree_too_long": ("degree", "x" * 257),
    },
    EMPLOYEE_CARD: {
        "organisation_empty": ("organisation", ""),
        "role_as_list": ("role", ["consulent"]),
    },
}


def _specific(vct: str, where: str, value) -> dict:
    claims = copy.deepcopy(SAMPLES[vct])
    *parents, last = where.split(".")
    node = claims
    for key in parents:
        node = node[key]
    node[last] = value
    return claims


BROKEN = [
    (vct, name, claims) for vct in credential_types() for name, claims in _broken(vct).items()
]
BROKEN += [
    (vct, name, _specific(vct, where, value))
    for vct, cases in SPECIFIC.items()
    for name, (where, value) in cases.items()
]


@pytest.mark.parametrize(
    ("vct", "tamper", "claims"), BROKEN, ids=[f"{FILES[v]}-{n}" for v, n, _ in BROKEN]
)
def test_broken_claims_are_refused_by_schema_and_code(vct: str, tamper: str, claims: dict) -> None:
    assert _both(vct, claims) == (False, False)


def _schema_paths(schema: dict, prefix: tuple = ()) -> set[tuple]:
    paths = set()
    for name, sub in schema.get("properties", {}).items():
        paths.add((*prefix, name))
        if sub.get("type") == "object" and "properties" in sub:
            paths |= _schema_paths(sub, (*prefix, name))
    return paths


def _schema_required(schema: dict, prefix: tuple = ()) -> set[tuple]:
    required = {(*prefix, name) for name in schema.get("required", [])}
    for name, sub in schema.get("properties", {}).items():
        if sub.get("type") == "object" and "properties" in sub:
            required |= _schema_required(sub, (*prefix, name))
    return required


@pytest.mark.parametrize("vct", credential_types())
def test_metadata_and_schema_list_the_same_claims(vct: str) -> None:
    kind = credential_type(vct)
    described = {info.path for info in kind.claims}
    in_schema = _schema_paths(_schema(vct)) - {
        ("vct",),
        *((name,) for name in REGISTERED_LABELS),
        ("vct#integrity",),
    }
    assert described == in_schema
    assert {info.path for info in kind.claims if info.mandatory} == _schema_required(_schema(vct))


@pytest.mark.parametrize("vct", credential_types())
def test_every_claim_and_the_type_speak_dutch_and_english(vct: str) -> None:
    kind = credential_type(vct)
    assert kind.vct == vct and kind.metadata["vct"] == vct
    assert set(kind.names) == set(kind.descriptions) == {"nl", "en"}
    for info in kind.claims:
        assert set(info.labels) == set(info.descriptions) == {"nl", "en"}, info.path
        assert all(text.strip() for text in (*info.labels.values(), *info.descriptions.values()))
        assert label(vct, info.path, "nl") == info.labels["nl"]
        assert label(vct, info.path, "en") == info.labels["en"]


def test_labels_read_well() -> None:
    assert label(PERSONAL_DATA, ("address", "postal_code"), "nl") == "Postcode"
    assert label(PERSONAL_DATA, ("bsn",), "en") == "Citizen service number (BSN)"
    assert label(INCOME_STATEMENT, ("income_bracket",), "nl") == "Inkomensklasse"
    assert label(PERSONAL_DATA, ("iss",), "en") == "Issuer"
    assert label(EMPLOYEE_CARD, ("cnf",), "nl") == "Sleutel van de houder"
    assert label(DIPLOMA, ("degree",), "fr") == "Opleiding"  # Dutch is the default


def test_unknown_claims_and_types_are_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        label(PERSONAL_DATA, ("shoe_size",), "nl")
    assert caught.value.code == "credential_type.unknown_claim"
    with pytest.raises(NotFound) as caught:
        label("https://example.com/other", ("given_name",), "nl")
    assert caught.value.code == "credential_type.unknown_type"
    with pytest.raises(NotFound):
        validate_claims("https://example.com/other", {})


def test_selective_disclosure_rules() -> None:
    assert credential_type(EMPLOYEE_CARD).claim(("organisation",)).sd is Disclosability.NEVER
    assert credential_type(PERSONAL_DATA).claim(("bsn",)).sd is Disclosability.ALWAYS
    assert (
        credential_type(INCOME_STATEMENT).claim(("income_bracket", "code")).sd
        is Disclosability.NEVER
    )


def test_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidInput):
        validate_claims(PERSONAL_DATA, ["given_name"])  # type: ignore[arg-type]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=20,
)


@given(st.sampled_from(credential_types()), st.dictionaries(st.text(max_size=12), JSON, max_size=6))
def test_random_claims_raise_only_kluis_errors(vct: str, claims: dict) -> None:
    try:
        validate_claims(vct, claims)
    except KluisError as error:
        assert error.code == "credential_type.invalid_claims"
