"""Vault items: typed records (attribute, document, note) with their metadata, and the rules
for names, sources, media types and sizes.

An item's name is what a citizen types and reads back, so it must be unambiguous on any
screen and safe to use as a file name: it is NFC-normalised (the same letters always give the
same name), at most MAX_NAME characters, without path separators, control or formatting
characters, and without spaces at either end.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from vault.errors import InvalidInput, NotFound

MAX_NAME = 200
MAX_SOURCE = 200
MAX_ATTRIBUTE_BYTES = 64 * 1024
MAX_NOTE_BYTES = 1024 * 1024
DEFAULT_MEDIA_TYPE = "application/octet-stream"

# Categories refused in names and sources: control (Cc), format (Cf: e.g. right-to-left
# overrides that make a name display as another), surrogates, private use, unassigned, and
# line/paragraph separators.
_REFUSED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# RFC 6838 §4.2 type/subtype names, with optional parameters (RFC 9110 §8.3.1).
_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"  # noqa: S105 - a regex, not a password
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(\"[^\"\\\x00-\x1f]*\"|{_TOKEN}))*")


class ItemType(StrEnum):
    ATTRIBUTE = "attribute"
    DOCUMENT = "document"
    NOTE = "note"


class BadName(InvalidInput):
    code = "vault.bad_name"
    en = (
        "This name cannot be used. Choose a name of 1 to 200 characters, without / or \\,"
        " control characters, or spaces at the start or end."
    )
    nl = (
        "Deze naam kan niet. Kies een naam van 1 tot 200 tekens, zonder / of \\, stuurtekens,"
        " of spaties aan het begin of eind."
    )


class BadSource(InvalidInput):
    code = "vault.bad_source"
    en = "The source must be 1 to 200 characters without control characters."
    nl = "De bron moet 1 tot 200 tekens zijn, zonder stuurtekens."


class BadMediaType(InvalidInput):
    code = "vault.bad_media_type"
    en = "'{media_type}' is not a media type. Use a form like application/pdf or image/png."
    nl = "'{media_type}' is geen mediatype. Gebruik een vorm als application/pdf of image/png."


class BadValue(InvalidInput):
    code = "vault.bad_value"
    en = (
        "This text cannot be stored: it is too long (up to 64 KiB for an attribute, 1 MiB for a "
        "note) or not valid Unicode."
    )
    nl = (
        "Deze tekst kan niet worden opgeslagen: hij is te lang (tot 64 KiB voor een kenmerk, 1 MiB "
        "voor een notitie) of geen geldige Unicode."
    )


class NoSuchItem(NotFound):
    code = "vault.no_such_item"
    en = "There is no item called '{name}' in your vault. See 'kluis vault list' for the names."
    nl = (
        "Er is geen gegeven met de naam '{name}' in uw kluis. Zie 'kluis vault list' voor de namen."
    )


class NotADocument(InvalidInput):
    code = "vault.not_a_document"
    en = (
        "'{name}' is not a document, so it has no file content. Use 'kluis vault get' without "
        "--out."
    )
    nl = (
        "'{name}' is geen document en heeft dus geen bestand. Gebruik 'kluis vault get' zonder "
        "--out."
    )


@dataclass(frozen=True)
class ItemInfo:
    """What is known about an item without reading its content.

    ``sha256`` is the hex SHA-256 of the content (the UTF-8 text of an attribute or note, the
    bytes of a document); ``size`` its length in bytes; ``media_type`` is set for documents.
    """

    name: str
    type: ItemType
    media_type: str | None
    source: str
    added: datetime
    changed: datetime
    size: int
    sha256: str


@dataclass(frozen=True)
class Item(ItemInfo):
    """An item with its text; ``text`` is None for a document (read it as a stream)."""

    text: str | None = None


def _refused_character(text: str) -> str | None:
    for char in text:
        if unicodedata.category(char) in _REFUSED:
            return f"U+{ord(char):04X}"
    return None


def parse_name(name: str) -> str:
    """The NFC form of ``name`` if it is a valid item name. Raises BadName saying why not."""
    if not isinstance(name, str):
        raise BadName("not text")
    if (char := _refused_character(name)) is not None:
        raise BadName(f"refused character {char}")
    normal = unicodedata.normalize("NFC", name)
    if not normal:
        raise BadName("empty")
    if len(normal) > MAX_NAME:
        raise BadName(f"longer than {MAX_NAME} characters")
    if "/" in normal or "\\" in normal:
        raise BadName("path separator")
    if normal != normal.strip():
        raise BadName("space at the start or end")
    return normal


def parse_source(source: str) -> str:
    """``source`` (NFC) if it is a valid item source. Raises BadSource."""
    if not isinstance(source, str):
        raise BadSource()
    normal = unicodedata.normalize("NFC", source).strip()
    if not normal or len(normal) > MAX_SOURCE or _refused_character(normal) is not None:
        raise BadSource()
    return normal


def parse_media_type(media_type: str) -> str:
    """``media_type`` if it has the form type/subtype[;param=value]. Raises BadMediaType."""
    if (
        not isinstance(media_type, str)
        or not _MEDIA_TYPE.fullmatch(media_type)
        or len(media_type) > 255
    ):
        raise BadMediaType(media_type=str(media_type)[:80])
    return media_type


def encode_text(text: str, *, limit: int) -> bytes:
    """The UTF-8 bytes of an attribute's or note's text. Raises BadValue."""
    if not isinstance(text, str):
        raise BadValue("not text")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadValue("not valid Unicode") from None
    if len(data) > limit:
        raise BadValue(f"longer than {limit} bytes")
    return data


def format_time(moment: datetime) -> str:
    """A stored timestamp: UTC, microseconds, ``Z`` (e.g. ``2025-11-25T01:26:00.000000Z``)."""
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """The moment in a stored timestamp."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
