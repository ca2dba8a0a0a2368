"""The grant notice: what the citizen's wallet tells the agency about a new grant
(``specs/grant.md`` §3.2).

It says where the grant lives (relay and grant id), until when it runs, which items it holds
(and what each is), which of the agency's keys the wallet used, and the grant's public
signing key: the key every sealed item's statement must verify with
(``verifiers.sealed_item.open_item``). The notice reaches the agency without passing through
the relay (posted to the agency's ``notice_uri``, or handed over by the citizen), so the relay
cannot substitute its own key. ``format_grant_notice`` and ``parse_grant_notice`` are the
pair; the agency's fetch command reads a notice file.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError

from vault import InvalidInput
from verifiers._document import (
    ClaimPathField,
    HttpsUrl,
    ShortText,
    Strict,
    Timestamp,
    check_no_null_members,
)
from verifiers.jws import VerifyingKey, format_jwk, parse_jwk
from verifiers.sealed_item import ITEM_PATTERN

NOTICE_TYPE = "kluis-grant-notice"
SPEC = "specs/grant.md"
ItemId = Annotated[str, StringConstraints(pattern=ITEM_PATTERN)]
GrantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{22,64}$")]
RelayUrl = Annotated[str, StringConstraints(min_length=8, max_length=512,
                                            pattern=r"^https?://[^\s#@]+$")]


class BadNotice(InvalidInput):
    code = "grant.bad_notice"
    en = "The grant notice is damaged or not in the expected form. Ask the citizen for it again."
    nl = (
        "De melding van de machtiging is beschadigd of niet in de verwachte vorm. "
        "Vraag de burger haar opnieuw te sturen."
    )


class NoticeItem(Strict):
    """One granted item: its id at the relay and what it holds."""

    id: ItemId
    vct: ShortText | None = None
    claims: Annotated[tuple[ClaimPathField, ...], Field(max_length=256)] | None = None
    vault_item: ShortText | None = None


class GrantNotice(Strict):
    """A parsed grant notice (``specs/grant.md`` §3.2)."""

    type: Literal["kluis-grant-notice"]
    grant: GrantId
    relay: RelayUrl
    agency: HttpsUrl
    valid_until: Timestamp
    fetch_kid: ShortText
    encryption_kid: ShortText
    wallet_key: dict[str, str]
    items: Annotated[tuple[NoticeItem, ...], Field(min_length=1, max_length=256)]
    request: ShortText | None = None
    state: ShortText | None = None

    def verifying_key(self) -> VerifyingKey:
        """The grant's public signing key; raises ``grant.bad_notice`` if it is not Ed25519."""
        try:
            key = parse_jwk(self.wallet_key)
        except InvalidInput:
            raise BadNotice(f"{SPEC} §3.2: wallet_key is an Ed25519 public JWK") from None
        if key.alg.value != "EdDSA":
            raise BadNotice(f"{SPEC} §3.2: wallet_key is an Ed25519 public JWK")
        return key

    def item(self, item_id: str) -> NoticeItem | None:
        return next((i for i in self.items if i.id == item_id), None)


def format_grant_notice(
    *,
    grant: str,
    relay: str,
    agency: str,
    valid_until: datetime,
    fetch_kid: str,
    encryption_kid: str,
    wallet_key: VerifyingKey,
    items: list[dict[str, Any]],
    request: str | None = None,
    state: str | None = None,
) -> dict[str, Any]:
    """The notice as a JSON object, checked as ``parse_grant_notice`` checks it. Raises
    ``grant.bad_notice`` for values the format does not allow."""
    notice: dict[str, Any] = {
        "type": NOTICE_TYPE, "grant": grant, "relay": relay.rstrip("/"), "agency": agency,
        "valid_until": valid_until, "fetch_kid": fetch_kid, "encryption_kid": encryption_kid,
        "wallet_key": format_jwk(wallet_key, with_kid=False), "items": items,
    }
    if request is not None:
        notice["request"] = request
    if state is not None:
        notice["state"] = state
    try:
        checked = GrantNotice.model_validate(notice, strict=False)
    except ValidationError:
        raise BadNotice(f"{SPEC} §3.2: the notice does not follow its format") from None
    checked.verifying_key()
    dumped: dict[str, Any] = checked.model_dump(mode="json", exclude_none=True)
    return dumped


def parse_grant_notice(text: str | bytes) -> GrantNotice:
    """The grant notice in JSON ``text``; raises ``grant.bad_notice``."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadNotice("RFC 8259: the notice is JSON") from None
    if not isinstance(data, dict) or check_no_null_members(data) is not None:
        raise BadNotice(f"{SPEC} §3.2: the notice is a JSON object without null members")
    try:
        notice = GrantNotice.model_validate_json(json.dumps(data))
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "notice"
        raise BadNotice(f"{SPEC} §3.2: {where} is not valid") from None
    notice.verifying_key()
    return notice
