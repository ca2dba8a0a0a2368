"""The citizen's side: the consent engine, requests and decisions, the consent log, grants,
holder keys and the protocol clients.

Imports only from ``vault`` and ``verifiers``; never from ``cli`` or ``server``. It never
prints and never reads the environment for behaviour; HTTP reaches it through injected
clients.
"""

from wallet.consent_log import ConsentLog, NoSuchEntry, VaultLogStore
from wallet.mailbox import Inbox, InboxMessage, MailboxClient, RelayAddress
from wallet.transport import HttpxTransport, Response, Transport
from wallet.wallet import SCHEMAS, Wallet, create_wallet, open_wallet

__all__ = [
    # wallet (the vault with every component installed)
    "SCHEMAS",
    "Wallet",
    "create_wallet",
    "open_wallet",
    # consent_log (specs/consent-log.md)
    "ConsentLog",
    "NoSuchEntry",
    "VaultLogStore",
    # mailbox (the relay, specs/relay.md)
    "Inbox",
    "InboxMessage",
    "MailboxClient",
    "RelayAddress",
    # transport (HTTP for every protocol client)
    "HttpxTransport",
    "Response",
    "Transport",
]
