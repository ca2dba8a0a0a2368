"""The data key's wrappings: recovery code format, key file format, and that any change to a
sealed key, its nonce, or the profile it belongs to makes it refuse to open."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import (
    BadKeyFile,
    BadRecoveryCode,
    KdfParams,
    WeakPassphrase,
    WrongPassphrase,
    WrongRecoveryCode,
)
from vault.keyring import (
    DataKey,
    KeyFile,
    RecoveryCode,
    WrappedKey,
    check_new_passphrase,
    format_key_file,
    open_with_passphrase,
    open_with_recovery,
    parse_key_file,
    parse_recovery_code,
    rewrap_passphrase,
    seal_key_file,
)

FAST = KdfParams(opslimit=1, memlimit=8192)


def _key_file(passphrase: str = "a good passphrase") -> tuple[KeyFile, DataKey, RecoveryCode]:
    data_key, code = DataKey.generate(), RecoveryCode.generate()
    key_file = seal_key_file(data_key, passphrase, code, profile_id="ab12", created="now", kdf=FAST)
    return key_file, data_key, code


def test_recovery_code_is_160_bits_in_8_groups_of_4() -> None:
    text = str(RecoveryCode.generate())
    groups = text.split("-")
    assert [len(g) for g in groups] == [4] * 8
    assert parse_recovery_code(text).raw == parse_recovery_code(text.lower().replace("-", " ")).raw


@given(st.binary(min_size=20, max_size=20))
def test_recovery_code_round_trips(raw: bytes) -> None:
    assert parse_recovery_code(str(RecoveryCode(raw))).raw == raw


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ABCD",
        "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-456",
        "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4561",
        "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-45678",
        "ÄBCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567",
    ],
    ids=["empty", "short", "31_chars", "digit_1_not_base32", "33_chars", "non_ascii"],
)
def test_malformed_recovery_code_is_refused(text: str) -> None:
    with pytest.raises(BadRecoveryCode):
        parse_recovery_code(text)


def test_repr_hides_the_keys() -> None:
    key_file, data_key, code = _key_file()
    assert data_key.raw.hex() not in repr(data_key)
    assert str(code).replace("-", "") not in repr(code)


def test_passphrase_and_recovery_code_both_open_the_same_key() -> None:
    key_file, data_key, code = _key_file()
    assert open_with_passphrase(key_file, "a good passphrase") == data_key
    assert open_with_recovery(key_file, code) == data_key


def test_wrong_passphrase_and_wrong_code_are_refused() -> None:
    key_file, _, _ = _key_file()
    with pytest.raises(WrongPassphrase):
        open_with_passphrase(key_file, "a good passphrasE")
    with pytest.raises(WrongRecoveryCode):
        open_with_recovery(key_file, RecoveryCode.generate())


def test_passphrase_is_compared_in_nfc() -> None:
    key_file, data_key, _ = _key_file("caf\u00e9 au lait")
    assert open_with_passphrase(key_file, "cafe\u0301 au lait") == data_key


def test_key_moved_to_another_profile_does_not_open() -> None:
    key_file, _, code = _key_file()
    moved = dataclasses.replace(key_file, profile_id="cd34")
    with pytest.raises(WrongPassphrase):
        open_with_passphrase(moved, "a good passphrase")
    with pytest.raises(WrongRecoveryCode):
        open_with_recovery(moved, code)


def test_slots_cannot_be_swapped() -> None:
    key_file, _, code = _key_file()
    swapped = dataclasses.replace(key_file, by_recovery=key_file.by_passphrase)
    with pytest.raises(WrongRecoveryCode):
        open_with_recovery(swapped, code)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_bit_flip_in_a_sealed_key_is_caught(data: st.DataObject) -> None:
    key_file, _, _ = _key_file()
    blob = bytearray(key_file.by_passphrase.nonce + key_file.by_passphrase.sealed)
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    nonce, sealed = bytes(blob[:24]), bytes(blob[24:])
    flipped = dataclasses.replace(key_file, by_passphrase=WrappedKey(nonce, sealed))
    with pytest.raises(WrongPassphrase):
        open_with_passphrase(flipped, "a good passphrase")


def test_rewrap_keeps_the_recovery_slot_and_changes_the_salt() -> None:
    key_file, data_key, code = _key_file()
    rewrapped = rewrap_passphrase(key_file, data_key, "another passphrase", kdf=FAST)
    assert rewrapped.by_recovery == key_file.by_recovery
    assert rewrapped.salt != key_file.salt
    assert open_with_passphrase(rewrapped, "another passphrase") == data_key
    assert open_with_recovery(rewrapped, code) == data_key
    with pytest.raises(WrongPassphrase):
        open_with_passphrase(rewrapped, "a good passphrase")


def test_key_file_round_trips_and_records_the_argon2id_cost() -> None:
    key_file, _, _ = _key_file()
    data = format_key_file(key_file)
    assert parse_key_file(data) == key_file
    document = json.loads(data)
    assert document["passphrase"]["opslimit"] == FAST.opslimit
    assert document["passphrase"]["memlimit"] == FAST.memlimit


def _mutations() -> dict[str, object]:
    key_file, _, _ = _key_file()
    good = json.loads(format_key_file(key_file))

    def changed(path: tuple[str, ...], value: object) -> bytes:
        document = json.loads(json.dumps(good))
        target = document
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        return json.dumps(document).encode()

    return {
        "not_json": b"\x00\xff garbage",
        "json_list": b"[]",
        "other_format": changed(("format",), "other"),
        "version_2": changed(("version",), 2),
        "version_bool": changed(("version",), True),
        "opslimit_zero": changed(("passphrase", "opslimit"), 0),
        "memlimit_huge": changed(("passphrase", "memlimit"), 1 << 40),
        "memlimit_string": changed(("passphrase", "memlimit"), "8192"),
        "salt_not_base64": changed(("passphrase", "salt"), "***"),
        "salt_not_ascii": changed(("passphrase", "salt"), "AAAAAAAAAAAAAAAAAAAAAAé="),
        "salt_short": changed(("passphrase", "salt"), "AAAA"),
        "nonce_missing": changed(("recovery", "nonce"), None),
        "kdf_unknown": changed(("passphrase", "kdf"), "scrypt"),
        "profile_with_slash": changed(("profile",), "../x"),
    }


@pytest.mark.parametrize("tamper", sorted(_mutations()))
def test_damaged_key_file_is_refused(tamper: str) -> None:
    with pytest.raises(BadKeyFile):
        parse_key_file(_mutations()[tamper])  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_key_file_parser_raises_only_bad_key_file(data: bytes) -> None:
    with pytest.raises(BadKeyFile):
        parse_key_file(data)


@pytest.mark.parametrize("passphrase", ["", "short", "1234567", "x" * 1025])
def test_weak_new_passphrase_is_refused(passphrase: str) -> None:
    with pytest.raises(WeakPassphrase):
        check_new_passphrase(passphrase)
