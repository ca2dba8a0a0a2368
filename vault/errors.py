"""The one error hierarchy of kluis.

Every failure a user can meet is a ``KluisError`` subclass with a stable dotted ``code``
(listed in ``specs/errors.md``) and a plain-language message in Dutch and English that says
what happened and what to do next. The families below decide how a shell reacts: the CLI
maps each to an exit code, the server to an HTTP status and an RFC 9457 problem document.

A concrete error sets ``code``, ``en`` and ``nl``. The messages may name fields given as
keyword arguments (``NoSuchItem(name="bsn")`` for ``"No item called '{name}'."``).
``detail`` is for developers: it names the spec rule a public artefact breaks. Errors about
secrets carry no detail, so they never say more than that opening failed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Lang = Literal["nl", "en"]


class _Blank(dict[str, Any]):
    """Leaves an unknown placeholder visible instead of raising while formatting a message."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class KluisError(Exception):
    """Root of every kluis error. Catch this to catch them all."""

    code: ClassVar[str] = ""
    en: ClassVar[str] = ""
    nl: ClassVar[str] = ""

    def __init__(self, detail: str = "", **fields: Any) -> None:
        self.detail = detail
        self.fields = fields
        super().__init__(f"{self.code}: {detail}" if detail else self.code)

    def message(self, lang: Lang = "nl") -> str:
        """The citizen-facing sentence in ``lang``, with its fields filled in."""
        template = self.nl if lang == "nl" else self.en
        return template.format_map(_Blank(self.fields))


class InvalidInput(KluisError):
    """The input is malformed, too large, or out of range. Fix the input and try again."""


class NotFound(KluisError):
    """What was asked for does not exist (profile, item, request, key)."""


class Conflict(KluisError):
    """The operation clashes with the current state (already exists, busy, already decided)."""


class NotPermitted(KluisError):
    """The caller may not do this (wrong passphrase, not registered, revoked, over-asking)."""


class VerificationFailed(KluisError):
    """A signature, digest, proof or policy check on an artefact failed."""


class Unavailable(KluisError):
    """A service or resource could not be reached; trying again later may work."""


FAMILIES: tuple[type[KluisError], ...] = (
    InvalidInput,
    NotFound,
    Conflict,
    NotPermitted,
    VerificationFailed,
    Unavailable,
)


def family_of(error: KluisError) -> type[KluisError]:
    """The family an error belongs to (``KluisError`` itself for an unfamilied error)."""
    for family in FAMILIES:
        if isinstance(error, family):
            return family
    return KluisError
