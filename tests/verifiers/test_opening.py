"""Opening files: round trip, and malformed files refused with their own code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifiers.opening import MalformedOpening, Opening, format_opening, parse_opening


def test_round_trip() -> None:
    opening = Opening("kluis.local/log/x", 3, b'{"kind":"x"}', ("WyJzIiwibiIsMV0",))
    assert parse_opening(format_opening(opening)) == opening


@pytest.mark.parametrize("data", [
    b"", b"[]", b"not json",
    b'{"format":"kluis-opening","v":1,"origin":"o","seq":-1,"entry":"x","openings":[]}',
    b'{"format":"kluis-opening","v":2,"origin":"o","seq":1,"entry":"x","openings":[]}',
    b'{"format":"other","v":1,"origin":"o","seq":1,"entry":"x","openings":[]}',
    b'{"format":"kluis-opening","v":1,"origin":"o","seq":1,"entry":"x","openings":[1]}',
    b'{"format":"kluis-opening","v":1,"origin":"o","seq":true,"entry":"x","openings":[]}',
    b" " * (1024 * 1024 + 1),
])
def test_malformed_openings_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedOpening):
        parse_opening(data)


@given(st.binary(max_size=200))
def test_parse_opening_raises_only_its_own_error(junk: bytes) -> None:
    try:
        parse_opening(junk)
    except MalformedOpening:
        pass
