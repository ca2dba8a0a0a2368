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
from verifiers.verifier import IssuerKeys, StatusChecker
from wallet import consent_log
from wallet.consent import REQUESTS_SCHEMA, Consent
from wallet.consent_log import ConsentLog
from wallet.credential import CREDENTIAL_SCHEMA, StoredCredential, receive_credential
from wallet.grant import GRANTS_SCHEMA, Grants
from wallet.holder_key import HOLDER_KEY_SCHEMA
from wallet.inbox import INBOX_SCHEMA
from wallet.relay_account import RELAY_SCHEMA
from wallet.trust import TRUST_SCHEMA, trust_list

SCHEMAS: tuple[Schema, ...] = (
    consent_log.SCHEMA,
    HOLDER_KEY_SCHEMA,
    CREDENTIAL_SCHEMA,
    TRUST_SCHEMA,
    REQUESTS_SCHEMA,
    RELAY_SCHEMA,
    INBOX_SCHEMA,
    GRANTS_SCHEMA,
)
"""Every wallet component's tables, in migration order."""


class Wallet:
    """An open vault with the consent log installed. Close it (or use ``with``)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.log = ConsentLog(vault)
        self.log.install()
        self.consent = Consent(vault, self.log)
        """Requests, decisions and releases (``wallet.consent``)."""
        self.grants = Grants(vault, self.log, self.consent)
        """Access grants (``wallet.grant``); changes to granted vault items are queued."""
        self.grants.install()

    def receive_credential(
        self,
        token: object,
        *,
        now: datetime,
        issuer_keys: IssuerKeys | None = None,
        status_checker: StatusChecker | None = None,
    ) -> StoredCredential:
        """Verify and keep an issued credential (``wallet.credential.receive_credential``);
        the issuer's key comes from the wallet's trust list unless ``issuer_keys`` is given.
        Raises ``trust.no_list`` without either, and the receive errors."""
        keys = issuer_keys if issuer_keys is not None else trust_list(self.vault, now=now)
        return receive_credential(self.vault, self.log, token, issuer_keys=keys, now=now,
                                  status_checker=status_checker)

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
