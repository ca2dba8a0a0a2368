"""The leak check the log tests rely on finds a value however it is written, and not inside ids."""

from __future__ import annotations

import pytest
from values import shows_value


@pytest.mark.parametrize(
    "text",
    ['{"tax_year": 2026}', '{"tax_year": "2026"}', "[2026, 1]", "in 2026.", b'{"y":2026}'],
)
def test_a_value_on_its_own_is_found(text: str | bytes) -> None:
    assert shows_value(text, "2026")


@pytest.mark.parametrize(
    "text", ['{"id": "c9ee2026ab"}', '{"hash": "x-2026_Q"}', "20261", "12026", "no year"]
)
def test_a_value_inside_an_identifier_is_not(text: str) -> None:
    assert not shows_value(text, "2026")
