"""Shared fixtures: where the published test vectors are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests check behaviour, never time: no per-example deadline, so a busy CI machine
# cannot fail a test that is right. A failing example is printed so it can be replayed.
settings.register_profile("kluis", deadline=None, print_blob=True)
settings.load_profile("kluis")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The published vectors folder (``KLUIS_VECTORS``, default ``../shared/vectors``).

    Missing vectors fail the run: a vector test that silently skips proves nothing.
    """
    path = Path(os.environ.get("KLUIS_VECTORS", ROOT.parent / "shared" / "vectors"))
    if not (path / "README.md").is_file():
        pytest.fail(f"test vectors not found at {path}; set KLUIS_VECTORS")
    return path
