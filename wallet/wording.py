"""Plain-language pieces in Dutch and English that the consent screens share: a sentence in
both languages, dates written out, lists of labels, and the names of credential types.

The core writes what a citizen reads in both languages at once (B1 level), so the CLI and the
wallet page show the same words; the shell only picks the language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from vault import KluisError, Lang
from verifiers.credential_type import credential_type

_MONTHS = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}


@dataclass(frozen=True)
class Text:
    """The same words in Dutch and English."""

    nl: str
    en: str

    def text(self, lang: Lang) -> str:
        """The words in ``lang``."""
        return self.en if lang == "en" else self.nl

    def json(self) -> dict[str, str]:
        return {"nl": self.nl, "en": self.en}


def format_date(day: date, lang: Lang) -> str:
    """``3 maart 2029`` / ``3 March 2029``."""
    return f"{day.day} {_MONTHS[lang][day.month - 1]} {day.year}"


def join_labels(labels: Sequence[Text], lang: Lang) -> str:
    """``a, b en c`` / ``a, b and c``."""
    words = [label.text(lang) for label in labels]
    if len(words) <= 1:
        return "".join(words)
    last = " en " if lang == "nl" else " and "
    return ", ".join(words[:-1]) + last + words[-1]


def type_name(vct: str) -> Text:
    """The name of a credential type (``Persoonsgegevens`` / ``Personal data``); a type kluis
    does not know is named by its ``vct``."""
    try:
        names = credential_type(vct).names
    except KluisError:
        return Text(nl=vct, en=vct)
    return Text(nl=names.get("nl", vct), en=names.get("en", vct))
