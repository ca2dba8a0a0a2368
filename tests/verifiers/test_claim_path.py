"""Claims path pointers (OpenID4VP 1.0 §7): parsing, selection, coverage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault import InvalidInput
from verifiers.claim_path import covers, is_prefix, parse_claim_path, path_text, select


class Bad(InvalidInput):
    code = ""  # a stand-in for a caller's own error class


# The example credential of OpenID4VP 1.0 §7.3.
ARTHUR = {
    "name": "Arthur Dent",
    "address": {
        "street_address": "42 Market Street",
        "locality": "Milliways",
        "postal_code": "12345",
    },
    "degrees": [
        {"type": "Bachelor of Science", "university": "University of Betelgeuse"},
        {"type": "Master of Science", "university": "University of Betelgeuse"},
    ],
    "nationalities": ["British", "Betelgeusian"],
}


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        (("name",), [(("name",), "Arthur Dent")]),
        (("address",), [(("address",), ARTHUR["address"])]),
        (("address", "street_address"), [(("address", "street_address"), "42 Market Street")]),
        (
            ("degrees", None, "type"),
            [
                (("degrees", 0, "type"), "Bachelor of Science"),
                (("degrees", 1, "type"), "Master of Science"),
            ],
        ),
        (("nationalities", 1), [(("nationalities", 1), "Betelgeusian")]),
    ],
)
def test_the_spec_examples_select_what_the_spec_says(pointer, expected) -> None:
    assert [(s.path, s.value) for s in select(pointer, ARTHUR)] == expected


@pytest.mark.parametrize(
    "pointer",
    [
        ("missing",),
        ("address", "missing"),
        ("nationalities", 2),  # index out of range
        ("name", "first"),  # a key applied to a string: §7.1.1 aborts
        ("address", 0),  # an index applied to an object
        ("address", None),  # null applied to an object
        ("degrees", "type"),  # a key applied to an array
    ],
)
def test_a_pointer_that_does_not_fit_selects_nothing(pointer) -> None:
    assert select(pointer, ARTHUR) == []


def test_null_over_mixed_elements_aborts_as_the_spec_says() -> None:
    assert select(("xs", None, "a"), {"xs": [{"a": 1}, "plain"]}) == []
    assert [s.path for s in select(("xs", None, "a"), {"xs": [{"a": 1}, {"b": 2}]})] == [
        ("xs", 0, "a")
    ]


@pytest.mark.parametrize(
    "obj",
    [[], "name", None, ["a", -1], ["a", True], ["a", 1.5], ["a", {}], ["a", ["b"]], ["x"] * 17],
)
def test_malformed_pointers_are_refused_with_the_callers_error(obj) -> None:
    with pytest.raises(Bad):
        parse_claim_path(obj, fail=Bad)


def test_a_well_formed_pointer_parses_to_a_tuple() -> None:
    assert parse_claim_path(["degrees", None, 0, "type"], fail=Bad) == ("degrees", None, 0, "type")


@pytest.mark.parametrize(
    ("allowed", "requested", "expected"),
    [
        (("address",), ("address", "postal_code"), True),
        (("address", "postal_code"), ("address",), False),
        (("address",), ("address",), True),
        (("degrees", None, "type"), ("degrees", 0, "type"), True),
        (("degrees", None), ("degrees", None, "type"), True),
        (("degrees", 0), ("degrees", None), False),
        (("degrees", None), ("degrees", "x"), False),
        (("a", 1), ("a", True), False),
        (("name",), ("given_name",), False),
    ],
)
def test_covers(allowed, requested, expected) -> None:
    assert covers(allowed, requested) is expected


def test_is_prefix_and_text() -> None:
    assert (
        is_prefix(("a",), ("a", 0))
        and is_prefix(("a",), ("a",))
        and not is_prefix(("a", 0), ("a",))
    )
    assert path_text(("degrees", None, "type")) == "degrees[*].type"
    assert path_text(("nationalities", 1)) == "nationalities[1]"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)
POINTER = st.lists(st.none() | st.integers(0, 3) | st.text(max_size=3), min_size=1, max_size=4).map(
    tuple
)


@given(POINTER, st.dictionaries(st.text(max_size=3), JSON, max_size=4))
def test_select_never_raises_and_every_match_is_reachable(pointer, claims) -> None:
    for match in select(pointer, claims):
        node = claims
        for component in match.path:
            node = node[component]
        assert node is match.value
        assert covers(pointer, match.path)
