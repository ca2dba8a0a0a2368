"""The wallet's account at its relay, kept in the vault (specs/relay.md, specs/openid4vp.md §7):
the relay's URL, the mailbox key, and one pairwise address per agency.

The mailbox key is an Ed25519 key made in the wallet and kept only in the vault (component
``relay``); the relay knows its public half, whose thumbprint names the mailbox. Each agency
gets its own random address, so two agencies cannot link the citizen through the relay; the
vault remembers which address was given to which agency (the relay does not know), so the
inbox can say where a request arrived. Moving to another relay makes a new key: the old
mailbox and its addresses stay behind, unlinkable to the new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault import NotFound, Schema, Vault
from vault.item import format_time, parse_time
from wallet.mailbox import MailboxClient
from wallet.openid4vp import check_url
from wallet.transport import Transport

_V1 = """
CREATE TABLE relay_account (
    slot INTEGER PRIMARY KEY CHECK (slot = 1),
    url TEXT NOT NULL,
    private_key BLOB NOT NULL,
    mailbox TEXT NOT NULL,
    registered TEXT NOT NULL
);
CREATE TABLE relay_address (
    agency TEXT PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    created TEXT NOT NULL
);
"""

RELAY_SCHEMA = Schema("relay", (_V1,))
"""The relay account and the pairwise addresses in the vault."""


class NoRelay(NotFound):
    code = "mailbox.not_registered"
    en = "Your wallet has no relay mailbox yet. Register with 'kluis relay register --relay URL'."
    nl = (
        "Uw wallet heeft nog geen postbus bij een relay. Meld u aan met "
        "'kluis relay register --relay URL'."
    )


@dataclass(frozen=True)
class RelayAccount:
    """The relay the wallet reads from, and its mailbox id there (the key's thumbprint)."""

    url: str
    mailbox: str
    registered: datetime


@dataclass(frozen=True)
class AgencyAddress:
    """The pairwise address given to one agency; ``url`` is where the agency posts."""

    agency: str
    address: str
    url: str
    created: datetime


def register_relay(vault: Vault, url: str, *, transport: Transport,
                   now: datetime) -> RelayAccount:
    """Register the wallet's mailbox at the relay ``url`` (idempotent for the same relay).

    The first time, and when moving to another relay, a new mailbox key is made and the
    addresses of the old relay are forgotten. Raises ``vp.insecure_url`` and the
    ``MailboxClient.register`` errors; nothing is stored unless the relay accepted the key.
    """
    url = check_url(url.rstrip("/"))
    row = vault.reader().query_one("SELECT url, private_key FROM relay_account WHERE slot = 1")
    if row is not None and str(row[0]) == url:
        key = Ed25519PrivateKey.from_private_bytes(bytes(row[1]))
    else:
        key = Ed25519PrivateKey.generate()
    client = MailboxClient(url, key, transport)
    client.register()
    with vault.transaction() as tx:
        if row is not None and str(row[0]) != url:
            tx.execute("DELETE FROM relay_address")
        tx.execute(
            "INSERT INTO relay_account (slot, url, private_key, mailbox, registered)"
            " VALUES (1, ?, ?, ?, ?) ON CONFLICT (slot) DO UPDATE SET url = excluded.url,"
            " private_key = excluded.private_key, mailbox = excluded.mailbox,"
            " registered = excluded.registered",
            (url, key.private_bytes_raw(), client.mailbox_id, format_time(now)),
        )
    return RelayAccount(url, client.mailbox_id, now)


def relay_account(vault: Vault) -> RelayAccount:
    """The wallet's relay account; raises ``mailbox.not_registered``."""
    row = vault.reader().query_one(
        "SELECT url, mailbox, registered FROM relay_account WHERE slot = 1")
    if row is None:
        raise NoRelay()
    return RelayAccount(str(row[0]), str(row[1]), parse_time(str(row[2])))


def mailbox_client(vault: Vault, *, transport: Transport) -> MailboxClient:
    """A client of the wallet's mailbox, with its key from the vault; raises
    ``mailbox.not_registered``."""
    row = vault.reader().query_one("SELECT url, private_key FROM relay_account WHERE slot = 1")
    if row is None:
        raise NoRelay()
    return MailboxClient(str(row[0]), Ed25519PrivateKey.from_private_bytes(bytes(row[1])),
                         transport)


def agency_address(vault: Vault, agency: str, *, transport: Transport,
                   now: datetime) -> AgencyAddress:
    """The address given to ``agency`` (an agency id), opened at the relay the first time.
    Raises ``mailbox.not_registered`` and the ``MailboxClient.open_address`` errors."""
    known = _address(vault, "agency = ?", agency)
    if known is not None:
        return known
    opened = mailbox_client(vault, transport=transport).open_address()
    with vault.transaction() as tx:
        tx.execute("INSERT INTO relay_address (agency, address, url, created) VALUES (?, ?, ?, ?)",
                   (agency, opened.address, opened.url, format_time(now)))
    return AgencyAddress(agency, opened.address, opened.url, now)


def agency_addresses(vault: Vault) -> tuple[AgencyAddress, ...]:
    """Every address handed out, oldest first."""
    rows = vault.reader().query(
        "SELECT agency, address, url, created FROM relay_address ORDER BY created, rowid")
    return tuple(AgencyAddress(str(a), str(b), str(c), parse_time(str(d))) for a, b, c, d in rows)


def address_agency(vault: Vault, address: str) -> str | None:
    """The agency ``address`` was given to, if it is one of the wallet's."""
    found = _address(vault, "address = ?", address)
    return found.agency if found is not None else None


def _address(vault: Vault, where: str, value: str) -> AgencyAddress | None:
    row = vault.reader().query_one(
        f"SELECT agency, address, url, created FROM relay_address WHERE {where}",  # noqa: S608
        (value,))
    if row is None:
        return None
    return AgencyAddress(str(row[0]), str(row[1]), str(row[2]), parse_time(str(row[3])))
