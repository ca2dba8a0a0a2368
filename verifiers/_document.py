"""Field types shared by kluis's own signed JSON documents (trust lists, receipts).

These are pydantic types for the boundary: strict (no coercion: ``"1"`` is not ``1``), frozen,
unknown members refused, and ``null`` never stands in for a missing member, so a document has
one meaning and one canonical (RFC 8785) byte form.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
)

from verifiers.claim_path import MAX_COMPONENT_LENGTH, MAX_PATH_LENGTH

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class Strict(BaseModel):
    """Base of every document model: strict, frozen and closed.

    Validate documents from their JSON bytes (``model_validate_json``) after
    :func:`check_no_null_members`: in JSON mode strict arrays become tuples.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


def check_no_null_members(obj: object) -> str | None:
    """Where ``obj`` has an object member set to ``null`` (None when nowhere).

    kluis documents leave an absent member out instead, so a document has one meaning and one
    canonical form; ``null`` appears only as an array element (claims path pointers).
    """
    stack: list[tuple[str, object]] = [("", obj)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                if value is None:
                    return f"{where}.{name}".lstrip(".")
                stack.append((f"{where}.{name}", value))
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(node))
    return None


def _timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a time must say its time zone")
        return value.astimezone(UTC).replace(microsecond=0)
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise ValueError("a time is written YYYY-MM-DDThh:mm:ssZ (RFC 3339, UTC, whole seconds)")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError("not a real date and time") from None


def format_timestamp(value: datetime) -> str:
    """``value`` as ``YYYY-MM-DDThh:mm:ssZ`` in UTC, the one form the documents use."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime, BeforeValidator(_timestamp), PlainSerializer(format_timestamp, return_type=str)
]
"""An RFC 3339 UTC time with whole seconds, e.g. ``2027-03-01T09:00:00Z``."""


def _full_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("not a real date") from None
    return value


FullDate = Annotated[
    str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$"), AfterValidator(_full_date)
]
"""A calendar date ``YYYY-MM-DD`` (RFC 3339 full-date) that exists."""


def _https_url(value: str) -> str:
    if not value.startswith("https://") or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("an https URL, without spaces")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("not a URL") from None
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.fragment:
        raise ValueError("an https URL with a host, without user info or fragment")
    return value


HttpsUrl = Annotated[str, StringConstraints(max_length=512), AfterValidator(_https_url)]
"""An https URL such as an agency id (it is the ``iss`` of the credentials the agency issues)."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]


def _claim_path(value: tuple[str | int | None, ...]) -> tuple[str | int | None, ...]:
    if not value or len(value) > MAX_PATH_LENGTH:
        raise ValueError(f"a claims path pointer has 1 to {MAX_PATH_LENGTH} components")
    for component in value:
        if isinstance(component, int) and component < 0:
            raise ValueError("array indices in a claims path pointer are non-negative")
        if isinstance(component, str) and len(component) > MAX_COMPONENT_LENGTH:
            raise ValueError("a claims path component is too long")
    return value


ClaimPathField = Annotated[tuple[str | int | None, ...], AfterValidator(_claim_path)]
"""A claims path pointer (OpenID4VP 1.0 §7) inside a document."""


def _concrete(value: tuple[str | int | None, ...]) -> tuple[str | int | None, ...]:
    if any(component is None for component in value):
        raise ValueError("a received claim is named by a path without null")
    return value


ConcretePathField = Annotated[ClaimPathField, AfterValidator(_concrete)]
"""A claims path that names one claim (keys and indices only)."""


class LocalizedText(Strict):
    """The same words in Dutch and English."""

    nl: Text
    en: Text

    def text(self, lang: str) -> str:
        """The words in ``lang`` (``"en"``; anything else gives Dutch, kluis's default)."""
        return self.en if lang == "en" else self.nl


class LegalBasis(Strict):
    """Why an agency may process the data, in its own words, with an optional reference
    (e.g. a link to the article of law on wetten.overheid.nl)."""

    nl: Text
    en: Text
    reference: ShortText | None = None

    def text(self, lang: str) -> str:
        """The words in ``lang`` (Dutch unless ``"en"``)."""
        return self.en if lang == "en" else self.nl


_DPV = re.compile(
    r"dpv:[A-Z][A-Za-z0-9]{1,100}|https://w3id\.org/dpv(/[a-z0-9-]+)*#[A-Z][A-Za-z0-9]{1,100}"
)


def _dpv(value: str) -> str:
    if not _DPV.fullmatch(value):
        raise ValueError("a W3C DPV purpose: dpv:Term or https://w3id.org/dpv#Term")
    return value


DpvPurpose = Annotated[str, AfterValidator(_dpv)]
"""A W3C Data Privacy Vocabulary purpose, e.g. ``dpv:ServiceProvision``."""
