"""What every command needs from its surroundings: the profile folder and the passphrases.

This is the one place the CLI reads the environment; the core receives plain values:

- ``KLUIS_HOME``: the profile folder (``--home`` wins);
- ``KLUIS_PASSPHRASE``: the passphrase that opens the vault (for ``init`` and ``vault import``:
  the passphrase the new profile gets);
- ``KLUIS_NEW_PASSPHRASE``: the new passphrase for ``passphrase change`` and ``recover``;
- ``KLUIS_EXPORT_PASSPHRASE``: the passphrase of an export archive;
- ``KLUIS_RECOVERY_CODE``: the recovery code for ``recover``;
- ``KLUIS_TX_CODE``: the transaction code of a credential offer (``credential receive``).

Without the variable, kluis asks, without echo. Variables are for scripts and tests: on a
shared machine other users may see a process's environment, so typing is safer.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import platformdirs
import typer

from cli.lang import say
from vault import NoProfile, Schema, Vault, inspect_profile
from wallet import SCHEMAS as WALLET_SCHEMAS
from wallet import Wallet, open_wallet

# The components whose tables this kluis knows, besides the vault's own: every wallet
# component (consent log, holder keys, credentials, trust list, requests, ...), so every
# command opens, exports and imports the vault with them.
SCHEMAS: tuple[Schema, ...] = WALLET_SCHEMAS

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


def passphrase(
    *, confirm: bool = False, env: str = "KLUIS_PASSPHRASE", prompt: str | None = None
) -> str:
    """The passphrase from ``env`` (for scripts), else asked for without echo."""
    if value := os.environ.get(env):
        return value
    text = prompt or say(en="Passphrase", nl="Wachtwoord")
    value = typer.prompt(
        text,
        hide_input=True,
        confirmation_prompt=(
            say(en="Repeat to confirm", nl="Herhaal ter bevestiging") if confirm else False
        ),
    )
    return str(value)


def new_passphrase(*, env: str = "KLUIS_PASSPHRASE", prompt: str | None = None) -> str:
    """A passphrase the profile will get: from ``env``, else asked twice."""
    asked = prompt or say(en="New passphrase", nl="Nieuw wachtwoord")
    return passphrase(confirm=True, env=env, prompt=asked)


def export_passphrase(*, confirm: bool) -> str:
    """The export archive's passphrase: ``KLUIS_EXPORT_PASSPHRASE``, else asked."""
    return passphrase(
        confirm=confirm,
        env="KLUIS_EXPORT_PASSPHRASE",
        prompt=say(en="Export passphrase", nl="Exportwachtwoord"),
    )


def recovery_code() -> str:
    """The recovery code: ``KLUIS_RECOVERY_CODE``, else asked (without echo: it opens the vault)."""
    if value := os.environ.get("KLUIS_RECOVERY_CODE"):
        return value
    return str(typer.prompt(say(en="Recovery code", nl="Herstelcode"), hide_input=True))


def tx_code(prompt: str) -> str:
    """An offer's transaction code: ``KLUIS_TX_CODE`` (for scripts), else asked. Shown as it
    is typed: a one-time code from a letter or a text message, checked against the offer."""
    if value := os.environ.get("KLUIS_TX_CODE"):
        return value
    return str(typer.prompt(prompt)).strip()


def now() -> datetime:
    """The current time, in UTC: the one clock the commands use (tests replace it)."""
    return datetime.now(UTC)


def confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal; no is the default."""
    return bool(typer.confirm(question, default=False))


def wallet() -> Wallet:
    """The wallet at ``home()`` (the vault with the consent log and every component),
    opened with the passphrase. Close it (``with``)."""
    return open_wallet(existing_home(), passphrase())


def unlock() -> Vault:
    """The vault at ``home()``, opened with the passphrase and the wallet's components
    installed, so every item change reaches the consent log. Close it (``with``)."""
    return wallet().vault


def existing_home() -> Path:
    """``home()``, if it holds a profile. Raises NoProfile before anyone is asked for a
    passphrase that could open nothing."""
    root = home()
    if not inspect_profile(root).exists:
        raise NoProfile(path=str(root))
    return root
