"""An agency reading a granted item at the relay, and the receipt it keeps for every read
(``specs/grant.md`` §5, §7).

The agency signs each fetch with its Ed25519 key from the trust list under the kluis RFC 9421
profile (``verifiers.http_signature``, tag ``kluis-agency``, a fresh nonce and ``created``),
so the relay knows who asks and refuses a replayed request. The answer carries the sealed item
and the relay's record of the fetch (its id and time); the agency opens the item
(``verifiers.sealed_item.open_item``) and signs a *fetch receipt*: a compact JWS (EdDSA or
ES256, ``typ`` ``kluis-grant-fetch+jwt``) saying which grant, item, version and content hash it
received under which relay fetch id. The receipt names the same fetch id as the citizen's
``grant_used`` log entry, so an auditor can put the two side by side.

HTTP goes through any object with the ``request`` method of ``wallet.transport.Transport``
(``FetchTransport``): this module imports no HTTP library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault import InvalidInput, KluisError, NotPermitted, Unavailable, VerificationFailed
from verifiers._document import format_timestamp
from verifiers.http_signature import HttpRequest, sign_request
from verifiers.jws import (
    SigningKey,
    VerifyingKey,
    b64url_decode,
    check_header,
    check_signature,
    parse_jws,
    sign_jws,
)
from verifiers.sealed_item import EncryptionKey, GrantedItem, open_item

AGENCY_TAG = "kluis-agency"
RECEIPT_TYP = "kluis-grant-fetch+jwt"
SPEC = "specs/grant.md"
MAX_ANSWER_BYTES = 32 * 1024 * 1024
_FETCH_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_TIME = "%Y-%m-%dT%H:%M:%SZ"


class FetchRefused(NotPermitted):
    code = "grant.fetch_refused"
    en = "The relay refused to hand out the item ({problem}). The grant may have ended."
    nl = "De relay gaf het gegeven niet af ({problem}). Mogelijk is de machtiging beëindigd."


class RelayUnavailable(Unavailable):
    code = "grant.relay_unavailable"
    en = "The relay is busy or down ({problem}). Try again in a moment."
    nl = "De relay is bezet of niet beschikbaar ({problem}). Probeer het zo opnieuw."


class BadAnswer(VerificationFailed):
    code = "grant.bad_answer"
    en = "The relay sent an answer that kluis cannot read. Try again later."
    nl = "De relay gaf een antwoord dat kluis niet kan lezen. Probeer het later opnieuw."


class BadReceipt(InvalidInput):
    code = "grant.bad_receipt"
    en = "This fetch receipt is damaged, not signed by this key, or not a fetch receipt."
    nl = (
        "Dit ontvangstbewijs van een inzage is beschadigd, niet met deze sleutel "
        "ondertekend, of geen ontvangstbewijs van een inzage."
    )


class FetchAnswerLike(Protocol):
    status: int
    headers: Mapping[str, str]
    body: bytes


class FetchTransport(Protocol):
    """What ``fetch_item`` needs of an HTTP client (``wallet.transport.Transport`` fits)."""

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes = b"",
                timeout: float | None = None) -> FetchAnswerLike: ...


@dataclass(frozen=True)
class FetchAnswer:
    """What the relay handed out: the sealed bytes and its record of the fetch."""

    grant: str
    item: str
    version: int
    sealed: bytes
    fetch_id: str
    fetched_at: datetime


@dataclass(frozen=True)
class FetchReceipt:
    """The agency's signed record of one fetch (``specs/grant.md`` §7)."""

    agency: str
    relay: str
    grant: str
    item: str
    version: int
    fetch_id: str
    fetched_at: datetime
    sha256: str
    received_at: datetime


@dataclass(frozen=True)
class Fetched:
    """One successful read: the opened item, the relay's record, the agency's receipt."""

    item: GrantedItem
    answer: FetchAnswer
    receipt: str


def fetch_url(relay_url: str, grant: str, item: str) -> str:
    """Where an item of a grant is fetched: ``<relay>/grants/{grant}/items/{item}``."""
    return f"{relay_url.rstrip('/')}/grants/{quote(grant, safe='')}/items/{quote(item, safe='')}"


def sign_fetch(url: str, key: Ed25519PrivateKey, *, now: datetime) -> HttpRequest:
    """The signed GET for ``url`` (RFC 9421, tag ``kluis-agency``, fresh nonce)."""
    return sign_request(HttpRequest("GET", url, (("Accept", "application/json"),)), key,
                        tag=AGENCY_TAG, now=now)


def parse_fetch_answer(status: int, body: bytes, *, grant: str, item: str) -> FetchAnswer:
    """The relay's answer to a fetch of ``item`` of ``grant`` (``specs/grant.md`` §5).

    Raises ``grant.fetch_refused`` (4xx, naming the relay's problem code),
    ``grant.relay_unavailable`` (429, 5xx) and ``grant.bad_answer``.
    """
    if status != 200:
        problem = _problem_code(body) or f"HTTP {status}"
        if status == 429 or status >= 500:
            raise RelayUnavailable(f"HTTP {status}", problem=problem)
        if 400 <= status < 500:
            raise FetchRefused(f"HTTP {status}", problem=problem)
        raise BadAnswer(f"unexpected HTTP {status}")
    if len(body) > MAX_ANSWER_BYTES:
        raise BadAnswer(f"{SPEC} §5: the answer is too large")
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise BadAnswer(f"{SPEC} §5: the answer is a JSON object")
        version, fetch_id = data.get("version"), data.get("fetch")
        if data.get("grant") != grant or data.get("item") != item:
            raise BadAnswer(f"{SPEC} §5: the answer is for another grant or item")
        if type(version) is not int or version < 1:
            raise BadAnswer(f"{SPEC} §5: version is a positive integer")
        if not isinstance(fetch_id, str) or not _FETCH_ID.match(fetch_id):
            raise BadAnswer(f"{SPEC} §5: fetch is the relay's id of this fetch")
        sealed = b64url_decode(str(data.get("sealed")), "sealed")
        fetched_at = datetime.strptime(str(data.get("fetched_at")), _TIME).replace(tzinfo=UTC)
    except BadAnswer:
        raise
    except (ValueError, RecursionError, KluisError):
        raise BadAnswer(f"{SPEC} §5: the answer is not the documented JSON") from None
    return FetchAnswer(grant, item, version, sealed, fetch_id, fetched_at)


def fetch_item(
    transport: FetchTransport,
    relay_url: str,
    grant: str,
    item: str,
    *,
    agency: str,
    signing_key: SigningKey,
    encryption_key: EncryptionKey,
    wallet_key: VerifyingKey,
    now: datetime,
) -> Fetched:
    """Fetch, open and sign a receipt for ``item`` of ``grant`` (``specs/grant.md`` §5, §7).

    ``signing_key`` is the agency's Ed25519 key registered for the grant; ``wallet_key`` the
    grant's signing key from the grant notice. Raises ``grant.fetch_refused``,
    ``grant.relay_unavailable``, ``grant.bad_answer``, ``grant.cannot_open``,
    ``grant.bad_item`` and what the transport raises.
    """
    if not isinstance(signing_key.key, Ed25519PrivateKey):
        raise FetchRefused("RFC 9421 §3.3.6: fetches are signed with Ed25519",
                           problem="httpsig.bad_key")
    signed = sign_fetch(fetch_url(relay_url, grant, item), signing_key.key, now=now)
    answer = transport.request("GET", signed.url, headers=dict(signed.headers), timeout=30.0)
    parsed = parse_fetch_answer(answer.status, answer.body, grant=grant, item=item)
    opened = open_item(parsed.sealed, key=encryption_key, wallet_key=wallet_key, grant=grant,
                       item=item, version=parsed.version)
    receipt = issue_fetch_receipt(opened, parsed, agency=agency, relay=relay_url,
                                  key=signing_key, now=now)
    return Fetched(opened, parsed, receipt)


def issue_fetch_receipt(
    opened: GrantedItem, answer: FetchAnswer, *, agency: str, relay: str, key: SigningKey,
    now: datetime,
) -> str:
    """The agency's receipt for one fetch, signed with its ``key`` (``specs/grant.md`` §7)."""
    payload = {
        "agency": agency,
        "relay": relay.rstrip("/"),
        "grant": answer.grant,
        "item": answer.item,
        "version": opened.version,
        "fetch": answer.fetch_id,
        "fetched_at": format_timestamp(answer.fetched_at),
        "sha256": opened.sha256,
        "received_at": format_timestamp(now),
    }
    header: dict[str, Any] = {"alg": key.alg.value, "typ": RECEIPT_TYP}
    if key.kid is not None:
        header["kid"] = key.kid
    return sign_jws(header, payload, key)


def verify_fetch_receipt(token: str, key: VerifyingKey) -> FetchReceipt:
    """The receipt in ``token`` once ``key`` verifies it; raises ``grant.bad_receipt``."""
    try:
        jws = parse_jws(token, "fetch receipt")
        if jws.header.get("typ") != RECEIPT_TYP:
            raise BadReceipt(f"{SPEC} §7: typ is {RECEIPT_TYP}")
        check_signature(jws, key, check_header(jws.header))
        claims = jws.payload
        return FetchReceipt(
            agency=_text(claims, "agency"), relay=_text(claims, "relay"),
            grant=_text(claims, "grant"), item=_text(claims, "item"),
            version=_int(claims, "version"), fetch_id=_text(claims, "fetch"),
            fetched_at=_moment(claims, "fetched_at"), sha256=_text(claims, "sha256"),
            received_at=_moment(claims, "received_at"),
        )
    except BadReceipt:
        raise
    except KluisError as error:
        raise BadReceipt(f"{SPEC} §7: {error.code}") from None


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise BadReceipt(f"{SPEC} §7: {name} is a string")
    return value


def _int(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if type(value) is not int:
        raise BadReceipt(f"{SPEC} §7: {name} is an integer")
    return value


def _moment(claims: Mapping[str, Any], name: str) -> datetime:
    try:
        return datetime.strptime(_text(claims, name), _TIME).replace(tzinfo=UTC)
    except ValueError:
        raise BadReceipt(f"{SPEC} §7: {name} is YYYY-MM-DDThh:mm:ssZ") from None


def _problem_code(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    code = document.get("code") if isinstance(document, dict) else None
    return code[:80] if isinstance(code, str) else None
