"""cli.file: files are written whole or not at all, a changed-in-place file is locked for the
whole read-change-write, and key files are read strictly without leaking key material."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from jwcrypto.jwk import JWK

from cli import file
from vault import FileExists, KluisError, NoFile, NotAFile


def test_locked_serialises_read_change_write(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    threads, rounds = 8, 25

    def work() -> None:
        for _ in range(rounds):
            with file.locked(counter) as data:
                file.replace(counter, str(int(data) + 1).encode())

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counter.read_text() == str(threads * rounds)  # no update lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter"]


def test_a_failed_replace_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")

    def broken_disk(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_disk)
    with pytest.raises(OSError):
        file.replace(target, b"new" * 1000)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary left


def test_replace_keeps_the_permissions(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    target.chmod(0o640)
    file.replace(target, b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o640


def test_replace_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(NotAFile):
        file.replace(tmp_path, b"x")


def test_write_new_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    file.write_new(target, b"first")
    with pytest.raises(FileExists):
        file.write_new(target, b"second")
    assert target.read_bytes() == b"first"
    with pytest.raises(NoFile):
        file.write_new(tmp_path / "no-folder" / "doc.json", b"x")


def test_read_json_refuses_duplicates_and_oversized_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text('{"a": 1, "a": 2}')
    with pytest.raises(file.BadJson):
        file.read_json(doc)
    doc.write_text("[" + "0," * 100 + "0]")
    monkeypatch.setattr(file, "MAX_FILE_BYTES", 100)
    with pytest.raises(file.TooLarge):
        file.read_json(doc)


def test_key_files_are_read_strictly_without_leaking_the_key(tmp_path: Path) -> None:
    key = JWK.generate(kty="OKP", crv="Ed25519")
    private, public = tmp_path / "k.jwk", tmp_path / "k.pub.jwk"
    private.write_text(key.export_private())
    public.write_text(key.export_public())
    assert file.read_private_jwk(private).thumbprint() == key.thumbprint()
    assert not file.read_public_jwk(public).has_private
    secret = json.loads(key.export_private())["d"]
    for read, path in ((file.read_public_jwk, private), (file.read_private_jwk, public)):
        with pytest.raises(KluisError) as refused:
            read(path)
        assert refused.value.code == "jws.bad_key"
        assert secret not in str(refused.value) and secret not in refused.value.message("en")
