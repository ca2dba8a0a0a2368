"""Fixtures for driving ``kluis`` in-process (typer's CliRunner) and as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.app import app
from vault import KdfParams, create_profile
from vault import keyring as vault_keyring

PASSPHRASE = "correct horse battery staple"
FAST = KdfParams(opslimit=1, memlimit=8192)
KLUIS = Path(sys.executable).with_name("kluis")


@pytest.fixture(autouse=True)
def fast_argon2id(monkeypatch: pytest.MonkeyPatch) -> None:
    """New profiles and exports made in-process use the cheapest Argon2id (tests check the
    logic, bench/vault.py the cost). Subprocesses keep the real cost."""
    monkeypatch.setattr(vault_keyring, "PASSPHRASE_KDF", FAST)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "profile"


@pytest.fixture
def profile(home: Path) -> Path:
    create_profile(home, PASSPHRASE, _kdf=FAST)
    return home


Invoke = Callable[..., Result]


@pytest.fixture
def kluis(home: Path) -> Invoke:
    """Run ``kluis --lang en --home <home> ARGS`` in-process; env and input as given."""
    runner = CliRunner()

    def invoke(
        *args: str, env: dict[str, str] | None = None, input: str | None = None, lang: str = "en"
    ) -> Result:
        environment = {"KLUIS_PASSPHRASE": PASSPHRASE, **(env or {})}
        return runner.invoke(
            app, ["--lang", lang, "--home", str(home), *args], env=environment, input=input
        )

    return invoke


Run = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def kluis_process(home: Path) -> Run:
    """Run the installed ``kluis`` console script as a real process."""

    def run(
        *args: str, env: dict[str, str] | None = None, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KLUIS_")},
            "KLUIS_HOME": str(home),
            "KLUIS_LANG": "en",
            "KLUIS_PASSPHRASE": PASSPHRASE,
            **(env or {}),
        }
        return subprocess.run(
            [str(KLUIS), *args], env=environment, input=input, capture_output=True, timeout=120
        )

    return run
