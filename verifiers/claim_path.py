"""Claims path pointers: the one way kluis names a claim inside a credential.

A claims path pointer is a non-empty array of strings (object keys), ``null`` (every element
of an array) and non-negative integers (one array element), applied from the root of the
credential's processed claims (OpenID4VP 1.0 §7; SD-JWT VC draft-18 §4.6.1 uses the same
syntax). DCQL queries, trust-list registrations and credential type metadata all name claims
this way, so they can be compared with each other.

A *concrete* path has no ``null``: it names exactly one claim, as :func:`select` returns it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vault import KluisError

ClaimPath = tuple[str | int | None, ...]
"""A claims path pointer; ``None`` stands for JSON ``null`` (all elements of an array)."""

ConcretePath = tuple[str | int, ...]
"""A path that names one claim: only keys and indices."""

MAX_PATH_LENGTH = 16
"""Longer pointers are refused: no credential of ours nests that deep (bounds the work)."""

MAX_COMPONENT_LENGTH = 1024


@dataclass(frozen=True)
class SelectedClaim:
    """One claim a pointer selected: where it is, and its value as the holder knows it."""

    path: ConcretePath
    value: Any


def parse_claim_path(
    obj: object,
    *,
    fail: type[KluisError],
    too_large: type[KluisError] | None = None,
    max_length: int = MAX_PATH_LENGTH,
) -> ClaimPath:
    """The pointer in ``obj`` (a JSON array) as a tuple.

    Raises ``fail`` (the caller's own error class) with the rule broken in its detail when
    ``obj`` is not a non-empty array of strings, nulls and non-negative integers
    (OpenID4VP 1.0 §7); raises ``too_large`` (default ``fail``) when it has more than
    ``max_length`` components or a component longer than ``MAX_COMPONENT_LENGTH``.
    """
    over = too_large or fail
    if not isinstance(obj, list | tuple) or not obj:
        raise fail("OpenID4VP 1.0 §7: a claims path pointer is a non-empty array")
    if len(obj) > max_length:
        raise over(f"kluis limit: a claims path pointer has at most {max_length} components")
    for component in obj:
        if component is None:
            continue
        if isinstance(component, bool) or not isinstance(component, str | int):
            raise fail("OpenID4VP 1.0 §7: components are strings, null or non-negative integers")
        if isinstance(component, int) and component < 0:
            raise fail("OpenID4VP 1.0 §7: array indices are non-negative")
        if isinstance(component, str) and len(component) > MAX_COMPONENT_LENGTH:
            raise over(
                f"kluis limit: path components have at most {MAX_COMPONENT_LENGTH} characters"
            )
    return tuple(obj)


def format_claim_path(path: ClaimPath) -> list[str | int | None]:
    """The pointer as a JSON array (the inverse of :func:`parse_claim_path`)."""
    return list(path)


def select(pointer: ClaimPath, claims: Mapping[str, Any]) -> list[SelectedClaim]:
    """The claims ``pointer`` selects in ``claims``, in document order.

    Follows OpenID4VP 1.0 §7.1.1 step by step. Where that section says "abort processing and
    return an error" (a key applied to a non-object, an index or ``null`` to a non-array),
    this returns an empty list: for matching, a pointer that does not fit the credential
    selects nothing, just like a pointer to a missing key. Never raises.
    """
    if not isinstance(claims, Mapping) or not pointer:
        return []
    selection: list[tuple[ConcretePath, Any]] = [((), claims)]
    for component in pointer:
        selection = _step(selection, component)
        if not selection:
            return []
    return [SelectedClaim(path, value) for path, value in selection]


def _step(
    selection: list[tuple[ConcretePath, Any]], component: str | int | None
) -> list[tuple[ConcretePath, Any]]:
    """One component of §7.1.1 step 2 applied to the current selection ([] on an error)."""
    chosen: list[tuple[ConcretePath, Any]] = []
    for path, element in selection:
        if isinstance(component, str):
            if not isinstance(element, Mapping):
                return []
            if component in element:
                chosen.append(((*path, component), element[component]))
        elif component is None:
            if not isinstance(element, list):
                return []
            chosen.extend(((*path, index), item) for index, item in enumerate(element))
        elif isinstance(component, int) and not isinstance(component, bool) and component >= 0:
            if not isinstance(element, list):
                return []
            if component < len(element):
                chosen.append(((*path, component), element[component]))
        else:
            return []
    return chosen


def covers(allowed: ClaimPath, requested: ClaimPath) -> bool:
    """Whether asking for ``requested`` stays within what ``allowed`` permits.

    A pointer covers itself and everything below it: ``["address"]`` covers
    ``["address", "postal_code"]``, not the other way round. A ``null`` in ``allowed`` covers
    any index and ``null``; an index in ``allowed`` covers only that index, so a request for
    every element (``null``) is not covered by permission for one.
    """
    if len(allowed) > len(requested):
        return False
    for mine, theirs in zip(allowed, requested, strict=False):
        if mine is None:
            if isinstance(theirs, str):
                return False
        elif type(mine) is not type(theirs) or mine != theirs:
            return False
    return True


def is_prefix(prefix: Sequence[str | int | None], path: Sequence[str | int | None]) -> bool:
    """Whether ``path`` starts with ``prefix`` (a path is a prefix of itself)."""
    return len(prefix) <= len(path) and all(
        type(a) is type(b) and a == b for a, b in zip(prefix, path, strict=False)
    )


def path_text(path: ClaimPath) -> str:
    """A short reading of a path for messages: ``address.street_address``, ``degrees[*].type``."""
    text = ""
    for component in path:
        if component is None:
            text += "[*]"
        elif isinstance(component, int):
            text += f"[{component}]"
        else:
            text += f".{component}" if text else component
    return text


def sort_key(path: ClaimPath) -> tuple[tuple[int, int, str], ...]:
    """A total order on paths (keys, indices and nulls do not compare in Python)."""
    return tuple(
        (0, 0, "") if c is None else (1, c, "") if isinstance(c, int) else (2, 0, c) for c in path
    )
