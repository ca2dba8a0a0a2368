"""The issuer's stored status list: format_status_list_state / parse_status_list_state keep
the uri, every status and every index handed out, and refuse anything else with one code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import KluisError
from verifiers import format_status_list_state, parse_status_list_state
from verifiers.status_array import StatusArray, StatusValue, format_status_list
from verifiers.statuslist import MIN_LIST_SIZE, BadState, StatusList

URI = "https://agency.example/status/1"


def _list_with_history(bits: int = 2) -> tuple[StatusList, list[int]]:
    status_list = StatusList(URI, bits=bits)
    indices = [status_list.allocate() for _ in range(6)]
    status_list.revoke(indices[0])
    if bits == 2:
        status_list.suspend(indices[1])
    return status_list, indices


def _same(a: StatusList, b: StatusList) -> None:
    assert (a.uri, a.bits, a.size, a.allocated) == (b.uri, b.bits, b.size, b.allocated)
    assert a.statuses == b.statuses


@pytest.mark.parametrize("bits", [1, 2])
def test_state_round_trips_through_json_text(bits: int) -> None:
    status_list, indices = _list_with_history(bits)
    text = json.dumps(format_status_list_state(status_list))
    for form in (text, text.encode(), json.loads(text)):
        restored = parse_status_list_state(form)
        _same(restored, status_list)
    assert restored.status(indices[0]) == StatusValue.INVALID
    assert restored.status(indices[2]) == StatusValue.VALID


def test_restored_list_never_hands_out_a_stored_index_again() -> None:
    status_list, indices = _list_with_history()
    restored = parse_status_list_state(format_status_list_state(status_list))
    fresh = {restored.allocate() for _ in range(500)}
    assert fresh.isdisjoint(indices)


def test_state_of_an_odd_sized_list_pads_the_bitmap() -> None:
    size = MIN_LIST_SIZE + 4  # 2 bits x size fills whole bytes; size / 8 does not
    status_list = StatusList.restore(URI, StatusArray(2, size), {0, size - 1})
    status_list.revoke(size - 1)
    restored = parse_status_list_state(format_status_list_state(status_list))
    _same(restored, status_list)
    assert restored.status(size - 1) == StatusValue.INVALID


@settings(max_examples=40, deadline=None)
@given(
    bits=st.sampled_from([1, 2]),
    indices=st.sets(st.integers(0, MIN_LIST_SIZE - 1), max_size=40),
    data=st.data(),
)
def test_any_history_round_trips(bits: int, indices: set[int], data: st.DataObject) -> None:
    array = StatusArray(bits, MIN_LIST_SIZE)
    for index in indices:
        array[index] = data.draw(st.integers(0, 1 if bits == 1 else 2))
    status_list = StatusList.restore(URI, array, indices)
    _same(parse_status_list_state(format_status_list_state(status_list)), status_list)


def _state() -> dict[str, Any]:
    return format_status_list_state(_list_with_history()[0])


def _bitmap_with(index: int, size: int = MIN_LIST_SIZE) -> dict[str, Any]:
    bitmap = StatusArray(1, -(-size // 8) * 8)
    bitmap[index] = 1
    return format_status_list(bitmap)


def _status_on_unallocated() -> dict[str, Any]:
    array = StatusArray(2, MIN_LIST_SIZE)
    array[7] = StatusValue.INVALID
    return {**_state(), "status_list": format_status_list(array), "allocated": _bitmap_with(8)}


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda s: {k: v for k, v in s.items() if k != "allocated"}, id="no_allocated"),
        pytest.param(lambda s: {**s, "note": "x"}, id="unknown_member"),
        pytest.param(lambda s: {**s, "format": "other"}, id="other_format"),
        pytest.param(lambda s: {**s, "version": 2}, id="future_version"),
        pytest.param(lambda s: {**s, "version": "1"}, id="version_as_text"),
        pytest.param(lambda s: {**s, "version": True}, id="version_as_bool"),
        pytest.param(lambda s: {**s, "uri": ""}, id="empty_uri"),
        pytest.param(lambda s: {**s, "uri": 7}, id="uri_not_text"),
        pytest.param(lambda s: {**s, "uri": "u" * 2049}, id="uri_too_long"),
        pytest.param(lambda s: {**s, "status_list": {"bits": 2, "lst": "!!"}}, id="bad_lst"),
        pytest.param(lambda s: {**s, "status_list": None}, id="null_status_list"),
        pytest.param(lambda s: {**s, "allocated": s["status_list"]}, id="bitmap_of_two_bits"),
        pytest.param(
            lambda s: {**s, "allocated": format_status_list(StatusArray(1, 8))},
            id="bitmap_too_short",
        ),
        pytest.param(
            lambda s: {
                **s,
                "status_list": format_status_list(StatusArray(2, 1024)),
                "allocated": format_status_list(StatusArray(1, 1024)),
            },
            id="list_too_small",
        ),
        pytest.param(lambda s: _status_on_unallocated(), id="status_on_unallocated_index"),
        pytest.param(lambda s: [s], id="not_an_object"),
    ],
)
def test_tampered_state_is_refused(tamper: Any) -> None:
    with pytest.raises(BadState):
        parse_status_list_state(tamper(_state()))


def test_padding_bit_set_in_bitmap_is_refused() -> None:
    size = MIN_LIST_SIZE + 4
    state = format_status_list_state(StatusList(URI, size=size))
    state["allocated"] = _bitmap_with(size + 2, size)  # a padding bit, outside the list
    with pytest.raises(BadState):
        parse_status_list_state(state)


@pytest.mark.parametrize(
    "text",
    [b"", b"{", b"\xff\xfe", b"[]", b"null", b'{"format": 1, "format": 1}', "{" * 100_000],
    ids=["empty", "cut", "not_utf8", "array", "null", "duplicate_member", "deep"],
)
def test_text_that_is_not_a_state_is_refused(text: str | bytes) -> None:
    with pytest.raises(BadState):
        parse_status_list_state(text)


_STATE_TEXT_SOURCE = format_status_list_state(_list_with_history()[0])


@settings(max_examples=200, deadline=None)
@given(at=st.integers(min_value=0), char=st.characters(codec="ascii"))
def test_a_changed_character_parses_to_a_state_or_bad_state(at: int, char: str) -> None:
    text = json.dumps(_STATE_TEXT_SOURCE)
    at %= len(text)
    changed = text[:at] + char + text[at + 1 :]
    try:
        parse_status_list_state(changed)
    except KluisError as error:
        assert isinstance(error, BadState)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@settings(max_examples=100, deadline=None)
@given(_JSON)
def test_any_json_value_is_bad_state(value: object) -> None:
    with pytest.raises(BadState):
        parse_status_list_state(value)
