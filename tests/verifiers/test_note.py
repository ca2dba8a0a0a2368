"""C2SP signed notes: the C2SP and golang.org/x/mod vectors, an independent checker, and
tampering."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import KluisError
from verifiers.note import (
    BadKeyName,
    BadSignature,
    BadSignerKey,
    BadText,
    BadVerifierKey,
    MalformedNote,
    Note,
    NoteSignature,
    Signer,
    UnverifiedNote,
    VerifierKey,
    format_note,
    format_signer_key,
    format_verifier_key,
    key_id,
    open_note,
    parse_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)


@pytest.fixture(scope="module")
def golden(vectors: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (vectors / "signed-note/signed_note_vectors.json").read_text()
    )
    return data


def _note(golden: dict[str, Any], note_id: str) -> dict[str, Any]:
    return next(n for n in golden["notes"] if n["id"] == note_id)


def _keys(texts: list[str]) -> list[VerifierKey]:
    return [parse_verifier_key(t) for t in texts]


# --- an independent checker, written from the C2SP text alone (PyNaCl, not our module) ---------


def c2sp_check(note: str, vkey: str) -> str:
    """Return the text of ``note`` if the key ``vkey`` signed it, else raise."""
    name, hex_id, b64 = vkey.split("+", 2)
    key = base64.b64decode(b64)
    assert key[0] == 1 and hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex() == hex_id
    split = note.rindex("\n\n")
    text, lines = note[: split + 1], note[split + 2 :].splitlines()
    for line in lines:
        signer, sig = line.removeprefix("\u2014 ").split(" ")
        raw = base64.b64decode(sig)
        if signer == name and raw[:4].hex() == hex_id:
            nacl.signing.VerifyKey(key[1:]).verify(text.encode(), raw[4:])
            return text
    raise LookupError("no signature by this key")


# --- keys ----------------------------------------------------------------------------------


def test_verifier_keys_parse_and_key_ids_recompute(golden: dict[str, Any]) -> None:
    for case in golden["keys"]:
        key = parse_verifier_key(case["vkey"])
        assert key.name == case["name"]
        assert f"{key.key_id:08x}" == case["key_id_hex"]
        assert key.public_key.hex() == case["public_key_hex"]
        assert key_id(key.name, 1, key.public_key) == int(case["key_id_hex"], 16)
        assert format_verifier_key(key) == case["vkey"]


def test_bad_verifier_keys_are_rejected(golden: dict[str, Any]) -> None:
    for case in golden["bad_verifier_keys"]:
        with pytest.raises(BadVerifierKey):
            parse_verifier_key(case["vkey"])


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a3",  # two parts
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # id off by one
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # uppercase id
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # short id
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space in name
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # empty name
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # not base64
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",  # non-canonical
        "PeterNeumann+c74f20a3+",  # empty key
    ],
)
def test_tampered_verifier_key_is_rejected(vkey: str) -> None:
    with pytest.raises(BadVerifierKey):
        parse_verifier_key(vkey)


def test_signing_keys_derive_the_published_verifier_keys(golden: dict[str, Any]) -> None:
    peter = next(k for k in golden["keys"] if k["name"] == "PeterNeumann")
    signer = parse_signer_key(peter["skey"])
    assert format_verifier_key(signer.verifier_key) == peter["vkey"]
    assert format_signer_key(signer) == peter["skey"]
    enoch = next(k for k in golden["keys"] if k["name"] == "EnochRoot")
    assert format_verifier_key(_enoch(golden).verifier_key) == enoch["vkey"]


def _enoch(golden: dict[str, Any]) -> Signer:
    seed = bytes.fromhex(
        next(k for k in golden["keys"] if k["name"] == "EnochRoot")["ed25519_seed_hex"]
    )
    encoded = base64.b64encode(b"\x01" + seed).decode()
    return parse_signer_key(f"PRIVATE+KEY+EnochRoot+af0cfe78+{encoded}")


def test_signer_key_round_trips_and_never_shows_in_repr() -> None:
    signer = Signer.generate("vault.example/audit")
    text = format_signer_key(signer)
    again = parse_signer_key(text)
    assert again.verifier_key == signer.verifier_key
    secret = text.split("+", 4)[4]  # PRIVATE+KEY+name+id+base64: the base64 may hold '+'
    assert len(secret) > 40
    assert secret not in repr(signer) and secret not in repr(again)
    assert "vault.example/audit" in repr(signer)


@pytest.mark.parametrize(
    "skey",
    [
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",  # id
        "PUBLIC+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",  # type
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKD",  # short
        "PRIVATE+KEY+PeterNeumann",
    ],
)
def test_tampered_signer_key_is_rejected_without_detail(skey: str) -> None:
    with pytest.raises(BadSignerKey) as caught:
        parse_signer_key(skey)
    assert caught.value.detail == ""


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0x"])
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(BadKeyName):
        Signer.generate(name)


# --- notes -------------------------------------------------------------------------------------


def test_published_notes_open_with_their_keys(golden: dict[str, Any]) -> None:
    for case in golden["notes"]:
        if not case["verifier_keys"]:
            continue
        opened = open_note(case["note"], _keys(case["verifier_keys"]))
        assert opened.text == case["text"]
        assert opened.signed_by == tuple(s["name"] for s in case["signatures"])
        for vkey in case["verifier_keys"]:
            assert c2sp_check(case["note"], vkey) == case["text"]


def test_published_notes_without_keys_parse_but_do_not_open(golden: dict[str, Any]) -> None:
    for case in golden["notes"]:
        parsed = parse_note(case["note"])
        assert parsed.text == case["text"]
        got = [(s.name, f"{s.key_id:08x}") for s in parsed.signatures]
        assert got == [(s["name"], s["key_id_hex"]) for s in case["signatures"]]
        for sig, want in zip(parsed.signatures, case["signatures"], strict=True):
            assert (
                base64.b64encode(sig.key_id.to_bytes(4, "big") + sig.signature).decode()
                == (want["signature_b64"])
            )
        if not case["verifier_keys"]:
            with pytest.raises(UnverifiedNote):
                open_note(case["note"], [])
    quasimodo = parse_note(_note(golden, "c2sp-quasimodo")["note"])
    assert "\n\n" in quasimodo.text and len(quasimodo.signatures) == 1
    witness = parse_note(_note(golden, "c2sp-cosigned-checkpoint")["note"]).signatures[1]
    cosig = _note(golden, "c2sp-cosigned-checkpoint")["signatures"][1]["cosignature_v1"]
    assert int.from_bytes(witness.signature[:8], "big") == cosig["timestamp"]
    assert witness.signature[8:].hex() == cosig["ed25519_signature_hex"]


def test_go_signatures_are_reproduced_byte_for_byte(golden: dict[str, Any]) -> None:
    peter_case = _note(golden, "go-peter")
    peter = parse_signer_key(peter_case["deterministic_from_skey"])
    assert sign_note(peter_case["text"], peter) == peter_case["note"]
    both = _note(golden, "go-peter-enoch")
    assert sign_note(both["text"], [peter, _enoch(golden)]) == both["note"]


def test_open_cases(golden: dict[str, Any]) -> None:
    peter_note = _note(golden, "go-peter")
    for case in golden["open_cases"]:
        keys = _keys(case["verifier_keys"])
        if "note_construction" in case:
            line = peter_note["note"][len(peter_note["text"]) + 1 :]
            note = peter_note["text"] + "\n" + 101 * line
        else:
            note = case["note"]
        expect = case["expect"]
        if expect == "ok":
            opened = open_note(note, keys)
            assert list(opened.signed_by) == case["verified"]
            assert [s.name for s in opened.unverified] == case["unverified"]
        elif expect == "error: no verifiable signatures":
            with pytest.raises(UnverifiedNote):
                open_note(note, keys)
        elif expect == "error: malformed note":
            with pytest.raises(MalformedNote):
                open_note(note, keys)
        elif expect.startswith("error: invalid signature"):
            with pytest.raises(BadSignature):
                open_note(note, keys)
        else:
            pytest.fail(f"unknown expectation {expect!r}")


def test_malformed_notes_are_rejected(golden: dict[str, Any]) -> None:
    for case in golden["malformed_notes"]:
        note = bytes.fromhex(case["note_hex"]) if "note_hex" in case else case["note"]
        with pytest.raises(MalformedNote):
            open_note(note, _keys(case["verifier_keys"]))


def test_our_note_passes_the_independent_checker() -> None:
    signer = Signer.generate("vault.example/audit")
    text = "Twee regels tekst,\nmet één lege regel:\n\nen een einde.\n"
    note = sign_note(text, signer)
    assert c2sp_check(note, format_verifier_key(signer.verifier_key)) == text
    with pytest.raises(nacl.exceptions.BadSignatureError):
        c2sp_check(note.replace("einde", "eind"), format_verifier_key(signer.verifier_key))


def test_sixteen_and_a_hundred_signatures_are_accepted() -> None:
    signers = [Signer.generate(f"witness.example/{i}") for i in range(100)]
    note = sign_note("many\n", signers)
    assert len(open_note(note, [signers[5].verifier_key]).unverified) == 99
    assert len(open_note(note, [s.verifier_key for s in signers[:16]]).verified) == 16


def test_a_key_sharing_only_the_name_is_ignored() -> None:
    ours, impostor = Signer.generate("log.example"), Signer.generate("log.example")
    opened = open_note(sign_note("hello\n", [ours, impostor]), [ours.verifier_key])
    assert opened.signed_by == ("log.example",)
    assert [s.key_id for s in opened.unverified] == [impostor.key_id]


def test_known_key_with_a_bad_signature_rejects_the_note_even_beside_a_good_one() -> None:
    first, second = Signer.generate("a.example"), Signer.generate("b.example")
    note = sign_note("hello\n", [first, second])
    forged = note.replace(
        sign_note("hello\n", second).split("\n")[-2], sign_note("bye\n", second).split("\n")[-2]
    )
    with pytest.raises(BadSignature):
        open_note(forged, [first.verifier_key, second.verifier_key])


@pytest.mark.parametrize("cut", ["truncated", "extended", "zeroed"])
def test_known_key_signature_of_the_wrong_shape_is_a_bad_signature(cut: str) -> None:
    signer = Signer.generate("k.example")
    parsed = parse_note(sign_note("hi\n", signer))
    sig = parsed.signatures[0]
    raw = {"truncated": sig.signature[:10], "extended": sig.signature + b"x", "zeroed": bytes(64)}
    bad = format_note(Note(parsed.text, (NoteSignature(sig.name, sig.key_id, raw[cut]),)))
    with pytest.raises(BadSignature):
        open_note(bad, [signer.verifier_key])


def test_two_different_known_keys_with_one_name_and_id_are_refused() -> None:
    one, two = Signer.generate("x"), Signer.generate("x")
    clash = VerifierKey("x", one.key_id, two.verifier_key.public_key)
    with pytest.raises(BadVerifierKey):
        open_note(sign_note("hi\n", one), [one.verifier_key, clash])


@pytest.mark.parametrize("text", ["", "no newline", "bell\x07\n", "cr\r\n", "lone \ud800\n"])
def test_unsignable_text_is_refused(text: str) -> None:
    with pytest.raises(BadText):
        sign_note(text, Signer.generate("k"))


def test_signature_with_noncanonical_base64_is_malformed(golden: dict[str, Any]) -> None:
    note = _note(golden, "go-peter")["note"]
    # The last base64 character before '=' carries 2 unused bits: another spelling, same bytes.
    tampered = note.replace("JnAM=\n", "JnAN=\n")
    with pytest.raises(MalformedNote):
        parse_note(tampered)


# --- hostile input -----------------------------------------------------------------------------

_SIGNER = Signer.generate("vault.example/audit")
_NOTE = sign_note(
    "vault.example/audit\n42\nq83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=\n", _SIGNER
)


@settings(max_examples=500)
@given(st.integers(0, len(_NOTE.encode()) * 8 - 1))
def test_any_bit_flip_in_a_signed_note_is_rejected(bit: int) -> None:
    data = bytearray(_NOTE.encode())
    data[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(KluisError):
        open_note(bytes(data), [_SIGNER.verifier_key])


@settings(max_examples=300)
@given(st.one_of(st.text(), st.binary()))
def test_parse_note_raises_only_kluis_errors(note: str | bytes) -> None:
    try:
        parse_note(note)
    except KluisError:
        pass


@settings(max_examples=300)
@given(st.data())
def test_mutated_notes_raise_only_kluis_errors(data: st.DataObject) -> None:
    raw = bytearray(_NOTE.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.integers(0, 255))
        if op == "insert":
            raw.insert(at, byte)
        elif at < len(raw):
            if op == "delete":
                del raw[at]
            else:
                raw[at] = byte
    try:
        open_note(bytes(raw), [_SIGNER.verifier_key])
    except KluisError:
        pass


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("abc+/=0123456789 ABCDEF\u2014\n")))
def test_key_parsers_raise_only_kluis_errors(text: str) -> None:
    for parse in (parse_verifier_key, parse_signer_key):
        try:
            parse(text)
        except KluisError:
            pass
