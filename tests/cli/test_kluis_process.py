"""The installed ``kluis`` console script as a real process: output, one-line errors, and the
exit code of each error family (specs/errors.md)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

Run = Callable[..., subprocess.CompletedProcess[bytes]]
Invoke = Callable[..., Result]


def _line(result: subprocess.CompletedProcess[bytes], code: str) -> str:
    text = result.stderr.decode()
    assert text.count("\n") == 1 and text.startswith(f"Error [{code}]: "), text
    return text


def test_help(kluis_process: Run) -> None:
    result = kluis_process("--help")
    assert result.returncode == 0
    for command in ("init", "status", "vault", "passphrase", "recover", "demo"):
        assert command in result.stdout.decode()


def test_init_with_the_real_argon2id_cost_then_use(kluis_process: Run, home: Path) -> None:
    created = kluis_process("init", "--json")
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(
        r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}", json.loads(created.stdout)["recovery_code"]
    )
    status = json.loads(kluis_process("status", "--json").stdout)
    assert status["argon2id"] == {"opslimit": 3, "memlimit": 256 << 20}
    assert kluis_process("vault", "put", "bsn", "--value", "123456782").returncode == 0
    assert kluis_process("vault", "get", "bsn").stdout == b"123456782\n"


def test_documents_through_pipes(kluis_process: Run, profile: Path, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096
    source = tmp_path / "scan.bin"
    source.write_bytes(payload)
    assert kluis_process("vault", "put", "scan", "--file", str(source)).returncode == 0
    got = kluis_process("vault", "get", "scan")  # stdout is a pipe here
    assert got.returncode == 0 and got.stdout == payload
    listing = json.loads(kluis_process("vault", "list", "--json").stdout)
    assert [(i["name"], i["size"]) for i in listing] == [("scan", len(payload))]


@pytest.mark.parametrize(
    ("family", "exit_code"),
    [
        ("usage", 2),
        ("InvalidInput", 3),
        ("NotFound", 4),
        ("Conflict", 5),
        ("NotPermitted", 6),
        ("VerificationFailed", 7),
    ],
)
def test_exit_code_per_family(
    kluis_process: Run, profile: Path, tmp_path: Path, family: str, exit_code: int
) -> None:
    if family == "usage":
        result = kluis_process("vault", "put", "x")
    elif family == "InvalidInput":
        result = kluis_process("vault", "put", "a/b", "--value", "x")
        _line(result, "vault.bad_name")
    elif family == "NotFound":
        result = kluis_process("vault", "get", "nothing")
        _line(result, "vault.no_such_item")
    elif family == "Conflict":
        result = kluis_process("init")
        _line(result, "vault.profile_exists")
    elif family == "NotPermitted":
        result = kluis_process("vault", "list", env={"KLUIS_PASSPHRASE": "not the passphrase"})
        _line(result, "vault.wrong_passphrase")
    else:
        (profile / "vault.db").write_bytes(b"\x00" * 8192)
        result = kluis_process("vault", "list")
        _line(result, "vault.corrupt")
    assert result.returncode == exit_code


def test_dutch_error_line(kluis_process: Run, home: Path) -> None:
    result = kluis_process("vault", "list", env={"KLUIS_LANG": "nl"})
    assert result.returncode == 4
    assert result.stderr.decode().startswith(
        "Fout [vault.no_profile]: Er is geen kluis-profiel in "
    )
