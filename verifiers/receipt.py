"""Receipts: an agency's signed statement of what it received from a citizen, and why.

When a verifying agency accepts a presentation it returns a receipt: which presentation
(its SHA-256), which claims, for which purpose and legal basis, how long it keeps them, and
which processing activity in its register covers it. The wallet verifies the receipt and
keeps it beside the release in the consent log; the agency keeps the same receipt in its own
log. An auditor reconciles the two sides by ``presentation_hash``. Format and checks:
``specs/receipt.md``; payload schema: ``specs/schemas/receipt.schema.json``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from calendar import monthrange
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import rfc8785
from jwcrypto.jwk import JWK
from pydantic import AfterValidator, Field, StringConstraints, ValidationError, model_validator

from vault import InvalidInput, KluisError, VerificationFailed
from verifiers._document import (
    ConcretePathField,
    DpvPurpose,
    FullDate,
    HttpsUrl,
    Identifier,
    LegalBasis,
    ShortText,
    Strict,
    Timestamp,
    check_no_null_members,
    format_timestamp,
)
from verifiers._jose import JoseFailure, Reason, b64url, sign_compact, unb64url, verify_compact
from verifiers.claim_path import ClaimPath
from verifiers.jcs import canonicalize
from verifiers.trustlist import Agency

TYP = "kluis-receipt+jwt"
MAX_TOKEN_LENGTH = 64 * 1024
SPEC = "specs/receipt.md"

# ISO 8601 durations as RFC 3339 Appendix A writes them, e.g. P2Y, P6M, P1Y6M, P30D, P4W.
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d{1,4})W|(?=\d|T\d)(?:(?P<years>\d{1,4})Y)?(?:(?P<months>\d{1,4})M)?"
    r"(?:(?P<days>\d{1,5})D)?(?:T(?=\d)(?:(?P<hours>\d{1,6})H)?(?:(?P<minutes>\d{1,6})M)?"
    r"(?:(?P<seconds>\d{1,8})S)?)?)"
)


class Malformed(InvalidInput):
    code = "receipt.malformed"
    en = "The receipt is damaged or not in the expected form. Ask the organisation for a new one."
    nl = "Het ontvangstbewijs is beschadigd of niet in de verwachte vorm. Vraag om een nieuw."


class UnsupportedKey(InvalidInput):
    code = "receipt.unsupported_key"
    en = "This key cannot sign a receipt. Use a private P-256 or Ed25519 key."
    nl = (
        "Deze sleutel kan geen ontvangstbewijs ondertekenen. "
        "Gebruik een privé P-256- of Ed25519-sleutel."
    )


class BadAlgorithm(VerificationFailed):
    code = "receipt.bad_algorithm"
    en = "The receipt uses a signing method kluis does not accept. It cannot be trusted."
    nl = (
        "Het ontvangstbewijs gebruikt een ondertekenmethode die kluis niet accepteert. "
        "Het is niet te vertrouwen."
    )


class WrongType(VerificationFailed):
    code = "receipt.wrong_type"
    en = "This signed document is not a receipt. Check that you chose the right file."
    nl = (
        "Dit ondertekende document is geen ontvangstbewijs. "
        "Controleer of u het juiste bestand koos."
    )


class WrongKey(VerificationFailed):
    code = "receipt.wrong_key"
    en = "The receipt was signed with a key that is not the organisation's. It cannot be trusted."
    nl = (
        "Het ontvangstbewijs is ondertekend met een sleutel die niet van de organisatie is. "
        "Het is niet te vertrouwen."
    )


class BadSignature(VerificationFailed):
    code = "receipt.bad_signature"
    en = "The signature on the receipt is not valid. It cannot be trusted."
    nl = "De handtekening op het ontvangstbewijs klopt niet. Het is niet te vertrouwen."


class WrongVerifier(VerificationFailed):
    code = "receipt.wrong_verifier"
    en = "The receipt names another organisation than the one you shared your data with."
    nl = "Het ontvangstbewijs noemt een andere organisatie dan die waarmee u uw gegevens deelde."


class HashMismatch(VerificationFailed):
    code = "receipt.hash_mismatch"
    en = "The receipt is for another release than the one you sent. Keep it and report it."
    nl = (
        "Het ontvangstbewijs hoort bij een andere verstrekking dan die u verstuurde. "
        "Bewaar het en meld het."
    )


def _duration(value: str) -> str:
    if not _DURATION.fullmatch(value):
        raise ValueError("an ISO 8601 duration such as P2Y, P6M or P30D (RFC 3339 Appendix A)")
    return value


IsoDuration = Annotated[str, StringConstraints(max_length=40), AfterValidator(_duration)]
Digest = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]


class ReceiptPurpose(Strict):
    """The purpose a release was received for: the registration id and its DPV purpose."""

    id: Identifier
    dpv: DpvPurpose


class Retention(Strict):
    """How long the agency keeps what it received: a duration, a date, or both (earlier wins)."""

    duration: IsoDuration | None = None
    until: FullDate | None = None

    @model_validator(mode="after")
    def _something(self) -> Retention:
        if self.duration is None and self.until is None:
            raise ValueError("retention gives a duration, a date, or both")
        return self

    def keep_until(self, received_at: datetime) -> date:
        """The last day the data may be kept: the earlier of ``until`` and the duration's end."""
        ends = []
        if self.until is not None:
            ends.append(date.fromisoformat(self.until))
        if self.duration is not None:
            try:
                ends.append(_add_duration(received_at, self.duration).date())
            except (OverflowError, ValueError):  # beyond year 9999: no practical end
                ends.append(date.max)
        return min(ends)


class Receipt(Strict):
    """A verified receipt (the JWS payload; ``specs/receipt.md`` §2)."""

    receipt_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{22,64}$")]
    verifier: HttpsUrl
    client_id: ShortText | None = None
    request_id: ShortText
    presentation_hash: Digest
    vct: ShortText
    claims: Annotated[tuple[ConcretePathField, ...], Field(max_length=256)]
    purpose: ReceiptPurpose
    legal_basis: LegalBasis
    retention: Retention
    processing_activity: ShortText
    received_at: Timestamp


def hash_presentation(presentation: str) -> str:
    """base64url SHA-256 of the presentation string exactly as sent and received (UTF-8)."""
    return b64url(hashlib.sha256(presentation.encode("utf-8")).digest())


def issue_receipt(
    presentation: str,
    *,
    verifier: str,
    request_id: str,
    vct: str,
    claims: Sequence[ClaimPath],
    purpose: ReceiptPurpose,
    legal_basis: LegalBasis,
    retention: Retention,
    processing_activity: str,
    received_at: datetime,
    key: JWK,
    client_id: str | None = None,
) -> str:
    """A signed receipt (compact JWS, ``typ: kluis-receipt+jwt``) for ``presentation``.

    ``received_at`` is when the presentation arrived; the receipt id is random (128 bits).
    Raises ``receipt.malformed`` when a field breaks ``specs/receipt.md`` §2, and
    ``receipt.unsupported_key`` when ``key`` is not a private P-256 or Ed25519 key.
    """
    body: dict[str, Any] = {
        "receipt_id": secrets.token_urlsafe(16),
        "verifier": verifier,
        "request_id": request_id,
        "presentation_hash": hash_presentation(presentation),
        "vct": vct,
        "claims": [list(path) for path in claims],
        "purpose": purpose.model_dump(mode="json", exclude_none=True),
        "legal_basis": legal_basis.model_dump(mode="json", exclude_none=True),
        "retention": retention.model_dump(mode="json", exclude_none=True),
        "processing_activity": processing_activity,
        "received_at": format_timestamp(received_at) if received_at.tzinfo else "no time zone",
    }
    if client_id is not None:
        body["client_id"] = client_id
    try:
        receipt = Receipt.model_validate_json(json.dumps(body))
        canonical = canonicalize(receipt.model_dump(mode="json", exclude_none=True))
    except (ValidationError, rfc8785.CanonicalizationError, TypeError, ValueError) as error:
        raise Malformed(_where(error)) from None
    try:
        return sign_compact(canonical, key, typ=TYP)
    except JoseFailure as failure:
        raise UnsupportedKey(failure.detail) from None


def verify_receipt(
    token: str, verifier_key: JWK | Agency, *, expected_presentation_hash: str | None = None
) -> Receipt:
    """The receipt in ``token`` once it passes the checks of ``specs/receipt.md`` §4.

    ``verifier_key`` is the agency's public key, or its trust-list entry: then the header
    ``kid`` picks the key and the receipt's ``verifier`` must be the agency's id. Raises
    ``receipt.malformed``, ``bad_algorithm``, ``wrong_type``, ``wrong_key``, ``bad_signature``,
    ``wrong_verifier`` or ``hash_mismatch``.
    """
    key = _key(token, verifier_key)
    try:
        opened = verify_compact(token, key, typ=TYP, max_length=MAX_TOKEN_LENGTH)
    except JoseFailure as failure:
        raise _JOSE_ERRORS[failure.reason](failure.detail) from None
    receipt = _parse(opened.payload)
    if isinstance(verifier_key, Agency) and receipt.verifier != verifier_key.id:
        raise WrongVerifier(f"{SPEC} §4 step 6: verifier is not {verifier_key.id}")
    if expected_presentation_hash is not None and not hmac.compare_digest(
        receipt.presentation_hash.encode(), expected_presentation_hash.encode()
    ):
        raise HashMismatch(f"{SPEC} §4 step 7: presentation_hash differs")
    return receipt


def receipt_entry(receipt: Receipt) -> dict[str, Any]:
    """The receipt as a log entry: a JSON object ready for RFC 8785 (``specs/receipt.md`` §5).

    The same form serves the agency's receipt log and the citizen's consent log, so the two
    can be reconciled entry by entry; it holds claim names, never claim values.
    """
    return {"kind": "receipt", **receipt.model_dump(mode="json", exclude_none=True)}


_JOSE_ERRORS: dict[Reason, type[KluisError]] = {
    Reason.MALFORMED: Malformed,
    Reason.BAD_ALGORITHM: BadAlgorithm,
    Reason.WRONG_TYPE: WrongType,
    Reason.WRONG_KEY: WrongKey,
    Reason.BAD_SIGNATURE: BadSignature,
    Reason.UNSUPPORTED_KEY: WrongKey,
}


def _key(token: str, verifier_key: JWK | Agency) -> JWK:
    """The key to check ``token`` with: given, or the agency's key its header names."""
    if not isinstance(verifier_key, Agency):
        return verifier_key
    try:
        header = json.loads(unb64url(token.split(".")[0]))
        kid = header.get("kid") if isinstance(header, dict) else None
    except (JoseFailure, ValueError, RecursionError, AttributeError):
        raise Malformed("RFC 7515 §7.1: not a compact JWS") from None
    for jwk in verifier_key.jwks.keys:
        if jwk.kid == kid:
            return jwk.to_jwk()
    raise WrongKey(f"{SPEC} §4 step 3: {verifier_key.id} has no key with this kid")


def _parse(payload: bytes) -> Receipt:
    try:
        obj = json.loads(payload, object_pairs_hook=_no_duplicate_members)
        canonical = canonicalize(obj)
    except (ValueError, RecursionError, TypeError, rfc8785.CanonicalizationError):
        raise Malformed(f"{SPEC} §3: the payload is not I-JSON") from None
    if canonical != payload:
        raise Malformed(f"{SPEC} §3: the payload is not in RFC 8785 canonical form")
    if (where := check_no_null_members(obj)) is not None:
        raise Malformed(f"{SPEC} §2: {where} is null; leave absent members out")
    try:
        return Receipt.model_validate_json(payload)
    except ValidationError as error:
        raise Malformed(_where(error)) from None


def _no_duplicate_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member name")
    return dict(pairs)


def _where(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "receipt"
        return f"{SPEC} §2: {where}: {first['msg']}"
    return f"{SPEC} §2: the receipt holds values JSON cannot carry"


def _add_duration(start: datetime, duration: str) -> datetime:
    """``start`` plus an ISO 8601 duration: years and months on the calendar (clamping the
    day, so 31 January + P1M is 28/29 February), the rest as exact time."""
    match = _DURATION.fullmatch(duration)
    if match is None:
        raise Malformed(f"{SPEC} §2: not a duration")
    part = {name: int(value or 0) for name, value in match.groupdict().items()}
    months = start.month - 1 + part["months"] + 12 * part["years"]
    year, month = start.year + months // 12, months % 12 + 1
    day = min(start.day, monthrange(year, month)[1])
    moved = start.replace(year=year, month=month, day=day)
    return moved + timedelta(
        weeks=part["weeks"],
        days=part["days"],
        hours=part["hours"],
        minutes=part["minutes"],
        seconds=part["seconds"],
    )
