"""Edits of a JSON document at a path, for tables of malformed inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Edit = Callable[[Any], None]


def _parent(doc: Any, path: Sequence[Any]) -> Any:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def set_at(path: Sequence[Any], value: Any) -> Edit:
    """An edit that sets ``path`` (keys and indices) to ``value``."""

    def change(doc: Any) -> None:
        _parent(doc, path)[path[-1]] = value

    return change


def delete_at(path: Sequence[Any]) -> Edit:
    """An edit that removes the member or element at ``path``."""

    def change(doc: Any) -> None:
        del _parent(doc, path)[path[-1]]

    return change
