"""The wallet: the vault opened with the wallet's components installed.

``open_wallet`` is the one way the shells open a citizen's vault for anything that may
change it: it migrates every component's tables (``SCHEMAS``) and installs the consent log,
so no vault change can happen without its log entry. Later components (requests, grants,
sessions) add their ``Schema`` to ``SCHEMAS`` and an attribute to ``Wallet``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from vault import DEFAULT_BUSY_TIMEOUT, RecoveryCode, Schema, Vault, create_profile, open_vault
from wallet import consent_log
from wallet.consent_log import ConsentLog

SCHEMAS: tuple[Schema, ...] = (consent_log.SCHEMA,)
"""Every wallet component's tables, in migration order."""


class Wallet:
    """An open vault with the consent log installed. Close it (or use ``with``)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.log = ConsentLog(vault)
        self.log.install()

    def close(self) -> None:
        self.vault.close()

    def __enter__(self) -> Wallet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_wallet(
    root: Path, passphrase: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> Wallet:
    """The wallet at ``root``: its vault opened with ``SCHEMAS``, the consent log installed.

    Raises what ``vault.open_vault`` raises (NoProfile, Busy, WrongPassphrase, Corrupt, ...).
    """
    vault = open_vault(root, passphrase, schemas=SCHEMAS, busy_timeout=busy_timeout)
    try:
        return Wallet(vault)
    except BaseException:
        vault.close()
        raise


def create_wallet(root: Path, passphrase: str, *, now: datetime | None = None) -> RecoveryCode:
    """A new profile at ``root`` with every wallet component's tables; its recovery code.

    Raises what ``vault.create_profile`` raises (ProfileExists, WeakPassphrase).
    """
    return create_profile(root, passphrase, schemas=SCHEMAS, now=now)
