"""C2SP tlog-checkpoint: the transparency-dev/formats body cases, the C2SP and sumdb examples,
sign/verify, and tampering."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import KluisError
from verifiers.checkpoint import (
    MAX_SIZE,
    Checkpoint,
    KeyNameMismatch,
    MalformedCheckpoint,
    WrongOrigin,
    format_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from verifiers.merkle import MerkleTree, check_inclusion, hash_leaf, prove_inclusion
from verifiers.note import Signer, UnverifiedNote, sign_note

ORIGIN = "vault.example/audit"
SIGNER = Signer.generate(ORIGIN)


@pytest.fixture(scope="module")
def bodies(vectors: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (vectors / "signed-note/checkpoint_body_cases.json").read_text()
    )
    return data


@pytest.fixture(scope="module")
def notes(vectors: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (vectors / "signed-note/signed_note_vectors.json").read_text()
    )
    return data


def test_marshal_cases(bodies: dict[str, Any]) -> None:
    for case in bodies["marshal_cases"]:
        root = base64.b64decode(case["root_hash_b64"])
        assert (
            format_checkpoint(Checkpoint(case["origin"], case["tree_size"], root)) == case["text"]
        )


def test_parse_cases(bodies: dict[str, Any]) -> None:
    for case in bodies["parse_cases"]:
        if case["expect"] == "error" or "c2sp_note" in case:
            # The one flagged case (empty extension lines) is accepted by transparency-dev but
            # breaks the C2SP MUST that extension lines are non-empty: we follow C2SP.
            with pytest.raises(MalformedCheckpoint):
                parse_checkpoint(case["text"], hash_size=None)
            continue
        got = parse_checkpoint(case["text"], hash_size=None)
        want = case["checkpoint"]
        assert (got.origin, got.size) == (want["origin"], want["tree_size"])
        assert got.root_hash == base64.b64decode(want["root_hash_b64"])
        assert "".join(line + "\n" for line in got.extensions) == case["rest"]
        assert format_checkpoint(got) == case["text"]


def test_the_body_cases_have_short_roots_that_our_logs_refuse(bodies: dict[str, Any]) -> None:
    with pytest.raises(MalformedCheckpoint):
        parse_checkpoint(bodies["parse_cases"][0]["text"])  # a 7-byte "root"


def test_c2sp_example_checkpoint_parses(notes: dict[str, Any]) -> None:
    case = next(n for n in notes["notes"] if n["id"] == "c2sp-checkpoint")
    got = parse_checkpoint(case["text"])
    want = case["checkpoint"]
    assert (got.origin, got.size, got.extensions) == (want["origin"], want["tree_size"], ())
    assert base64.b64encode(got.root_hash).decode() == want["root_hash_b64"]


def test_go_sumdb_tree_texts(notes: dict[str, Any]) -> None:
    sumdb = notes["sumdb_tlog"]
    good = parse_checkpoint(sumdb["tree_note_text"])
    assert good.size == sumdb["tree_size"] and good.origin == "go.sum database tree"
    wrong_origin, bad_size, bad_hash = sumdb["bad_tree_texts"]
    assert parse_checkpoint(wrong_origin).origin != good.origin
    for text in (bad_size, bad_hash):
        with pytest.raises(MalformedCheckpoint):
            parse_checkpoint(text)
    unterminated, terminated = sumdb["good_tree_texts_with_trailing_junk"]
    # Go's tree parser ignores trailing junk; in a checkpoint it is an extension line, which
    # (like every line of a note text) ends in a newline.
    assert parse_checkpoint(terminated).extensions == ("JOE",)
    with pytest.raises(MalformedCheckpoint):
        parse_checkpoint(unterminated)


@pytest.mark.parametrize(
    "size", ["00", "01", "+1", "-0", " 1", "1 ", "1e3", "0x10", "١٢", str(MAX_SIZE + 1), ""]
)
def test_bad_size_lines_are_refused(size: str) -> None:
    root = base64.b64encode(bytes(32)).decode()
    with pytest.raises(MalformedCheckpoint):
        parse_checkpoint(f"{ORIGIN}\n{size}\n{root}\n")


@pytest.mark.parametrize(
    "text",
    [
        "\n0\n" + base64.b64encode(bytes(32)).decode() + "\n",  # empty origin
        f"{ORIGIN}\n0\n" + base64.b64encode(bytes(31)).decode() + "\n",  # short root
        f"{ORIGIN}\n0\n" + base64.b64encode(bytes(32)).decode()[:-1] + "\n",  # cut base64
        f"{ORIGIN}\n0\n" + base64.b64encode(bytes(32)).decode().replace("=", "B") + "\n",
        f"{ORIGIN}\n0\n\n",
        f"{ORIGIN}\n0\n" + base64.b64encode(bytes(32)).decode() + "\next\r\n",  # control char
    ],
)
def test_bad_bodies_are_refused(text: str) -> None:
    with pytest.raises(MalformedCheckpoint):
        parse_checkpoint(text)


def test_size_limits() -> None:
    root = bytes(32)
    assert parse_checkpoint(format_checkpoint(Checkpoint(ORIGIN, MAX_SIZE, root))).size == MAX_SIZE
    assert parse_checkpoint(format_checkpoint(Checkpoint(ORIGIN, 0, root))).size == 0
    for bad in (-1, MAX_SIZE + 1, True):
        with pytest.raises(MalformedCheckpoint):
            Checkpoint(ORIGIN, bad, root)


# --- signing and verifying ---------------------------------------------------------------------


def _log(n: int) -> tuple[list[bytes], Checkpoint]:
    leaves = [hash_leaf(f'{{"i":{i}}}'.encode()) for i in range(n)]
    tree = MerkleTree()
    tree.extend(leaves)
    return leaves, Checkpoint(ORIGIN, tree.size, tree.root())


def test_signed_checkpoint_verifies_and_proves_an_entry() -> None:
    leaves, checkpoint = _log(1000)
    note = sign_checkpoint(checkpoint, SIGNER)
    got = verify_checkpoint(note, SIGNER.verifier_key, origin=ORIGIN)
    assert got == checkpoint
    proof = prove_inclusion(417, got.size, leaves)
    check_inclusion(417, got.size, leaves[417], proof, got.root_hash)


def test_checkpoint_of_another_log_is_refused() -> None:
    other = Signer.generate("other.example/log")
    _, checkpoint = _log(3)
    note = sign_note(
        format_checkpoint(Checkpoint("other.example/log", 3, checkpoint.root_hash)), other
    )
    with pytest.raises(WrongOrigin):
        verify_checkpoint(note, other.verifier_key, origin=ORIGIN)


def test_checkpoint_signed_by_another_key_is_unverified() -> None:
    _, checkpoint = _log(3)
    note = sign_checkpoint(checkpoint, Signer.generate(ORIGIN))
    with pytest.raises(UnverifiedNote):
        verify_checkpoint(note, SIGNER.verifier_key, origin=ORIGIN)


def test_witness_cosignature_is_ignored() -> None:
    _, checkpoint = _log(5)
    witness = Signer.generate("witness.example/w1")
    note = sign_note(format_checkpoint(checkpoint), [SIGNER, witness])
    assert verify_checkpoint(note, SIGNER.verifier_key, origin=ORIGIN) == checkpoint


def test_signing_with_a_key_not_named_after_the_origin_is_refused() -> None:
    _, checkpoint = _log(2)
    with pytest.raises(KeyNameMismatch):
        sign_checkpoint(checkpoint, Signer.generate("someone.else"))


def test_signing_a_root_that_is_not_sha256_sized_is_refused() -> None:
    with pytest.raises(MalformedCheckpoint):
        sign_checkpoint(Checkpoint(ORIGIN, 1, b"bananas"), SIGNER)


def test_signed_body_that_breaks_the_grammar_is_refused() -> None:
    note = sign_note(f"{ORIGIN}\n007\n" + base64.b64encode(bytes(32)).decode() + "\n", SIGNER)
    with pytest.raises(MalformedCheckpoint):
        verify_checkpoint(note, SIGNER.verifier_key, origin=ORIGIN)


# --- properties --------------------------------------------------------------------------------

_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), min_size=1
).filter(lambda s: not any(ord(c) < 0x20 for c in s))


@given(
    _line,
    st.integers(0, MAX_SIZE),
    st.binary(min_size=32, max_size=32),
    st.lists(_line, max_size=3),
)
def test_format_parse_round_trip(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint(format_checkpoint(checkpoint)) == checkpoint


_NOTE = sign_checkpoint(Checkpoint(ORIGIN, 123456, bytes(range(32)), ("ext",)), SIGNER).encode()


@settings(max_examples=500)
@given(st.integers(0, len(_NOTE) * 8 - 1))
def test_any_bit_flip_in_a_signed_checkpoint_is_rejected(bit: int) -> None:
    data = bytearray(_NOTE)
    data[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(KluisError):
        verify_checkpoint(bytes(data), SIGNER.verifier_key, origin=ORIGIN)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("0123456789abcXYZ+/=-\n \r")))
def test_parse_checkpoint_raises_only_kluis_errors(text: str) -> None:
    try:
        parse_checkpoint(text)
    except KluisError:
        pass
