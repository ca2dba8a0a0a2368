"""The wallet's side of one grant at the relay (``specs/grant.md`` §5): register it, put and
withdraw sealed items, revoke it, collect and acknowledge the record of every fetch.

Each grant has its own Ed25519 owner key, made by the wallet for that grant alone: every
request is signed with it (RFC 9421, tag ``kluis-wallet``, fresh nonce), and the relay knows
the grant only by that key, never by the citizen's mailbox. HTTP goes through an injected
``Transport``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vault import NotPermitted, Unavailable, VerificationFailed
from verifiers._document import format_timestamp
from verifiers.grant_fetch import BadAnswer, RelayUnavailable
from verifiers.http_signature import HttpRequest, format_ed25519_jwk, sign_request
from wallet.transport import Response, Transport

WALLET_TAG = "kluis-wallet"
_JSON = "application/json"
_TIME = "%Y-%m-%dT%H:%M:%SZ"


class GrantRefused(NotPermitted):
    code = "grant.relay_refused"
    en = "The relay refused the change to this grant ({problem})."
    nl = "De relay weigerde de wijziging van deze machtiging ({problem})."


@dataclass(frozen=True)
class RelayFetch:
    """The relay's record of one fetch (``specs/grant.md`` §5)."""

    id: str
    seq: int
    item: str
    keyid: str
    fetched_at: datetime
    outcome: str
    version: int | None
    number: int | None
    error: str | None


@dataclass(frozen=True)
class RelayRevocation:
    revoked_at: datetime
    served: int


def utc_now() -> datetime:
    return datetime.now(UTC)


class GrantClient:
    """One grant at the relay ``relay_url``, authenticated by its owner ``key``."""

    def __init__(
        self,
        relay_url: str,
        grant_id: str,
        key: Ed25519PrivateKey,
        transport: Transport,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.relay_url = relay_url.rstrip("/")
        self.grant_id = grant_id
        self._key = key
        self._transport = transport
        self._clock = clock
        self._base = f"/grants/{quote(grant_id, safe='')}"

    def create(self, *, agency_key: Ed25519PublicKey, valid_until: datetime,
               items: Sequence[str]) -> bool:
        """Register the grant (idempotent); True when the relay made it now."""
        body = {"owner": format_ed25519_jwk(self._key.public_key()),
                "agency_key": format_ed25519_jwk(agency_key),
                "valid_until": format_timestamp(valid_until), "items": list(items)}
        data = self._call("PUT", self._base, _json(body), expect=(200, 201))
        return bool(_field(data, "created", bool))

    def upload(self, item: str, *, version: int, sealed: bytes) -> None:
        """Put ``version`` of ``item`` (sealed bytes) at the relay."""
        path = f"{self._base}/items/{quote(item, safe='')}?{urlencode({'version': version})}"
        self._call("PUT", path, sealed, expect=(200,), media_type="application/octet-stream")

    def withdraw(self, item: str) -> None:
        """Drop the sealed version of ``item`` at the relay."""
        self._call("DELETE", f"{self._base}/items/{quote(item, safe='')}", b"", expect=(204,))

    def revoke(self) -> RelayRevocation:
        """Revoke the grant; when the relay did, and after how many served fetches."""
        data = self._call("DELETE", self._base, b"", expect=(200,))
        return RelayRevocation(_time(_field(data, "revoked_at", str)),
                               _field(data, "served", int))

    def fetches(self, *, limit: int = 100) -> list[RelayFetch]:
        """The relay's fetch records not yet acknowledged, oldest first."""
        data = self._call("GET", f"{self._base}/fetches?limit={limit}", b"", expect=(200,))
        return [_fetch(item) for item in _field(data, "fetches", list)]

    def ack(self, ids: Sequence[str]) -> int:
        """Let the relay delete the fetch records ``ids``; how many it deleted."""
        if not ids:
            return 0
        data = self._call("POST", f"{self._base}/fetches/acks", _json({"ids": list(ids)}),
                          expect=(200,))
        return int(_field(data, "acked", int))

    def _call(self, method: str, path: str, body: bytes, *, expect: tuple[int, ...],
              media_type: str = _JSON) -> Any:
        headers: tuple[tuple[str, str], ...] = (("Accept", _JSON),)
        if body:
            headers += (("Content-Type", media_type),)
        signed = sign_request(HttpRequest(method, self.relay_url + path, headers, body),
                              self._key, tag=WALLET_TAG, now=self._clock())
        answer = self._transport.request(method, signed.url, headers=dict(signed.headers),
                                         body=signed.body)
        if answer.status not in expect:
            raise refusal(answer)
        if answer.status == 204:
            return None
        try:
            return json.loads(answer.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BadAnswer("RFC 8259: the answer is not JSON") from None


def refusal(answer: Response) -> NotPermitted | Unavailable | VerificationFailed:
    """The kluis error for a relay's non-success answer; ``problem`` names its code."""
    problem = f"HTTP {answer.status}"
    try:
        document = json.loads(answer.body)
        if isinstance(document, dict) and isinstance(document.get("code"), str):
            problem = document["code"][:80]
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    if answer.status == 429 or answer.status >= 500:
        return RelayUnavailable(f"HTTP {answer.status}", problem=problem)
    if 400 <= answer.status < 500:
        return GrantRefused(f"HTTP {answer.status}", problem=problem)
    return BadAnswer(f"unexpected HTTP {answer.status}")


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _field(data: Any, name: str, kind: type[Any]) -> Any:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadAnswer(f"field {name!r} is missing or not a {kind.__name__}")
    return value


def _optional(data: Any, name: str, kind: type[Any]) -> Any:
    return None if data.get(name) is None else _field(data, name, kind)


def _time(text: str) -> datetime:
    try:
        return datetime.strptime(text, _TIME).replace(tzinfo=UTC)
    except ValueError:
        raise BadAnswer("RFC 3339: not YYYY-MM-DDThh:mm:ssZ") from None


def _fetch(data: Any) -> RelayFetch:
    outcome = _field(data, "outcome", str)
    if outcome not in ("served", "refused"):
        raise BadAnswer("specs/grant.md §5: outcome is served or refused")
    record = RelayFetch(
        id=_field(data, "id", str), seq=_field(data, "seq", int), item=_field(data, "item", str),
        keyid=_field(data, "keyid", str), fetched_at=_time(_field(data, "fetched_at", str)),
        outcome=outcome, version=_optional(data, "version", int),
        number=_optional(data, "number", int), error=_optional(data, "error", str),
    )
    if outcome == "served" and (record.version is None or record.number is None):
        raise BadAnswer("specs/grant.md §5: a served fetch has its version and number")
    return record
