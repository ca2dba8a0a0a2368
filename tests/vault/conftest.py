"""Fixtures for the vault tests: a cheap Argon2id cost (the real one takes ~0.5 s per unlock)
and a fresh profile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vault import KdfParams, Vault, create_profile, open_vault

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def kdf() -> KdfParams:
    """The cheapest Argon2id libsodium allows: the tests exercise the logic, not the cost."""
    return KdfParams(opslimit=1, memlimit=8192)


@pytest.fixture
def passphrase() -> str:
    return PASSPHRASE


@pytest.fixture
def profile(tmp_path: Path, kdf: KdfParams) -> Path:
    """A new, empty profile folder that ``passphrase`` opens."""
    root = tmp_path / "profile"
    create_profile(root, PASSPHRASE, _kdf=kdf)
    return root


@pytest.fixture
def vault(profile: Path) -> Iterator[Vault]:
    with open_vault(profile, PASSPHRASE) as opened:
        yield opened
