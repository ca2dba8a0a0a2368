"""Token Status List encoding (§4): the draft's vectors, round trips and damaged lists."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import KluisError
from verifiers.status_array import (
    MAX_LIST_BYTES,
    BadList,
    BadParameters,
    IndexOutOfRange,
    StatusArray,
    decode_lst,
    encode_lst,
    format_status_list,
    parse_status_list,
)

WORKED = ["status_list_1bit_16_entries.json", "status_list_2bit_12_entries.json"]
LONG = [
    "test_vector_1bit.json",
    "test_vector_2bit.json",
    "test_vector_4bit.json",
    "test_vector_8bit.json",
]


def _load(vectors: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((vectors / "status-list" / name).read_text())
    return data


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("name", WORKED)
def test_worked_examples(vectors: Path, name: str) -> None:
    case = _load(vectors, name)
    bits, lst = case["status_list_json"]["bits"], case["status_list_json"]["lst"]
    decoded = decode_lst(lst, bits=bits)
    assert decoded.to_bytes().hex() == case["byte_array_hex"]
    assert [decoded[i] for i in range(case["size"])] == case["statuses"]
    built = StatusArray(bits, len(decoded))
    for index, value in enumerate(case["statuses"]):
        built[index] = value
    assert built == decoded
    assert encode_lst(built) == lst
    assert base64.urlsafe_b64decode(lst + "==").hex() == case["compressed_hex"]
    assert format_status_list(built) == case["status_list_json"]


@pytest.mark.parametrize("name", LONG)
def test_long_vectors(vectors: Path, name: str) -> None:
    case = _load(vectors, name)
    claim = case["status_list_json"]
    decoded = parse_status_list(claim)
    assert len(decoded) == case["size"]
    listed = {s["index"]: s["value"] for s in case["statuses"]}
    for index, value in listed.items():
        assert decoded[index] == value
    # every index not listed is 0: compare the non-zero entries as a whole
    assert dict(decoded.nonzero()) == {i: v for i, v in listed.items() if v}
    built = StatusArray(claim["bits"], case["size"])
    for index, value in listed.items():
        built[index] = value
    assert encode_lst(built) == claim["lst"]
    again = decode_lst(encode_lst(decoded), bits=claim["bits"])
    assert again == decoded


# --- damaged lists ----------------------------------------------------------------------------

GOOD = "eNrbuRgAAhcBXQ"


@pytest.mark.parametrize("bits", [0, 3, 5, 16, -1, True])
def test_bits_outside_1_2_4_8_are_refused(bits: int) -> None:
    with pytest.raises(BadList):
        decode_lst(GOOD, bits=bits)
    with pytest.raises(BadList):
        parse_status_list({"bits": bits, "lst": GOOD})


@pytest.mark.parametrize(
    "lst",
    [
        GOOD[:-3],  # truncated stream
        "eNrbuRgAAhcCXQ",  # garbled checksum
        "eNrbuRgAAhcBXq",  # garbled: adler32 differs
        GOOD + "==",  # padding
        GOOD.replace("N", "+"),  # not the url-safe alphabet
        "eNrbuRgAAhcBXR",  # non-canonical trailing bits
        _b64url(zlib.compress(b"\xb9\xa3", 9) + b"junk"),  # data after the stream
        _b64url(zlib.compress(b"", 9)),  # empty list
        _b64url(zlib.compress(b"\xb9\xa3", 9)[2:-4]),  # raw DEFLATE, no zlib wrapper
        "",
        "!!!!",
    ],
)
def test_truncated_or_garbled_lst_is_refused(lst: str) -> None:
    with pytest.raises(BadList):
        decode_lst(lst, bits=1)


def test_a_zip_bomb_is_refused() -> None:
    bomb = _b64url(zlib.compress(bytes(MAX_LIST_BYTES + 1), 9))
    with pytest.raises(BadList):
        decode_lst(bomb, bits=1)
    at_limit = _b64url(zlib.compress(bytes(MAX_LIST_BYTES), 9))
    assert len(decode_lst(at_limit, bits=8)) == MAX_LIST_BYTES


@pytest.mark.parametrize(
    "claim", [None, [], "x", {"bits": "1", "lst": GOOD}, {"bits": 1}, {"lst": GOOD}]
)
def test_malformed_status_list_claim_is_refused(claim: object) -> None:
    with pytest.raises(BadList):
        parse_status_list(claim)


def test_array_bounds() -> None:
    array = StatusArray(2, 8)
    with pytest.raises(IndexOutOfRange):
        array[8]
    with pytest.raises(IndexOutOfRange):
        array[-1]
    with pytest.raises(BadParameters):
        array[0] = 4  # does not fit 2 bits
    with pytest.raises(BadParameters):
        array[8] = 1
    with pytest.raises(BadParameters):
        StatusArray(2, 3)  # 6 bits: not whole bytes
    with pytest.raises(BadParameters):
        StatusArray(3, 8)


# --- properties --------------------------------------------------------------------------------


@st.composite
def _arrays(draw: st.DrawFn) -> tuple[int, list[int]]:
    bits = draw(st.sampled_from([1, 2, 4, 8]))
    count = draw(st.integers(1, 64)) * (8 // bits)
    return bits, draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=count, max_size=count))


@given(_arrays())
def test_pack_encode_decode_round_trip(case: tuple[int, list[int]]) -> None:
    bits, values = case
    array = StatusArray(bits, len(values))
    for index, value in enumerate(values):
        array[index] = value
    assert [array[i] for i in range(len(values))] == values
    decoded = decode_lst(encode_lst(array), bits=bits)
    assert [decoded[i] for i in range(len(values))] == values
    assert dict(decoded.nonzero()) == {i: v for i, v in enumerate(values) if v}


@given(_arrays())
def test_layout_is_lsb_first(case: tuple[int, list[int]]) -> None:
    bits, values = case
    array = StatusArray(bits, len(values))
    for index, value in enumerate(values):
        array[index] = value
    as_int = int.from_bytes(array.to_bytes(), "little")
    assert [as_int >> (i * bits) & ((1 << bits) - 1) for i in range(len(values))] == values


@settings(max_examples=300)
@given(st.text(), st.sampled_from([1, 2, 4, 8]))
def test_decode_raises_only_kluis_errors(lst: str, bits: int) -> None:
    try:
        decode_lst(lst, bits=bits)
    except KluisError:
        pass


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_decode_of_random_compressed_bytes_raises_only_kluis_errors(data: bytes) -> None:
    for blob in (data, zlib.compress(data)[: len(data)]):
        try:
            decode_lst(_b64url(blob), bits=1)
        except KluisError:
            pass
