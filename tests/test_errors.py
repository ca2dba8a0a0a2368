"""The error catalogue: every concrete error has a unique code listed in specs/errors.md, and a
message in Dutch and English; the list has no code that the code does not raise."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

from vault import FAMILIES, KluisError

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


def _import_everything() -> None:
    for package in ("vault", "verifiers", "wallet", "cli", "server"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)


def _concrete_errors() -> list[type[KluisError]]:
    _import_everything()
    seen: list[type[KluisError]] = []
    stack = list(KluisError.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__dict__.get("code"):
            seen.append(cls)
    return seen


def _documented_codes() -> dict[str, str]:
    """code -> family name, from the tables in specs/errors.md."""
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \|", (ROOT / "specs/errors.md").read_text(), re.M)
    return dict(rows)


def test_codes_are_unique_and_well_formed() -> None:
    codes = [cls.code for cls in _concrete_errors()]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert [c for c in codes if not CODE.match(c)] == []


def test_list_and_code_agree() -> None:
    in_code = {cls.code: next(f.__name__ for f in FAMILIES if issubclass(cls, f)) for cls in _concrete_errors()}
    assert _documented_codes() == in_code


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_every_error_speaks_both_languages(lang: str) -> None:
    for cls in _concrete_errors():
        text = cls.nl if lang == "nl" else cls.en
        assert text.strip(), f"{cls.code} has no {lang} message"
        assert text.rstrip().endswith((".", "?", "!")), f"{cls.code}: end the {lang} sentence"


def test_every_concrete_error_has_a_family() -> None:
    assert [c.code for c in _concrete_errors() if not issubclass(c, FAMILIES)] == []


def test_messages_fill_in_fields() -> None:
    class Example(KluisError):
        code = ""  # not registered: an example only
        en = "No item called '{name}'."
        nl = "Er is geen gegeven met de naam '{name}'."

    assert Example(name="bsn").message("en") == "No item called 'bsn'."
    assert Example().message("nl") == "Er is geen gegeven met de naam '{name}'."
