"""Which language the CLI speaks, and picking a sentence in it.

Every sentence a citizen reads is written at the call site in both languages, so a reviewer
sees the Dutch and the English side by side: ``say(en="...", nl="...")``.
"""

from __future__ import annotations

import os

from vault import Lang

_current: Lang = "nl"


def from_locale(environ: dict[str, str] | None = None) -> Lang:
    """The language of the user's locale: English for ``en*``, Dutch otherwise (our default)."""
    env = os.environ if environ is None else environ
    for var in ("KLUIS_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(var, "").lower()
        if value.startswith("en"):
            return "en"
        if value.startswith("nl"):
            return "nl"
    return "nl"


def set_lang(lang: Lang) -> None:
    global _current
    _current = lang


def lang() -> Lang:
    return _current


def say(*, en: str, nl: str, **fields: object) -> str:
    """The sentence in the current language, with ``{fields}`` filled in."""
    text = nl if _current == "nl" else en
    return text.format(**fields) if fields else text
