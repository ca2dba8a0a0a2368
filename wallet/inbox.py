"""The citizen's inbox: requests that agencies left at the relay, brought into the vault
(specs/openid4vp.md §7).

``collect`` reads the mailbox (``wallet.mailbox``), and for each message that carries an
OpenID4VP request link (``text/uri-list``): fetches the signed Request Object, checks it
(``wallet.openid4vp.fetch_request``) and hands it to the consent engine, which keeps it, logs
``request_received`` and blocks (and logs) a verifier that is not registered or asks too much.
Only then is the message acknowledged at the relay. The Request Object is kept in the vault
(component ``inbox``) as soon as it is fetched: a verifier serves it once, so a wallet that
stops halfway picks up from the stored copy instead of fetching again.

A message whose request is bad for good (unreadable link, a request the verifier no longer
has, a wrong signature, ...) is acknowledged and remembered with its error code; one that
failed for a passing reason (a verifier out of reach) stays at the relay for the next round.
Messages of other kinds are left alone for whoever reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vault import KluisError, Schema, Unavailable, Vault
from vault.item import format_time
from wallet.consent import Consent
from wallet.evaluation import Evaluation
from wallet.mailbox import InboxMessage, MailboxClient
from wallet.openid4vp import X509HashKeys, fetch_request, parse_request_uri
from wallet.relay_account import address_agency
from wallet.request import Request, parse_request
from wallet.transport import Transport

_V1 = """
CREATE TABLE inbox_message (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    uri TEXT NOT NULL,
    object TEXT,
    request_id TEXT,
    error TEXT,
    received TEXT NOT NULL
);
CREATE INDEX inbox_message_request ON inbox_message (request_id);
"""

INBOX_SCHEMA = Schema("inbox", (_V1,))
"""The messages taken from the relay, with the Request Object each one led to."""

URI_LIST = "text/uri-list"
"""RFC 2483: what an agency posts to a citizen's address, one ``openid4vp://`` link."""
MAX_ROUNDS = 20


@dataclass(frozen=True)
class InboxItem:
    """One message handled in this round: the request it brought (with its evaluation) or
    the error code that stopped it; ``address_agency`` is the agency the address was given
    to, and ``acked`` whether the message is done with at the relay."""

    message_id: str
    address: str
    address_agency: str | None
    evaluation: Evaluation | None
    error: str | None
    acked: bool

    @property
    def foreign(self) -> bool:
        """True when the request came from another agency than the one given the address:
        the address was passed on."""
        verifier = self.evaluation.verifier if self.evaluation is not None else None
        return (verifier is not None and self.address_agency is not None
                and verifier.id != self.address_agency)


@dataclass(frozen=True)
class Collected:
    """One round: the messages handled, and how many of other kinds were left alone."""

    items: tuple[InboxItem, ...]
    skipped: int


def collect(vault: Vault, consent: Consent, client: MailboxClient, *, transport: Transport,
            wait: float = 0.0, clock: Callable[[], datetime]) -> Collected:
    """Bring every pending request message from the relay into the vault (module
    docstring), waiting up to ``wait`` seconds for the first one. Raises the mailbox errors
    (the relay out of reach, ...) and the consent engine's own (``trust.no_list``, an expired
    trust list): those stop the round, with every message not yet received left at the
    relay."""
    items: list[InboxItem] = []
    skipped, after = 0, 0
    for _ in range(MAX_ROUNDS):
        batch = client.fetch(after=after, wait=wait if not items and not skipped else 0.0)
        if not batch.messages:
            break
        after = batch.cursor
        done: list[str] = []
        for message in batch.messages:
            if message.content_type.split(";")[0].strip().lower() != URI_LIST:
                skipped += 1
                continue
            item = _handle(vault, consent, message, transport, clock)
            items.append(item)
            if item.acked:
                done.append(message.id)
        client.ack(done)
    return Collected(tuple(items), skipped)


def _handle(vault: Vault, consent: Consent, message: InboxMessage, transport: Transport,
            clock: Callable[[], datetime]) -> InboxItem:
    agency = address_agency(vault, message.address)
    row = vault.reader().query_one(
        "SELECT object, request_id, error FROM inbox_message WHERE id = ?", (message.id,))
    if row is not None and (row[1] is not None or row[2] is not None):
        # Handled before; only the acknowledgement got lost.
        return InboxItem(message.id, message.address, agency, None,
                         None if row[2] is None else str(row[2]), acked=True)
    try:
        request = _request(vault, message, None if row is None else row[0], transport, clock)
    except Unavailable as error:
        return InboxItem(message.id, message.address, agency, None, error.code, acked=False)
    except KluisError as error:
        _remember(vault, message, error=error.code, now=clock())
        return InboxItem(message.id, message.address, agency, None, error.code, acked=True)
    evaluation = consent.receive(request, now=clock())
    with vault.transaction() as tx:
        tx.execute("UPDATE inbox_message SET request_id = ? WHERE id = ?",
                   (request.id, message.id))
    return InboxItem(message.id, message.address, agency, evaluation, None, acked=True)


def _request(vault: Vault, message: InboxMessage, stored: object, transport: Transport,
             clock: Callable[[], datetime]) -> Request:
    """The message's request: from the stored Request Object, else fetched and stored first."""
    if stored is not None:
        reference = parse_request_uri(_link(message.body))
        return parse_request(str(stored), verifier_keys=X509HashKeys(clock()),
                             expected_client_id=reference.client_id)
    reference = parse_request_uri(_link(message.body))
    request = fetch_request(reference, transport=transport, now=clock())
    with vault.transaction() as tx:
        tx.execute(
            "INSERT INTO inbox_message (id, address, uri, object, received) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET object = excluded.object",
            (message.id, message.address, reference.request_uri, request.source,
             format_time(clock())),
        )
    return request


def _link(body: str) -> str:
    """The one URI of a ``text/uri-list`` body (RFC 2483 §5: comment lines start with #)."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    links = [line for line in lines if not line.startswith("#")]
    return links[0] if len(links) == 1 else ""


def _remember(vault: Vault, message: InboxMessage, *, error: str, now: datetime) -> None:
    """Keep a message's error for good (the message is then acknowledged)."""
    with vault.transaction() as tx:
        tx.execute(
            "INSERT INTO inbox_message (id, address, uri, error, received) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET error = excluded.error",
            (message.id, message.address, message.body[:4096], error, format_time(now)),
        )


def arrived_by_network(vault: Vault, request_id: str) -> bool:
    """Whether the request ``request_id`` came in through the inbox (so its answer goes back
    over the network rather than into a file)."""
    row = vault.reader().query_one(
        "SELECT 1 FROM inbox_message WHERE request_id = ?", (request_id,))
    return row is not None
