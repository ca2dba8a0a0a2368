"""Waking long-poll and event-stream readers of a mailbox when a message arrives.

Within one process a post rings the mailbox's bell and its waiting readers wake at once.
Posts taken by another node ring no bell here, so readers also wake every poll interval and
look in the store: the store, not the bell, is the truth.
"""

from __future__ import annotations

import asyncio
import weakref


class Doorbell:
    """Per-key wake-ups for coroutines of one event loop (not thread-safe: ring on the loop).

    Take a ``ticket`` *before* looking in the store, then ``wait`` on it: a ring that lands
    between the look and the wait is not lost, because it sets the ticket already held.
    """

    def __init__(self) -> None:
        # Weak: a bell nobody waits on disappears by itself.
        self._bells: weakref.WeakValueDictionary[str, asyncio.Event] = weakref.WeakValueDictionary()

    def ticket(self, key: str) -> asyncio.Event:
        bell = self._bells.get(key)
        if bell is None:
            bell = asyncio.Event()
            self._bells[key] = bell
        return bell

    def ring(self, key: str) -> None:
        bell = self._bells.pop(key, None)
        if bell is not None:
            bell.set()

    @staticmethod
    async def wait(ticket: asyncio.Event, timeout: float) -> bool:
        """True when rung within ``timeout`` seconds, False when the time ran out."""
        try:
            await asyncio.wait_for(ticket.wait(), timeout=max(0.0, timeout))
        except TimeoutError:
            return False
        return True
