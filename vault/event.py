"""Change events: the seam where the consent log (and anything else that must record vault
changes) hooks in.

Every put, replace and remove of an item produces one ``ItemEvent``. The vault calls each
subscriber with the event and the open ``Transaction`` *inside* the transaction that makes the
change, before it commits. A subscriber writes its own rows (e.g. a log entry) through that
handle, so the change and its record commit together or not at all: if a subscriber raises,
the change is rolled back and the error reaches the caller.

An event carries no content, only its size and SHA-256, so a log built on it never copies
personal values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from vault.database import Transaction
from vault.item import ItemInfo, ItemType


class EventKind(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


@dataclass(frozen=True)
class ItemEvent:
    """One change to one item. For ``removed``, size and digest are of the removed content."""

    kind: EventKind
    name: str
    item_type: ItemType
    media_type: str | None
    size: int
    sha256: str
    time: datetime

    @classmethod
    def of(cls, kind: EventKind, info: ItemInfo, time: datetime) -> ItemEvent:
        return cls(kind, info.name, info.type, info.media_type, info.size, info.sha256, time)


Subscriber = Callable[[ItemEvent, Transaction], None]
