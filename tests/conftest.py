"""Shared fixtures: where the published test vectors are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
