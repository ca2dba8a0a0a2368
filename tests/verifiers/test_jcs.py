"""verifiers.jcs gives exactly what the rfc8785 package gives, bytes and errors alike, for
any JSON value: floats, huge integers, characters beyond the BMP, lone surrogates, deep
nesting and non-JSON values included."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers.jcs import MAX_SAFE_INTEGER, canonicalize

TEXT = st.text(alphabet=st.characters(codec=None), max_size=12)
SCALARS = (st.none() | st.booleans() | TEXT | st.floats(allow_nan=True, allow_infinity=True)
           | st.integers() | st.integers(-MAX_SAFE_INTEGER - 2, MAX_SAFE_INTEGER + 2))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TEXT, inner, max_size=4), max_leaves=30)


def _outcome(function: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", bytes(function(value))
    except Exception as error:  # noqa: BLE001 - compare which error, not catch it
        return "error", type(error)


@settings(max_examples=600)
@given(JSON)
def test_the_same_bytes_or_the_same_error_as_rfc8785(value: Any) -> None:
    assert _outcome(canonicalize, value) == _outcome(rfc8785.dumps, value)


@pytest.mark.parametrize("value", [
    {"b": 1, "a": [True, None, "é"], "€": {"z": -MAX_SAFE_INTEGER}},
    {"\U0001f600": 1, "\ufb33": 2},  # key order by UTF-16 code units
    {"n": MAX_SAFE_INTEGER + 1},
    {"f": 1.0, "g": 1e21, "h": -0.0},
    ["\ud800"],
    (1, 2),
    {1: "non-string key"},
])
def test_edge_cases(value: Any) -> None:
    assert _outcome(canonicalize, value) == _outcome(rfc8785.dumps, value)


def test_deep_nesting_is_left_to_rfc8785() -> None:
    value: Any = 1
    for _ in range(300):
        value = [value]
    assert _outcome(canonicalize, value) == _outcome(rfc8785.dumps, value)
