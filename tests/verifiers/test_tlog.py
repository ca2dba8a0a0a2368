"""The generic append-only log: canonical entry bytes, append batches with one signed
checkpoint each, proofs from the store, and the auditor's line parser."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import nacl.exceptions
import nacl.signing
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import InvalidInput
from verifiers.checkpoint import parse_checkpoint, verify_checkpoint
from verifiers.merkle import (
    check_consistency,
    check_inclusion,
    hash_leaf,
    prove_consistency,
    prove_inclusion,
    root_at,
)
from verifiers.note import Signer, format_verifier_key
from verifiers.tlog import (
    MAX_SAFE_INTEGER,
    BadEntry,
    BadRecord,
    EntryTooLarge,
    MemoryLogStore,
    Record,
    append,
    canonical_json,
    format_entry,
    lines_with_floats,
    parse_entry,
    root_of_lines,
)

NOW = datetime(2027, 3, 3, 10, 15, 7, 999, tzinfo=UTC)
ORIGIN = "kluis.local/log/test"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def _records(n: int, start: int = 0) -> list[Record]:
    return [Record("example", {"n": start + i, "text": f"entry {start + i}"}) for i in range(n)]


# --- canonical bytes -----------------------------------------------------------------------

_json_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | _json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_json_text, inner, max_size=4),
    max_leaves=12,
)


@given(_json)
@settings(max_examples=400)
def test_canonical_bytes_are_rfc8785(value) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_keys_beyond_the_bmp_sort_by_utf16_code_units() -> None:
    value = {"\ue000": 1, "\U0001f600": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index(
        "\ue000".encode()
    )


# --- append --------------------------------------------------------------------------------


def test_append_writes_envelope_leaves_and_a_signed_checkpoint(signer: Signer) -> None:
    store = MemoryLogStore()
    done = append(store, signer, _records(3), now=NOW)
    lines = [e.line for e in done.entries]
    assert [json.loads(line)["seq"] for line in lines] == [0, 1, 2]
    first = json.loads(lines[0])
    assert first == {"v": 1, "seq": 0, "time": "2027-03-03T10:15:07Z", "kind": "example",
                     "n": 0, "text": "entry 0"}
    assert all(line == rfc8785.dumps(json.loads(line)) for line in lines)
    assert [e.leaf_hash for e in done.entries] == [hash_leaf(line) for line in lines]
    checkpoint = verify_checkpoint(done.note, signer.verifier_key, origin=ORIGIN)
    assert (checkpoint.size, checkpoint.root_hash) == (3, root_of_lines(lines))
    assert store.head().checkpoint == done.note


def test_batches_continue_the_tree(signer: Signer) -> None:
    store = MemoryLogStore()
    notes = [append(store, signer, _records(n, sum(range(n))), now=NOW).note for n in (1, 2, 5, 8)]
    lines = list(store.lines(0, 16))
    assert len(lines) == 16
    assert [json.loads(line)["seq"] for line in lines] == list(range(16))
    sizes = [parse_checkpoint(n.split("\n\n")[0] + "\n").size for n in notes]
    assert sizes == [1, 3, 8, 16]
    for note in notes:
        cp = verify_checkpoint(note, signer.verifier_key, origin=ORIGIN)
        assert cp.root_hash == root_of_lines(lines[: cp.size])


def test_inclusion_and_consistency_proofs_from_the_store(signer: Signer) -> None:
    store = MemoryLogStore()
    append(store, signer, _records(7), now=NOW)
    old = verify_checkpoint(store.head().checkpoint, signer.verifier_key, origin=ORIGIN)
    append(store, signer, _records(6, 7), now=NOW)
    new = verify_checkpoint(store.head().checkpoint, signer.verifier_key, origin=ORIGIN)
    leaves = store.leaf_hashes(0, new.size)
    for index in range(new.size):
        proof = prove_inclusion(index, new.size, store)
        check_inclusion(index, new.size, leaves[index], proof, new.root_hash)
    proof = prove_consistency(old.size, new.size, store)
    check_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    assert root_at(old.size, store) == old.root_hash


def test_a_checkpoint_verifies_with_an_independent_signed_note_checker(signer: Signer) -> None:
    """C2SP signed-note checked with PyNaCl and hand-written parsing, not verifiers.note."""
    store = MemoryLogStore()
    note = append(store, signer, _records(4), now=NOW).note
    name, hex_id, key_b64 = format_verifier_key(signer.verifier_key).split("+", 2)
    raw_key = base64.b64decode(key_b64)
    assert raw_key[0] == 1  # Ed25519
    expected_id = hashlib.sha256(name.encode() + b"\n" + raw_key).digest()[:4]
    assert expected_id.hex() == hex_id
    text, signatures = note.split("\n\n", 1)
    sig_name, sig_b64 = signatures.rstrip("\n").removeprefix("\u2014 ").split(" ")
    blob = base64.b64decode(sig_b64)
    assert sig_name == name and blob[:4] == expected_id
    nacl.signing.VerifyKey(raw_key[1:]).verify((text + "\n").encode(), blob[4:])
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(raw_key[1:]).verify((text + "x\n").encode(), blob[4:])
    origin, size, root = text.split("\n")
    lines = list(store.lines(0, 4))
    assert (origin, int(size)) == (ORIGIN, 4)
    assert base64.b64decode(root) == root_of_lines(lines)


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (Record("Example", {}), "kind"),
        (Record("", {}), "kind"),
        (Record("example", {"seq": 9}), "set by the log"),
        (Record("example", {"time": "x"}), "set by the log"),
        (Record("example", {"x": 1.5}), "JSON"),
        (Record("example", {"x": 2**53}), "2**53"),
        (Record("example", {"x": {1: "a"}}), "names are strings"),
        (Record("example", {"x": "\ud800"}), "Unicode"),
        (Record("example", {"x": object()}), "JSON value"),
    ],
)
def test_bad_records_are_refused(signer: Signer, record: Record, why: str) -> None:
    store = MemoryLogStore()
    with pytest.raises(BadRecord) as caught:
        append(store, signer, [record], now=NOW)
    assert why in caught.value.detail
    assert store.head().size == 0


def test_nothing_is_written_when_one_record_of_a_batch_is_bad(signer: Signer) -> None:
    store = MemoryLogStore()
    with pytest.raises(BadRecord):
        append(store, signer, [*_records(3), Record("example", {"x": 0.5})], now=NOW)
    assert store.head().size == 0 and list(store.lines(0, 9)) == []


def test_time_needs_a_zone_and_batches_are_not_empty(signer: Signer) -> None:
    with pytest.raises(BadRecord):
        append(MemoryLogStore(), signer, _records(1), now=datetime(2027, 3, 3))
    with pytest.raises(BadRecord):
        append(MemoryLogStore(), signer, [], now=NOW)


def test_time_is_utc_whole_seconds(signer: Signer) -> None:
    amsterdam = NOW.astimezone(ZoneInfo("Europe/Amsterdam"))
    line = format_entry(0, "2027-03-03T10:15:07Z", _records(1)[0])
    done = append(MemoryLogStore(), signer, _records(1), now=amsterdam)
    assert done.entries[0].line == line


def test_entries_are_limited_in_size(signer: Signer) -> None:
    with pytest.raises(EntryTooLarge):
        append(MemoryLogStore(), signer, [Record("example", {"x": "a" * 70_000})], now=NOW)


# --- parsing lines as an auditor --------------------------------------------------------------

GOOD = b'{"kind":"example","n":1,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}'


def test_parse_entry_accepts_a_canonical_line() -> None:
    assert parse_entry(GOOD, seq=4)["n"] == 1
    text = b'{"kind":"example","n":"art. 2.3.2 e+1","seq":4,"time":"2027-03-03T10:15:07Z","v":1}'
    assert parse_entry(text, seq=4)["n"] == "art. 2.3.2 e+1"
    non_bmp = rfc8785.dumps({"kind": "x", "seq": 0, "time": "2027-03-03T10:15:07Z", "v": 1,
                             "\ue000": 1, "\U0001f600": 2})
    assert parse_entry(non_bmp, seq=0)["\U0001f600"] == 2


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"kind":"example","n":1,"seq":4,"time":"2027-03-03T10:15:07Z","v":1} ', "canonical"),
        (b'{"kind": "example","n":1,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}', "canonical"),
        (b'{"n":1,"kind":"example","seq":4,"time":"2027-03-03T10:15:07Z","v":1}', "canonical"),
        (b'{"kind":"example","n":1,"n":1,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}',
         "canonical"),
        (b'{"kind":"example","n":"\\u0041","seq":4,"time":"2027-03-03T10:15:07Z","v":1}',
         "canonical"),
        (b'{"kind":"example","n":1.0,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}', "fractions"),
        (b'{"kind":"example","n":1e3,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}', "canonical"),
        (b'{"kind":"example","n":1.5,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}', "fractions"),
        (b'{"kind":"example","n":1e+21,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}',
         "fractions"),
        (b'{"kind":"example","n":1,"seq":4,"time":"2027-02-30T10:15:07Z","v":1}', "time"),
        (b'{"kind":"2027-03-03T10:15:07Z","n":1,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}',
         "kind"),
        (b'{"kind":"example","n":1,"seq":4,"time":["x"],"v":1}', "time"),
        (b'{"kind":"example","n":9007199254740993,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}',
         "2**53"),
        (b'{"kind":"example","n":-9007199254740992,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}',
         "2**53"),
        (b'{"kind":"example","n":1,"seq":5,"time":"2027-03-03T10:15:07Z","v":1}', "position"),
        (b'{"kind":"example","n":1,"seq":"4","time":"2027-03-03T10:15:07Z","v":1}', "position"),
        (b'{"kind":"example","n":1,"seq":4,"time":"2027-03-03T10:15:07Z","v":2}', "v is 1"),
        (b'{"kind":"example","n":1,"seq":4,"time":"2027-03-03T10:15:07Z","v":true}', "v is 1"),
        (b'{"kind":"example","n":1,"seq":4,"time":"2027-03-03 10:15:07Z","v":1}', "time"),
        (b'{"kind":"Example","n":1,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}', "kind"),
        (b'{"n":1,"seq":4,"time":"2027-03-03T10:15:07Z","v":1}', "kind"),
        (b'["kind"]', "object"),
        (b'{"kind":"example"', "not JSON"),
        (b'{"kind":"\xff"}', "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_parse_entry_refuses(line: bytes, why: str) -> None:
    with pytest.raises(BadEntry) as caught:
        parse_entry(line, seq=4)
    assert why in caught.value.detail
    assert isinstance(caught.value, InvalidInput)


@given(st.binary(max_size=80))
def test_parse_entry_raises_only_its_own_error(junk: bytes) -> None:
    try:
        parse_entry(junk, seq=0)
    except BadEntry:
        pass


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.sampled_from(["art. 2.3.2", "v1.0", "-1.5", "x 1e-5", "1e+21"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=8,
)


@given(st.lists(st.dictionaries(st.text(max_size=4), _values, max_size=4), max_size=6))
@settings(max_examples=300)
def test_the_block_float_check_finds_exactly_the_lines_with_floats(objects) -> None:
    import orjson

    lines = [orjson.dumps(o, option=orjson.OPT_SORT_KEYS) for o in objects]

    def has_float(value) -> bool:
        if isinstance(value, float):
            return True
        if isinstance(value, dict):
            return any(has_float(v) for v in value.values())
        if isinstance(value, list):
            return any(has_float(v) for v in value)
        return False

    expected = [i for i, o in enumerate(objects) if has_float(o)]
    assert lines_with_floats(lines) == expected
