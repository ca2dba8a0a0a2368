"""The wallet's side of its relay mailbox (specs/relay.md): register, hand out pairwise
addresses, read what agencies left, acknowledge it.

Every request is signed with the mailbox key under the kluis RFC 9421 profile (tag
``kluis-wallet``) with a fresh nonce; no secret ever travels, and none is in a URL. The key
stays with the caller (later: in the vault); this client holds only a reference to it.
HTTP goes through an injected ``Transport``.

Delivery is at-least-once on the wire: a message comes back in every read until it is
acknowledged. Read with ``after`` = the last ``cursor`` to see each message once per session,
acknowledge what you have stored, and after a restart read from 0 to get the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault import NotPermitted, Unavailable, VerificationFailed
from verifiers.http_signature import (
    HttpRequest,
    format_ed25519_jwk,
    key_thumbprint,
    sign_request,
)
from wallet.transport import Response, Transport

WALLET_TAG = "kluis-wallet"
_JSON = "application/json"


class RelayRefused(NotPermitted):
    code = "mailbox.refused"
    en = "The relay refused the request ({problem}). Check the request and your mailbox key."
    nl = "De relay weigerde het verzoek ({problem}). Controleer het verzoek en uw postbussleutel."


class RelayUnavailable(Unavailable):
    code = "mailbox.relay_unavailable"
    en = "The relay is busy or down ({problem}). Try again in a moment."
    nl = "De relay is bezet of niet beschikbaar ({problem}). Probeer het zo opnieuw."


class BadRelayAnswer(VerificationFailed):
    code = "mailbox.bad_answer"
    en = "The relay sent an answer that kluis cannot read. Try again later or use another relay."
    nl = "De relay gaf een antwoord dat kluis niet kan lezen. Probeer later of een andere relay."


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RelayAddress:
    """One pairwise address; ``url`` is what the agency posts to."""

    address: str
    url: str
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class InboxMessage:
    id: str
    seq: int
    address: str
    content_type: str
    body: str
    received_at: datetime


@dataclass(frozen=True)
class Inbox:
    """One read: the messages in order, and the cursor to pass as ``after`` next time."""

    messages: tuple[InboxMessage, ...]
    cursor: int


class MailboxClient:
    """A wallet's mailbox at the relay ``relay_url``, authenticated by ``key``."""

    def __init__(
        self,
        relay_url: str,
        key: Ed25519PrivateKey,
        transport: Transport,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.relay_url = relay_url.rstrip("/")
        self._key = key
        self._transport = transport
        self._clock = clock
        self.mailbox_id = key_thumbprint(key.public_key())

    def register(self) -> bool:
        """Create the mailbox of this key at the relay (idempotent); True when new."""
        jwk = format_ed25519_jwk(self._key.public_key())
        data = self._call("POST", "/mailboxes", {"jwk": jwk}, expect=(200, 201))
        if _field(data, "mailbox", str) != self.mailbox_id:
            raise BadRelayAnswer("the relay named another mailbox")
        return bool(_field(data, "created", bool))

    def open_address(self) -> RelayAddress:
        """A fresh pairwise address for one agency."""
        return self._address(self._call("POST", "/mailbox/addresses", None, expect=(201,)))

    def close_address(self, address: str) -> None:
        """Stop accepting messages at ``address`` (messages already there stay)."""
        self._call("DELETE", f"/mailbox/addresses/{quote(address, safe='')}", None, expect=(204,))

    def addresses(self) -> list[RelayAddress]:
        data = self._call("GET", "/mailbox/addresses", None, expect=(200,))
        return [self._address(item) for item in _field(data, "addresses", list)]

    def fetch(self, *, after: int = 0, wait: float = 0.0, limit: int = 50) -> Inbox:
        """Unacknowledged messages numbered above ``after``, waiting up to ``wait`` seconds
        (the relay caps it) for the first one to arrive."""
        query = urlencode({"after": after, "wait": f"{wait:g}", "limit": limit})
        data = self._call(
            "GET", f"/mailbox/messages?{query}", None, expect=(200,), timeout=wait + 15.0
        )
        messages = tuple(_message(item) for item in _field(data, "messages", list))
        return Inbox(messages, _field(data, "cursor", int))

    def ack(self, ids: Sequence[str]) -> int:
        """Delete the messages ``ids`` at the relay; return how many it deleted."""
        if not ids:
            return 0
        data = self._call("POST", "/mailbox/acks", {"ids": list(ids)}, expect=(200,))
        return int(_field(data, "acked", int))

    # --- plumbing ---------------------------------------------------------------------------

    def _address(self, data: Any) -> RelayAddress:
        address = _field(data, "address", str)
        return RelayAddress(
            address=address,
            url=f"{self.relay_url}/a/{quote(address, safe='')}/messages",
            created_at=_time(_field(data, "created_at", str)),
            closed_at=_time(closed) if (closed := _optional(data, "closed_at", str)) else None,
        )

    def _call(
        self,
        method: str,
        path: str,
        payload: Any,
        *,
        expect: tuple[int, ...],
        timeout: float | None = None,
    ) -> Any:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers: tuple[tuple[str, str], ...] = (("Accept", _JSON),)
        if body:
            headers += (("Content-Type", _JSON),)
        signed = sign_request(
            HttpRequest(method, self.relay_url + path, headers, body),
            self._key, tag=WALLET_TAG, now=self._clock(),
        )
        answer = self._transport.request(
            method, signed.url, headers=dict(signed.headers), body=signed.body, timeout=timeout
        )
        if answer.status not in expect:
            raise _refusal(answer)
        if answer.status == 204:
            return None
        try:
            return json.loads(answer.body)
        except (ValueError, UnicodeDecodeError):
            raise BadRelayAnswer("RFC 8259: the answer is not JSON") from None


def _refusal(answer: Response) -> NotPermitted | Unavailable | VerificationFailed:
    """The kluis error for a relay's non-success answer (RFC 9457 problem or not)."""
    problem = f"HTTP {answer.status}"
    try:
        document = json.loads(answer.body)
        if isinstance(document, dict) and isinstance(document.get("code"), str):
            problem = document["code"][:80]
    except (ValueError, UnicodeDecodeError):
        pass
    if answer.status == 429 or answer.status >= 500:
        retry = answer.headers.get("retry-after", "")
        fields: dict[str, Any] = {"problem": problem}
        if retry.isdigit():
            fields["retry_after"] = int(retry)
        return RelayUnavailable(f"HTTP {answer.status}", **fields)
    if 400 <= answer.status < 500:
        return RelayRefused(f"HTTP {answer.status}", problem=problem)
    return BadRelayAnswer(f"unexpected HTTP {answer.status}")


def _field(data: Any, name: str, kind: type[Any]) -> Any:
    value = data.get(name) if isinstance(data, dict) else None
    # bool is an int in Python; an int field must not accept true/false.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadRelayAnswer(f"field {name!r} is missing or not a {kind.__name__}")
    return value


def _optional(data: Any, name: str, kind: type[Any]) -> Any:
    return None if isinstance(data, dict) and data.get(name) is None else _field(data, name, kind)


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRelayAnswer("RFC 3339: not a date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _message(data: Any) -> InboxMessage:
    return InboxMessage(
        id=_field(data, "id", str),
        seq=_field(data, "seq", int),
        address=_field(data, "address", str),
        content_type=_field(data, "content_type", str),
        body=_field(data, "body", str),
        received_at=_time(_field(data, "received_at", str)),
    )
