"""Grant requests: an OpenID4VP request that asks for ongoing access instead of a one-off
release, marked by kluis's ``verifier_info`` element ``kluis_grant`` (``specs/grant.md`` §3).

An agency asks for a grant exactly as it asks for data: a signed Request Object with a DCQL
query and the ``kluis_purpose`` element, delivered through the citizen's relay and evaluated
by the consent engine against the trust list (so an unregistered or over-asking agency is
blocked the same way). The ``kluis_grant`` element adds what a grant needs: until when it
runs, which of the agency's registered keys signs its fetches (Ed25519, in ``jwks``) and
which one the items are sealed to (X25519, in ``encryption_jwks``), and optionally where the
wallet sends the grant notice. Each credential query of the DCQL query becomes one granted
item, named by the query's id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from vault import InvalidInput
from verifiers._document import ShortText, Timestamp
from verifiers.sealed_item import ITEM_PATTERN
from wallet.request import Request

GRANT_FORMAT = "kluis_grant"
SPEC = "specs/grant.md"
_ITEM = re.compile(ITEM_PATTERN)


class BadGrantRequest(InvalidInput):
    code = "grant.bad_request"
    en = (
        "The request's terms for ongoing access are missing or not written correctly. "
        "Ask the organisation for a new request."
    )
    nl = (
        "De voorwaarden voor doorlopende inzage in het verzoek ontbreken of kloppen niet. "
        "Vraag de organisatie om een nieuw verzoek."
    )


class GrantElement(BaseModel):
    """The ``data`` of a ``kluis_grant`` element (``specs/grant.md`` §3)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")
    valid_until: Timestamp
    fetch_kid: ShortText
    encryption_kid: ShortText
    notice_uri: ShortText | None = None


def grant_element(request: Request) -> GrantElement | None:
    """The request's ``kluis_grant`` terms, or None for a one-off request.

    Raises ``grant.bad_request`` for a second element, malformed terms, or a credential query
    whose id cannot name an item at the relay.
    """
    info = request.parameters.get("verifier_info")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except (ValueError, RecursionError):
            return None  # the request parser already judged verifier_info
    if not isinstance(info, list):
        return None
    ours = [e for e in info if isinstance(e, Mapping) and e.get("format") == GRANT_FORMAT]
    if not ours:
        return None
    if len(ours) > 1 or "credential_ids" in ours[0]:
        raise BadGrantRequest(f"{SPEC} §3: one {GRANT_FORMAT} element for the whole request")
    data = ours[0].get("data")
    if not isinstance(data, Mapping):
        raise BadGrantRequest(f"{SPEC} §3: data is a JSON object")
    try:
        element = GrantElement.model_validate_json(json.dumps(data))
    except (ValidationError, TypeError, ValueError) as problem:
        where = "data"
        if isinstance(problem, ValidationError):
            first = problem.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "data"
        raise BadGrantRequest(f"{SPEC} §3: {where} is not valid") from None
    for query in request.dcql.credentials:
        if not _ITEM.match(query.id):
            raise BadGrantRequest(f"{SPEC} §3: credential query id {query.id[:40]!r} is no "
                                  "item id")
    return element


def is_grant_request(request: Request) -> bool:
    """Whether ``request`` carries a ``kluis_grant`` element (well formed or not)."""
    info = request.parameters.get("verifier_info")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except (ValueError, RecursionError):
            return False
    return isinstance(info, list) and any(
        isinstance(e, Mapping) and e.get("format") == GRANT_FORMAT for e in info)


def format_grant_element(*, valid_until: datetime, fetch_kid: str, encryption_kid: str,
                         notice_uri: str | None = None) -> dict[str, Any]:
    """The ``verifier_info`` element an agency puts in a grant request."""
    element = GrantElement(valid_until=valid_until, fetch_kid=fetch_kid,
                           encryption_kid=encryption_kid, notice_uri=notice_uri)
    return {"format": GRANT_FORMAT, "data": element.model_dump(mode="json", exclude_none=True)}
