"""What every command needs from its surroundings: the profile folder and the passphrases.

This is the one place the CLI reads the environment (``KLUIS_HOME``, ``KLUIS_PASSPHRASE``,
``KLUIS_EXPORT_PASSPHRASE``); the core receives plain values.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import typer

from cli.lang import say

_home_option: Path | None = None


def set_home(path: Path | None) -> None:
    global _home_option
    _home_option = path


def home() -> Path:
    """The profile folder: ``--home``, else ``KLUIS_HOME``, else the platform's user data folder."""
    if _home_option is not None:
        return _home_option
    if env := os.environ.get("KLUIS_HOME"):
        return Path(env)
    return Path(platformdirs.user_data_dir("kluis", appauthor=False))


def passphrase(*, confirm: bool = False, env: str = "KLUIS_PASSPHRASE", prompt: str | None = None) -> str:
    """The passphrase from ``env`` (for scripts), else asked for without echo."""
    if value := os.environ.get(env):
        return value
    text = prompt or say(en="Passphrase", nl="Wachtwoord")
    value = typer.prompt(
        text,
        hide_input=True,
        confirmation_prompt=say(en="Repeat to confirm", nl="Herhaal ter bevestiging") if confirm else False,
    )
    return str(value)
