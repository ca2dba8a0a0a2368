"""Rendering results and errors, and the one mapping from error family to exit code."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

from cli.lang import lang, say
from vault import (
    Conflict,
    InvalidInput,
    KluisError,
    NotFound,
    NotPermitted,
    Unavailable,
    VerificationFailed,
    family_of,
)

# Documented in specs/errors.md ("Exit codes"); 2 is typer's own usage error.
EXIT_CODES: dict[type[KluisError], int] = {
    KluisError: 1,
    InvalidInput: 3,
    NotFound: 4,
    Conflict: 5,
    NotPermitted: 6,
    VerificationFailed: 7,
    Unavailable: 8,
}

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def exit_code(error: KluisError) -> int:
    return EXIT_CODES[family_of(error)]


def error_line(error: KluisError) -> str:
    """One line: what happened and what to do next, with the stable code to look up."""
    line = f"{say(en='Error', nl='Fout')} [{error.code}]: {error.message(lang())}"
    if error.detail:
        line += f" ({error.detail})"
    return line


def fail(error: KluisError) -> NoReturn:
    err_console.print(error_line(error), markup=False)
    raise typer.Exit(exit_code(error))


def emit_json(data: Any) -> None:
    """Machine-readable output for ``--json``: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
