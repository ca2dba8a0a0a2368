"""Fixtures for the wallet's tests: the world of agencies (keys made once per session) and a
fresh citizen's vault per test. The world itself is ``tests/support/consent_world.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from consent_world import Citizen, World, make_world, new_citizen


@pytest.fixture(scope="session")
def world() -> World:
    return make_world()


@pytest.fixture
def citizen(tmp_path: Path, world: World) -> Iterator[Citizen]:
    opened = new_citizen(tmp_path / "citizen", world)
    try:
        yield opened
    finally:
        opened.wallet.close()
