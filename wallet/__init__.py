"""The citizen's side: the consent engine, requests and decisions, the consent log, grants,
holder keys and the protocol clients.

Imports only from ``vault`` and ``verifiers``; never from ``cli`` or ``server``. It never
prints and never reads the environment for behaviour; HTTP reaches it through injected
clients.
"""

from wallet.mailbox import Inbox, InboxMessage, MailboxClient, RelayAddress
from wallet.transport import HttpxTransport, Response, Transport

__all__ = [
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
