"""Why a verifier asks: kluis's ``verifier_info`` element (format ``kluis_purpose``).

OpenID4VP 1.0 §5.1 lets a verifier attach attestations about itself to a request in the
standard ``verifier_info`` parameter; kluis carries there what every request must say before
the citizen sees it (DESIGN.md, "Credentials and protocols"): the purpose (its id in the
verifier's trust-list registration, a W3C DPV term and the agency's own words), the legal
basis, the retention, the processing activity in the agency's register, and, in the file
form, the expiry. The element is specified in ``specs/request.md`` §3. A request without it,
or without one of the four, is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from vault import InvalidInput, KluisError
from verifiers._document import (
    DpvPurpose,
    Identifier,
    LegalBasis,
    LocalizedText,
    ShortText,
    Timestamp,
)
from verifiers.receipt import IsoDuration
from verifiers.receipt import Retention as ReceiptRetention

PURPOSE_FORMAT = "kluis_purpose"
SPEC = "specs/request.md"
MAX_VERIFIER_INFO = 16


class NoPurpose(InvalidInput):
    code = "request.no_purpose"
    en = "The request does not say what your data is for. kluis refuses requests without one."
    nl = (
        "Het verzoek zegt niet waarvoor uw gegevens nodig zijn. kluis weigert verzoeken "
        "zonder doel."
    )


class BadPurpose(InvalidInput):
    code = "request.bad_purpose"
    en = (
        "The request's purpose, legal basis or retention is not written correctly. "
        "Ask the organisation for a new request."
    )
    nl = (
        "Het doel, de grondslag of de bewaartermijn in het verzoek is niet goed opgesteld. "
        "Vraag de organisatie om een nieuw verzoek."
    )


class NoLegalBasis(InvalidInput):
    code = "request.no_legal_basis"
    en = "The request does not give the legal basis for asking. kluis refuses it."
    nl = "Het verzoek noemt de wettelijke grondslag niet. kluis weigert het."


class NoRetention(InvalidInput):
    code = "request.no_retention"
    en = "The request does not say how long your data will be kept. kluis refuses it."
    nl = "Het verzoek zegt niet hoe lang uw gegevens bewaard worden. kluis weigert het."


class NoProcessingActivity(InvalidInput):
    code = "request.no_processing_activity"
    en = "The request does not name the organisation's processing activity. kluis refuses it."
    nl = (
        "Het verzoek noemt de verwerking in het register van de organisatie niet. "
        "kluis weigert het."
    )


# Unknown members are ignored, as for every other part of an OpenID4VP request (§5), so a
# later version of the element can add members without breaking older wallets.
_OPEN = ConfigDict(strict=True, frozen=True, extra="ignore")


class RequestRetention(BaseModel):
    """How long the verifier keeps what it receives: an ISO 8601 duration counted from the
    moment it receives it, with the agency's words for it."""

    model_config = _OPEN
    duration: IsoDuration
    description: LocalizedText | None = None

    def keep_until(self, received: datetime) -> date:
        """The last day the data may be kept when it is received at ``received``."""
        return ReceiptRetention(duration=self.duration).keep_until(received)


class Purpose(BaseModel):
    """The ``data`` of a ``kluis_purpose`` element (``specs/request.md`` §3)."""

    model_config = _OPEN
    purpose_id: Identifier
    dpv: DpvPurpose
    description: LocalizedText
    legal_basis: LegalBasis
    retention: RequestRetention
    processing_activity: ShortText
    expires_at: Timestamp | None = None


_REQUIRED: tuple[tuple[tuple[str, ...], type[KluisError]], ...] = (
    (("purpose_id", "dpv", "description"), NoPurpose),
    (("legal_basis",), NoLegalBasis),
    (("retention",), NoRetention),
    (("processing_activity",), NoProcessingActivity),
)


def parse_purpose(verifier_info: object) -> Purpose:
    """The purpose in a request's ``verifier_info`` (the parsed JSON array, or None).

    Exactly one element has ``format`` ``kluis_purpose``; other formats are left alone
    (OpenID4VP 1.0 §5.1 leaves them to the wallet). Raises ``request.no_purpose`` (no element,
    or no purpose in it), ``request.no_legal_basis``, ``request.no_retention``,
    ``request.no_processing_activity``, and ``request.bad_purpose`` for anything malformed.
    """
    if verifier_info is None:
        raise NoPurpose(f"{SPEC} §3: verifier_info with a {PURPOSE_FORMAT} element")
    if not isinstance(verifier_info, list) or not verifier_info:
        raise BadPurpose("OpenID4VP 1.0 §5.1: verifier_info is a non-empty array")
    if len(verifier_info) > MAX_VERIFIER_INFO:
        raise BadPurpose(f"kluis limit: at most {MAX_VERIFIER_INFO} verifier_info elements")
    ours = [
        item
        for item in verifier_info
        if isinstance(item, Mapping) and item.get("format") == PURPOSE_FORMAT
    ]
    if not ours:
        raise NoPurpose(f"{SPEC} §3: no {PURPOSE_FORMAT} element in verifier_info")
    if len(ours) > 1:
        raise BadPurpose(f"{SPEC} §3: exactly one {PURPOSE_FORMAT} element")
    if "credential_ids" in ours[0]:
        raise BadPurpose(f"{SPEC} §3: the purpose covers the whole request (no credential_ids)")
    data = ours[0].get("data")
    if not isinstance(data, Mapping):
        raise BadPurpose(f"{SPEC} §3: data is a JSON object")
    for names, error in _REQUIRED:
        if any(name not in data for name in names):
            raise error(f"{SPEC} §3: {', '.join(names)} required")
    return _validated(data)


def _validated(data: Mapping[str, Any]) -> Purpose:
    try:
        return Purpose.model_validate_json(json.dumps(data))
    except (ValidationError, TypeError, ValueError) as problem:
        where = "data"
        if isinstance(problem, ValidationError):
            first = problem.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "data"
        raise BadPurpose(f"{SPEC} §3: {where} is not valid") from None


def format_purpose(purpose: Purpose) -> dict[str, Any]:
    """The ``verifier_info`` element for ``purpose`` (what a verifier puts in a request)."""
    return {"format": PURPOSE_FORMAT, "data": purpose.model_dump(mode="json", exclude_none=True)}
