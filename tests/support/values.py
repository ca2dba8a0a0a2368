"""Whether a claim value shows in a log line or a story.

Log entries carry random identifiers and commitments (hex and base64url). A short value such
as "2026" turns up inside one of those by chance about once in a few thousand runs, so a plain
substring check would fail now and then on a line that is right. A leaked value stands on its
own: as a JSON value, or as a word in a sentence, never inside a longer run of id characters.
"""

from __future__ import annotations

import re

_ID_CHARACTER = r"[0-9A-Za-z_-]"


def shows_value(text: str | bytes, value: str) -> bool:
    """True when ``value`` appears in ``text`` other than inside a longer identifier."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    pattern = rf"(?<!{_ID_CHARACTER}){re.escape(value)}(?!{_ID_CHARACTER})"
    return re.search(pattern, text) is not None
