"""Creating, opening, re-keying and recovering a profile, and every way that can fail
without changing anything."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

import pytest

from vault import (
    BadKeyFile,
    BadRecoveryCode,
    Corrupt,
    KdfParams,
    NoProfile,
    ProfileExists,
    WeakPassphrase,
    WrongPassphrase,
    WrongRecoveryCode,
    change_passphrase,
    create_profile,
    inspect_profile,
    open_vault,
    recover,
)
from vault.profile import BACKOFF_CAP, backoff_delay


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_profile_is_owner_only(tmp_path: Path, kdf: KdfParams, passphrase: str) -> None:
    root = tmp_path / "deep" / "profile"
    create_profile(root, passphrase, _kdf=kdf)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    with open_vault(root, passphrase) as vault:
        vault.put_attribute("a", "b", source="test")
        files = [p for p in root.iterdir()]
        assert {p.name for p in files} >= {
            "key.json",
            "vault.db",
            "vault.db-wal",
            "vault.db-shm",
            "lock",
        }
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {
            p.name: 0o600 for p in files
        }
    assert [p.name for p in tmp_path.joinpath("deep").iterdir()] == ["profile"]  # no staging left


def test_init_into_an_empty_folder_works(tmp_path: Path, kdf: KdfParams, passphrase: str) -> None:
    create_profile(tmp_path, passphrase, _kdf=kdf)
    assert (tmp_path / "key.json").is_file()


def test_init_over_a_profile_changes_nothing(
    profile: Path, kdf: KdfParams, passphrase: str
) -> None:
    before = _snapshot(profile)
    with pytest.raises(ProfileExists):
        create_profile(profile, "another passphrase", _kdf=kdf)
    assert _snapshot(profile) == before
    with open_vault(profile, passphrase):
        pass


def test_init_into_a_folder_with_files_changes_nothing(
    tmp_path: Path, kdf: KdfParams, passphrase: str
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ProfileExists):
        create_profile(tmp_path, passphrase, _kdf=kdf)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_init_refuses_a_weak_passphrase(tmp_path: Path, kdf: KdfParams) -> None:
    with pytest.raises(WeakPassphrase):
        create_profile(tmp_path / "p", "short", _kdf=kdf)
    assert not (tmp_path / "p").exists()


def test_missing_profile(tmp_path: Path, passphrase: str) -> None:
    with pytest.raises(NoProfile):
        open_vault(tmp_path / "nothing", passphrase)
    assert not (tmp_path / "nothing").exists()


def test_wrong_passphrase_opens_nothing_and_releases_the_lock(
    profile: Path, passphrase: str
) -> None:
    with pytest.raises(WrongPassphrase):
        open_vault(profile, "not the passphrase", sleep=lambda _: None)
    with open_vault(profile, passphrase, busy_timeout=0) as vault:  # the lock was released
        assert vault.count() == 0


def test_backoff_grows_and_resets_after_success(profile: Path, passphrase: str) -> None:
    waits: list[float] = []
    for _ in range(4):
        with pytest.raises(WrongPassphrase):
            open_vault(profile, "not the passphrase", sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0]  # the first try waits for nothing
    assert inspect_profile(profile).failed_attempts == 4
    with open_vault(profile, passphrase, sleep=waits.append):
        pass
    assert waits == [0.5, 1.0, 2.0, 4.0]  # the right passphrase waits out the back-off too
    assert inspect_profile(profile).failed_attempts == 0
    with open_vault(profile, passphrase, sleep=waits.append):
        pass
    assert waits == [0.5, 1.0, 2.0, 4.0]


def test_backoff_is_capped() -> None:
    assert backoff_delay(0) == 0
    assert backoff_delay(10_000) == BACKOFF_CAP


def test_passphrase_never_reaches_a_file_or_log(
    tmp_path: Path, kdf: KdfParams, caplog: pytest.LogCaptureFixture
) -> None:
    secret, wrong, new = "Zebra-Quartz-7731-pass", "Wrong-Okapi-5519-pass", "Fresh-Ibis-4420-pass"
    root = tmp_path / "p"
    caplog.set_level(logging.DEBUG)
    create_profile(root, secret, _kdf=kdf)
    for _ in range(2):
        with pytest.raises(WrongPassphrase):
            open_vault(root, wrong, sleep=lambda _: None)
    with open_vault(root, secret) as vault:
        vault.put_attribute("x", "y", source="test")
        blobs = [p.read_bytes() for p in root.rglob("*") if p.is_file()]
    change_passphrase(root, secret, new, _kdf=kdf)
    blobs += [p.read_bytes() for p in root.rglob("*") if p.is_file()]
    assert caplog.records  # the failures were logged ...
    text = "\n".join(r.getMessage() for r in caplog.records)
    for word in (secret, wrong, new):  # ... without any passphrase
        assert word not in text
        for encoded in (word.encode(), word.encode("utf-16-le")):
            assert all(encoded not in blob for blob in blobs)


def test_change_passphrase_rewraps_without_touching_the_database(
    profile: Path, kdf: KdfParams, passphrase: str
) -> None:
    with open_vault(profile, passphrase) as vault:
        vault.put_attribute("bsn", "123456782", source="test")
    database = (profile / "vault.db").read_bytes()
    change_passphrase(profile, passphrase, "a new passphrase", _kdf=kdf)
    assert (profile / "vault.db").read_bytes() == database
    with pytest.raises(WrongPassphrase):
        open_vault(profile, passphrase, sleep=lambda _: None)
    with open_vault(profile, "a new passphrase") as vault:
        assert vault.get("bsn").text == "123456782"


def test_change_passphrase_with_the_wrong_old_one_changes_nothing(
    profile: Path, kdf: KdfParams, passphrase: str
) -> None:
    key = (profile / "key.json").read_bytes()
    with pytest.raises(WrongPassphrase):
        change_passphrase(
            profile, "not the passphrase", "a new passphrase", sleep=lambda _: None, _kdf=kdf
        )
    assert (profile / "key.json").read_bytes() == key


def test_change_passphrase_refuses_a_weak_new_one(
    profile: Path, kdf: KdfParams, passphrase: str
) -> None:
    key = (profile / "key.json").read_bytes()
    with pytest.raises(WeakPassphrase):
        change_passphrase(profile, passphrase, "short", _kdf=kdf)
    assert (profile / "key.json").read_bytes() == key


def test_recover_sets_a_new_passphrase_and_keeps_the_data(tmp_path: Path, kdf: KdfParams) -> None:
    root = tmp_path / "p"
    code = create_profile(root, "forgotten passphrase", _kdf=kdf)
    with open_vault(root, "forgotten passphrase") as vault:
        vault.put_note("letter", "Dear ...", source="test")
        for _ in range(3):
            vault.put_attribute("x", "y", source="test")
    with pytest.raises(WrongPassphrase):
        open_vault(root, "what was it again", sleep=lambda _: None)
    database = (root / "vault.db").read_bytes()
    recover(root, str(code).lower(), "remembered now", _kdf=kdf)
    assert (root / "vault.db").read_bytes() == database
    assert inspect_profile(root).failed_attempts == 0
    with open_vault(
        root, "remembered now", sleep=lambda _: pytest.fail("no back-off after recovery")
    ) as vault:
        assert vault.get("letter").text == "Dear ..."
    recover(root, code, "and once more", _kdf=kdf)  # the code stays valid


@pytest.mark.parametrize(
    "code", ["AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA", "not a code"], ids=["wrong", "malformed"]
)
def test_recover_with_a_bad_code_changes_nothing(profile: Path, kdf: KdfParams, code: str) -> None:
    key = (profile / "key.json").read_bytes()
    with pytest.raises((WrongRecoveryCode, BadRecoveryCode)) as caught:
        recover(profile, code, "a new passphrase", _kdf=kdf)
    assert type(caught.value) is (WrongRecoveryCode if code.startswith("A") else BadRecoveryCode)
    assert (profile / "key.json").read_bytes() == key


def _cut(path: Path, size: int) -> None:
    os.truncate(path, size)


@pytest.mark.parametrize(
    "damage",
    ["truncated_half", "truncated_to_one_page", "empty", "missing", "byte_flipped", "garbage"],
)
def test_damaged_database_is_reported_and_left_alone(
    profile: Path, passphrase: str, damage: str
) -> None:
    with open_vault(profile, passphrase) as vault:
        for i in range(300):
            vault.put_attribute(f"item {i}", "value " * 50, source="test")
    database = profile / "vault.db"
    size = database.stat().st_size
    if damage == "truncated_half":
        _cut(database, size // 2)
    elif damage == "truncated_to_one_page":
        _cut(database, 4096)
    elif damage == "empty":
        _cut(database, 0)
    elif damage == "missing":
        database.unlink()
    elif damage == "byte_flipped":
        data = bytearray(database.read_bytes())
        data[100] ^= 0x01
        database.write_bytes(bytes(data))
    else:
        database.write_bytes(os.urandom(size))
    before = _snapshot(profile)
    with pytest.raises(Corrupt):
        with open_vault(profile, passphrase) as vault:
            vault.items()
    assert _snapshot(profile) == before


def test_damage_deep_inside_is_found_by_the_integrity_check(profile: Path, passphrase: str) -> None:
    with open_vault(profile, passphrase) as vault:
        for i in range(300):
            vault.put_attribute(f"item {i}", "value " * 50, source="test")
    database = profile / "vault.db"
    data = bytearray(database.read_bytes())
    data[len(data) - 3000] ^= 0x80
    database.write_bytes(bytes(data))
    with open_vault(profile, passphrase) as vault:
        with pytest.raises(Corrupt):
            vault.items()
        assert vault.check_integrity() != []


@pytest.mark.parametrize("damage", ["garbage", "empty"])
def test_damaged_key_file(profile: Path, passphrase: str, damage: str) -> None:
    (profile / "key.json").write_bytes(b"" if damage == "empty" else b"{not json")
    with pytest.raises(BadKeyFile):
        open_vault(profile, passphrase)
    with pytest.raises(BadKeyFile):
        inspect_profile(profile)


def test_inspect_without_passphrase(
    profile: Path, kdf: KdfParams, passphrase: str, tmp_path: Path
) -> None:
    status = inspect_profile(profile)
    assert status.exists and status.kdf == kdf and not status.in_use
    assert status.database_bytes and status.database_bytes > 0
    with open_vault(profile, passphrase):
        assert inspect_profile(profile).in_use
    assert not inspect_profile(tmp_path / "none").exists
