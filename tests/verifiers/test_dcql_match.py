"""Evaluating DCQL against held credentials (OpenID4VP 1.0 §6.4): what matches, what leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import InvalidInput
from verifiers.claim_path import is_prefix
from verifiers.dcql import SD_JWT_VC, parse_dcql
from verifiers.dcql_match import HeldCredential, match_credential, match_dcql

PID_VCT = "https://credentials.example.com/identity_credential"
PERSONAL = "https://kluis.example/vct/personal-data"
INCOME = "https://kluis.example/vct/income-statement"


def _held(
    claims: dict, sd: set, *, vct: str = PERSONAL, cid: str = "c1", binding: bool = True
) -> HeldCredential:
    base = {"iss": "https://brp.example", "vct": vct, "iat": 1, "cnf": {"jwk": {"kty": "EC"}}}
    return HeldCredential(
        cid, SD_JWT_VC, vct, {**base, **claims}, frozenset(sd), holder_binding=binding
    )


PERSON = _held(
    {
        "given_name": "Anna",
        "family_name": "de Vries",
        "birthdate": "1980-04-01",
        "address": {"street_address": "Oudegracht", "postal_code": "3511 AB", "country": "NL"},
        "nationalities": ["NL", "DE"],
    },
    {
        ("given_name",),
        ("family_name",),
        ("birthdate",),
        ("address",),
        ("address", "street_address"),
        ("address", "postal_code"),
        ("nationalities", 0),
        ("nationalities", 1),
    },
)


def _query(claims=None, claim_sets=None, vct=PERSONAL, **extra) -> dict:
    cq: dict = {"id": "q", "format": SD_JWT_VC, "meta": {"vct_values": [vct]}, **extra}
    if claims is not None:
        cq["claims"] = claims
    if claim_sets is not None:
        cq["claim_sets"] = claim_sets
    return {"credentials": [cq]}


def _only(query: dict, held=PERSON):
    match = match_dcql(parse_dcql(query), [held])
    candidates = match.result("q").candidates
    return candidates[0] if candidates else None


def test_requested_claims_and_what_travels_with_them() -> None:
    m = _only(_query([{"path": ["family_name"]}, {"path": ["address", "postal_code"]}]))
    assert m is not None
    assert m.requested == (("family_name",), ("address", "postal_code"))
    # postal_code needs its parent's disclosure; street_address stays hidden.
    assert m.disclosures == (("address",), ("address", "postal_code"), ("family_name",))
    # country is a plain part of the disclosed address: the holder cannot withhold it.
    assert m.always_disclosed == (
        ("iss",),
        ("vct",),
        ("iat",),
        ("cnf",),
        ("address", "country"),
        ("nationalities",),
    )


def test_asking_for_an_object_releases_all_its_parts() -> None:
    m = _only(_query([{"path": ["address"]}]))
    assert m is not None and m.requested == (("address",),)
    assert set(m.disclosures) == {
        ("address",),
        ("address", "street_address"),
        ("address", "postal_code"),
    }
    assert ("address", "country") not in m.always_disclosed


def test_no_claims_releases_only_what_is_always_disclosed() -> None:
    m = _only(_query())
    assert m is not None and m.requested == () and m.disclosures == ()
    # nationalities: both elements withheld, but the (empty) array itself is visible.
    assert m.always_disclosed == (("iss",), ("vct",), ("iat",), ("cnf",), ("nationalities",))


def test_null_selects_every_element_and_an_index_one() -> None:
    every = _only(_query([{"path": ["nationalities", None]}]))
    assert every is not None
    assert every.requested == (("nationalities", 0), ("nationalities", 1))
    one = _only(_query([{"path": ["nationalities", 1]}]))
    assert one is not None and one.disclosures == (("nationalities", 1),)


def test_a_missing_claim_means_no_match() -> None:
    assert _only(_query([{"path": ["family_name"]}, {"path": ["bsn"]}])) is None
    assert _only(_query([{"path": ["address", "locality"]}])) is None
    assert _only(_query([{"path": ["nationalities", 5]}])) is None


def test_values_match_type_and_value_exactly() -> None:
    held = _held({"count": 1, "flag": True, "code": "1"}, {("count",), ("flag",), ("code",)})
    assert _only(_query([{"path": ["count"], "values": [1]}]), held) is not None
    assert _only(_query([{"path": ["count"], "values": [True, "1"]}]), held) is None
    assert _only(_query([{"path": ["flag"], "values": [1]}]), held) is None
    assert _only(_query([{"path": ["flag"], "values": [True]}]), held) is not None
    assert _only(_query([{"path": ["code"], "values": [1]}]), held) is None


def test_values_filter_elements_selected_by_null() -> None:
    m = _only(_query([{"path": ["nationalities", None], "values": ["DE"]}]))
    assert m is not None and m.requested == (("nationalities", 1),)
    assert m.disclosures == (("nationalities", 1),)


def test_claim_sets_take_the_first_option_that_can_be_met(vectors: Path) -> None:
    raw = json.loads(
        (vectors / "openid4vp/examples/query_lang/claims_alternatives.json").read_text()
    )
    query = parse_dcql(raw)
    both = _held(
        {
            "last_name": "D",
            "postal_code": "1",
            "locality": "L",
            "region": "R",
            "date_of_birth": "x",
        },
        {("last_name",), ("postal_code",), ("locality",), ("region",), ("date_of_birth",)},
        vct=PID_VCT,
    )
    m = match_credential(query.credentials[0], both)
    assert m is not None and m.claim_set == 0 and m.satisfiable_claim_sets == (0, 1)
    assert m.requested == (("last_name",), ("locality",), ("region",), ("date_of_birth",))
    # The citizen may prefer the other option: it releases the postal code instead.
    other = match_credential(query.credentials[0], both, claim_set=1)
    assert other is not None and other.requested == (
        ("last_name",),
        ("postal_code",),
        ("date_of_birth",),
    )
    no_region = _held(
        {"last_name": "D", "postal_code": "1", "date_of_birth": "x"},
        {("last_name",), ("postal_code",), ("date_of_birth",)},
        vct=PID_VCT,
    )
    second = match_credential(query.credentials[0], no_region)
    assert second is not None and second.claim_set == 1 and second.satisfiable_claim_sets == (1,)
    assert match_credential(query.credentials[0], no_region, claim_set=0) is None
    bare = _held({"last_name": "D"}, {("last_name",)}, vct=PID_VCT)
    assert match_credential(query.credentials[0], bare) is None


def test_type_format_binding_and_authorities_must_fit() -> None:
    assert _only(_query(vct=INCOME)) is None
    assert _only(_query(), _held({}, set(), binding=False)) is None
    assert _only(
        _query(require_cryptographic_holder_binding=False), _held({}, set(), binding=False)
    )
    assert _only(_query(trusted_authorities=[{"type": "aki", "values": ["abc"]}])) is None
    other_format = HeldCredential("c1", "mso_mdoc", PERSONAL, {}, frozenset())
    assert _only(_query(), other_format) is None


def test_other_formats_in_published_queries_match_nothing_of_ours(vectors: Path) -> None:
    base = vectors / "openid4vp/examples"
    for name in [
        "query_lang/simple_mdoc.json",
        "query_lang/complex_mdoc.json",
        "request/dcql_jwt_vc.json",
        "request/dcql_ldp_vc.json",
    ]:
        query = parse_dcql((base / name).read_text())
        held = [
            _held({"credentialSubject": {"family_name": "x", "given_name": "y"}}, set(), vct=v)
            for v in ("IDCredential", "org.iso.18013.5.1.mDL", PID_VCT)
        ]
        result = match_dcql(query, held)
        assert all(r.candidates == () for r in result.queries), name
        assert not result.satisfied and result.release == ()


def _set_query() -> dict:
    return {
        "credentials": [
            {
                "id": "person",
                "format": SD_JWT_VC,
                "meta": {"vct_values": [PERSONAL]},
                "claims": [{"path": ["family_name"]}],
            },
            {
                "id": "income",
                "format": SD_JWT_VC,
                "meta": {"vct_values": [INCOME]},
                "claims": [{"path": ["income_bracket"]}],
            },
        ],
        "credential_sets": [
            {"options": [["person"]]},
            {"options": [["income"]], "required": False},
        ],
    }


INCOME_HELD = _held({"income_bracket": {"code": "2"}}, {("income_bracket",)}, vct=INCOME, cid="c2")


def test_optional_credential_set_is_released_as_optional_when_held() -> None:
    match = match_dcql(parse_dcql(_set_query()), [PERSON, INCOME_HELD])
    assert match.satisfied
    assert [(r.query_id, r.optional) for r in match.release] == [
        ("person", False),
        ("income", True),
    ]
    assert match.result("person").required and not match.result("income").required


def test_missing_optional_credential_still_satisfies() -> None:
    match = match_dcql(parse_dcql(_set_query()), [PERSON])
    assert match.satisfied and [r.query_id for r in match.release] == ["person"]
    assert match.sets[1].chosen is None


def test_missing_required_credential_releases_nothing() -> None:
    match = match_dcql(parse_dcql(_set_query()), [INCOME_HELD])
    assert not match.satisfied and match.release == ()
    assert match.result("income").candidates  # it matched, yet must not be sent alone


def test_asking_for_an_unknown_query_id_is_an_error() -> None:
    match = match_dcql(parse_dcql(_set_query()), [PERSON])
    with pytest.raises(InvalidInput) as caught:
        match.result("nope")
    assert caught.value.code == "dcql.unknown_reference"


def test_without_credential_sets_every_query_is_required() -> None:
    query = _set_query()
    del query["credential_sets"]
    assert not match_dcql(parse_dcql(query), [PERSON]).satisfied
    both = match_dcql(parse_dcql(query), [PERSON, INCOME_HELD])
    assert both.satisfied and [r.optional for r in both.release] == [False, False]


def test_published_alternatives_pick_the_first_option_held(vectors: Path) -> None:
    raw = json.loads(
        (vectors / "openid4vp/examples/query_lang/credentials_alternatives.json").read_text()
    )
    reduced = _held(
        {"family_name": "D", "given_name": "A"},
        {("family_name",), ("given_name",)},
        vct="https://credentials.example.com/reduced_identity_credential",
        cid="r1",
    )
    residence = _held(
        {"postal_code": "1", "locality": "L", "region": "R"},
        {("postal_code",), ("locality",), ("region",)},
        vct="https://cred.example/residence_credential",
        cid="r2",
    )
    match = match_dcql(parse_dcql(raw), [reduced, residence])
    assert match.satisfied and match.sets[0].satisfiable_options == (2,)
    assert [r.query_id for r in match.release] == ["pid_reduced_cred_1", "pid_reduced_cred_2"]
    assert not match_dcql(parse_dcql(raw), [reduced]).satisfied


KEY = st.sampled_from(["a", "b", "c"])
TREE = st.recursive(
    st.integers(0, 3) | st.text("xy", max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEY, inner, max_size=3),
    max_leaves=15,
)


def _paths(node, prefix=()):
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


@settings(max_examples=300)
@given(st.dictionaries(KEY, TREE, min_size=1, max_size=3), st.data())
def test_nothing_withheld_leaks_and_everything_visible_is_reported(claims, data) -> None:
    paths = list(_paths(claims))
    sd = frozenset(data.draw(st.sets(st.sampled_from(paths))) if paths else set())
    asked = data.draw(st.lists(st.sampled_from(paths), max_size=3)) if paths else []
    held = HeldCredential("h", SD_JWT_VC, PERSONAL, claims, sd)
    query = _query([{"path": list(p)} for p in asked] or None)
    m = _only(query, held)
    assert m is not None
    disclosed = set(m.disclosures)
    assert disclosed <= sd
    for q in disclosed:  # every disclosure serves a requested claim
        assert any(is_prefix(q, r) or is_prefix(r, q) for r in m.requested)
    withheld = sd - disclosed
    shown = m.requested + m.always_disclosed
    for p in shown:  # nothing reported lies inside a withheld claim
        assert not any(is_prefix(w, p) for w in withheld)
    for r in m.requested:  # a requested claim goes whole
        assert not any(is_prefix(r, w) for w in withheld)
    for p in m.always_disclosed:  # reported whole, or as an empty container of withheld parts
        if any(is_prefix(p, w) for w in withheld):
            children = [c for c in paths if len(c) == len(p) + 1 and is_prefix(p, c)]
            assert children and all(c in withheld for c in children)
    for p in paths:  # every claim the verifier will see is accounted for
        visible = not any(is_prefix(w, p) for w in withheld)
        if visible:
            assert any(is_prefix(s, p) or is_prefix(p, s) for s in shown), p
