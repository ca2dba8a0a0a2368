"""The relay: the citizen's always-on mailbox. Agencies post to pairwise pseudonymous
addresses; the wallet reads and acknowledges. It never holds a vault key or a claim value.

What the relay stores, and nothing more: each mailbox's Ed25519 public key (its id is the key's
RFC 7638 thumbprint), the random addresses that lead to it (one per citizen-agency pair, with
no record of which agency), the agencies' request envelopes (opaque: a media type and a text,
such as an OpenID4VP request URI or a signed request object) until the wallet acknowledges
them, and counters.

Delivery: messages stay until acknowledged, and a read returns the unacknowledged messages
after a cursor, in order. Each message gets a per-mailbox sequence number from the mailbox
row's counter, incremented in the posting transaction. That ``UPDATE`` holds the mailbox row
lock until commit (PostgreSQL; SQLite serialises all writers), so within one mailbox commit
order equals sequence order: when a reader sees number n, every number below n is already
visible. A global serial would not give this (numbers can commit out of order, and a reader
that moved past n would miss n-1 committed later); a cursor over our per-mailbox numbers can
never skip a message, and acknowledgement, not the cursor, decides what is deleted. A wallet
that starts afresh reads from 0 and gets everything not yet acknowledged.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from server.store import Schema, Store
from vault import InvalidInput, NotFound, Unavailable
from verifiers.http_signature import key_thumbprint

RELAY_SCHEMA = Schema(
    "relay",
    (
        "CREATE TABLE relay_mailbox ("
        " id TEXT PRIMARY KEY, public_key BLOB NOT NULL, created_at INTEGER NOT NULL,"
        " next_seq INTEGER NOT NULL DEFAULT 0, pending INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE relay_address ("
        " address TEXT PRIMARY KEY, mailbox_id TEXT NOT NULL REFERENCES relay_mailbox (id),"
        " created_at INTEGER NOT NULL, closed_at INTEGER);"
        "CREATE INDEX relay_address_mailbox ON relay_address (mailbox_id);"
        "CREATE TABLE relay_message ("
        " id TEXT PRIMARY KEY, mailbox_id TEXT NOT NULL REFERENCES relay_mailbox (id),"
        " seq INTEGER NOT NULL, address TEXT NOT NULL, content_type TEXT NOT NULL,"
        " body BLOB NOT NULL, received_at INTEGER NOT NULL, UNIQUE (mailbox_id, seq))",
    ),
)

# RFC 6838 §4.2 type/subtype names, optionally with parameters; no line breaks.
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}"
    r"(?:\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(?:[A-Za-z0-9!#$&^_.+-]+|\"[^\"\r\n]*\"))*$"
)
ADDRESS_PATTERN = r"^[A-Za-z0-9_-]{22,64}$"
_ADDRESS = re.compile(ADDRESS_PATTERN)


class UnknownAddress(NotFound):
    code = "relay.unknown_address"
    en = "There is no open mailbox address like this. Ask the citizen for their current address."
    nl = "Er is geen open postbusadres zoals dit. Vraag de burger om het huidige adres."


class BadEnvelope(InvalidInput):
    code = "relay.bad_envelope"
    en = "The message has no valid media type, or its text is not valid Unicode. Fix it and resend."
    nl = "Het bericht heeft geen geldig mediatype of geen geldige Unicode-tekst. Herstel het."


class MessageTooLarge(InvalidInput):
    code = "relay.message_too_large"
    en = "The message is too large for the relay. Send a link to it instead."
    nl = "Het bericht is te groot voor de relay. Stuur in plaats daarvan een link ernaar."
    http_status: ClassVar[int] = 413


class MailboxFull(Unavailable):
    code = "relay.mailbox_full"
    en = "The citizen's mailbox is full. Try again later."
    nl = "De postbus van de burger is vol. Probeer het later opnieuw."


@dataclass(frozen=True)
class RelayPolicy:
    max_message_bytes: int = 64 * 1024
    max_pending_messages: int = 1000


@dataclass(frozen=True)
class Address:
    address: str
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class Envelope:
    """What an agency posts: a media type and an opaque text (a request URI, a JWT, ...)."""

    content_type: str
    body: str


@dataclass(frozen=True)
class Message:
    id: str
    seq: int
    address: str
    envelope: Envelope
    received_at: datetime


@dataclass(frozen=True)
class Posted:
    id: str
    mailbox_id: str
    seq: int


def _time(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _seconds(now: datetime) -> int:
    return int(now.timestamp())


class Relay:
    def __init__(self, store: Store, policy: RelayPolicy | None = None) -> None:
        self._store = store
        self.policy = policy or RelayPolicy()

    # --- mailboxes ------------------------------------------------------------------------

    def public_key(self, mailbox_id: str) -> Ed25519PublicKey | None:
        """The key registered for ``mailbox_id`` (its keyid), or None."""
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute("SELECT public_key FROM relay_mailbox WHERE id = ?", (mailbox_id,))
        return Ed25519PublicKey.from_public_bytes(bytes(rows[0][0])) if rows else None

    def open_mailbox(self, public_key: Ed25519PublicKey, *, now: datetime) -> tuple[str, bool]:
        """The mailbox of ``public_key`` and whether this call created it (idempotent)."""
        mailbox_id = key_thumbprint(public_key)
        raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        with self._store.transaction() as tx:
            created = tx.execute(
                "INSERT INTO relay_mailbox (id, public_key, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                (mailbox_id, raw, _seconds(now)),
            )
        return mailbox_id, bool(created)

    # --- addresses --------------------------------------------------------------------------

    def open_address(self, mailbox_id: str, *, now: datetime) -> Address:
        """A new pairwise address (128 random bits, base64url) leading to ``mailbox_id``."""
        address = secrets.token_urlsafe(16)
        with self._store.transaction() as tx:
            tx.execute(
                "INSERT INTO relay_address (address, mailbox_id, created_at) VALUES (?, ?, ?)",
                (address, mailbox_id, _seconds(now)),
            )
        return Address(address, datetime.fromtimestamp(_seconds(now), tz=UTC), None)

    def close_address(self, mailbox_id: str, address: str, *, now: datetime) -> None:
        """Refuse new posts to ``address``; messages already taken stay until acknowledged.

        Closing a closed address is a no-op. Raises ``UnknownAddress`` when the address is
        not this mailbox's (another wallet's addresses are indistinguishable from none).
        """
        with self._store.transaction() as tx:
            rows = tx.execute(
                "UPDATE relay_address SET closed_at = COALESCE(closed_at, ?) "
                "WHERE address = ? AND mailbox_id = ? RETURNING address",
                (_seconds(now), address, mailbox_id),
            )
        if not rows:
            raise UnknownAddress()

    def addresses(self, mailbox_id: str) -> list[Address]:
        """Every address of ``mailbox_id``, open and closed, oldest first."""
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute(
                "SELECT address, created_at, closed_at FROM relay_address "
                "WHERE mailbox_id = ? ORDER BY created_at, address",
                (mailbox_id,),
            )
        return [Address(a, datetime.fromtimestamp(c, tz=UTC), _time(x)) for a, c, x in rows]

    # --- messages -----------------------------------------------------------------------------

    def post(self, address: str, envelope: Envelope, *, now: datetime) -> Posted:
        """Take ``envelope`` for the mailbox behind ``address``.

        Raises ``UnknownAddress`` (unknown or closed: the same answer, so a closed address
        reveals nothing), ``BadEnvelope``, ``MessageTooLarge``, ``MailboxFull``.
        """
        if not _MEDIA_TYPE.match(envelope.content_type):
            raise BadEnvelope("RFC 6838 §4.2: content_type must be type/subtype")
        try:
            body = envelope.body.encode("utf-8")
        except UnicodeEncodeError:
            raise BadEnvelope("RFC 8259 §8.2: the body has an unpaired surrogate") from None
        if len(body) > self.policy.max_message_bytes:
            raise MessageTooLarge(f"at most {self.policy.max_message_bytes} bytes")
        if not _ADDRESS.match(address):
            raise UnknownAddress()
        message_id = secrets.token_urlsafe(16)
        with self._store.transaction() as tx:
            owner = tx.execute(
                "SELECT mailbox_id FROM relay_address WHERE address = ? AND closed_at IS NULL",
                (address,),
            )
            if not owner:
                raise UnknownAddress()
            mailbox_id = str(owner[0][0])
            # The row lock taken here orders this mailbox's posts: see the module docstring.
            ((seq, pending),) = tx.execute(
                "UPDATE relay_mailbox SET next_seq = next_seq + 1, pending = pending + 1 "
                "WHERE id = ? RETURNING next_seq, pending",
                (mailbox_id,),
            )
            if pending > self.policy.max_pending_messages:
                raise MailboxFull(f"{self.policy.max_pending_messages} unacknowledged messages")
            tx.execute(
                "INSERT INTO relay_message "
                "(id, mailbox_id, seq, address, content_type, body, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (message_id, mailbox_id, seq, address, envelope.content_type, body, _seconds(now)),
            )
        return Posted(message_id, mailbox_id, int(seq))

    def read(self, mailbox_id: str, *, after: int = 0, limit: int = 50) -> list[Message]:
        """Unacknowledged messages of ``mailbox_id`` numbered above ``after``, in order."""
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute(
                "SELECT id, seq, address, content_type, body, received_at FROM relay_message "
                "WHERE mailbox_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (mailbox_id, after, limit),
            )
        return [
            Message(
                id=str(id_), seq=int(seq), address=str(address),
                envelope=Envelope(str(content_type), bytes(body).decode("utf-8")),
                received_at=datetime.fromtimestamp(received, tz=UTC),
            )
            for id_, seq, address, content_type, body, received in rows
        ]

    def ack(self, mailbox_id: str, ids: list[str]) -> int:
        """Delete the messages ``ids`` of ``mailbox_id``; return how many went.

        Ids of other mailboxes, or already acknowledged, are ignored: acknowledging is
        idempotent, and one wallet can never delete another's messages.
        """
        unique = sorted(set(ids))
        if not unique:
            return 0
        marks = ", ".join("?" for _ in unique)  # only placeholders go into the SQL text
        with self._store.transaction() as tx:
            gone = tx.execute(
                f"DELETE FROM relay_message WHERE mailbox_id = ? AND id IN ({marks}) "  # noqa: S608
                "RETURNING id",
                (mailbox_id, *unique),
            )
            if gone:
                tx.execute(
                    "UPDATE relay_mailbox SET pending = pending - ? WHERE id = ?",
                    (len(gone), mailbox_id),
                )
        return len(gone)
