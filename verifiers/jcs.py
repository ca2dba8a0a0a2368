"""RFC 8785 JSON Canonicalization (JCS), fast for the JSON kluis signs and hashes.

The pure-Python ``rfc8785`` package is exact but slow (half a millisecond for a request);
``orjson`` with sorted keys writes the very same bytes for JSON without floats, with integers
within ±(2**53 - 1) and without characters beyond the Basic Multilingual Plane (RFC 8785 sorts
keys by UTF-16 code units, which differs from code-point order only there; it formats numbers
as ECMAScript does, which for such integers is plain decimal). ``canonicalize`` takes the
fast path for exactly those values and hands everything else to ``rfc8785``, so its output
and its errors are always those of RFC 8785 (checked against ``rfc8785`` by hypothesis).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1
_SORT = orjson.OPT_SORT_KEYS
_BEYOND_BMP = re.compile(rb"[\xf0-\xf4]")  # UTF-8 lead bytes of code points above U+FFFF


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value`` (dicts with str keys, lists, str, int, float, bool,
    None). Raises what ``rfc8785.dumps`` raises for a value RFC 8785 cannot serialize
    (``rfc8785.CanonicalizationError``, ``TypeError``, ``ValueError``, ``RecursionError``)."""
    if _plain(value, 0):
        try:
            fast = orjson.dumps(value, option=_SORT)
        except orjson.JSONEncodeError:  # e.g. a lone surrogate: let rfc8785 say what it says
            fast = None
        if fast is not None and (fast.isascii() or not _BEYOND_BMP.search(fast)):
            return fast
    return bytes(rfc8785.dumps(value))


def _plain(value: Any, depth: int) -> bool:
    """True for JSON that orjson writes as RFC 8785 does: no floats, safe integers, string
    keys, and not nested deeper than Python's recursion would allow ``rfc8785``."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if depth > 200:
        return False
    if kind is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    if kind is list:
        return all(_plain(v, depth + 1) for v in value)
    return False

