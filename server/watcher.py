"""Waiting for mail: the relay's long-poll and event-stream logic, without HTTP.

A ``Watcher`` wraps the (blocking) ``Relay`` for an event loop: store calls run in worker
threads, posts ring the mailbox's ``Doorbell`` so readers on this node wake at once, and
readers also look in the store every ``poll_interval`` seconds to see posts taken by other
nodes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial

import anyio
import anyio.to_thread

from server.doorbell import Doorbell
from server.relay import Envelope, Message, Posted, Relay


class Watcher:
    def __init__(self, relay: Relay, *, poll_interval: float) -> None:
        self.relay = relay
        self.poll_interval = poll_interval
        self._doorbell = Doorbell()

    async def post(self, address: str, envelope: Envelope, *, now: datetime) -> Posted:
        """``Relay.post``, then wake this node's readers of that mailbox."""
        call = partial(self.relay.post, address, envelope, now=now)
        posted = await anyio.to_thread.run_sync(call)
        self._doorbell.ring(posted.mailbox_id)
        return posted

    async def wait_for(
        self, mailbox: str, *, after: int, limit: int, wait: float
    ) -> list[Message]:
        """The messages after ``after``; when there are none, wait up to ``wait`` seconds for
        the first to arrive (then return it), else return an empty list."""
        deadline = anyio.current_time() + wait
        while True:
            ticket = self._doorbell.ticket(mailbox)  # before looking: see Doorbell
            batch = await self._read(mailbox, after, limit)
            left = deadline - anyio.current_time()
            if batch or left <= 0:
                return batch
            await self._doorbell.wait(ticket, min(left, self.poll_interval))

    async def follow(
        self, mailbox: str, *, after: int, seconds: float, heartbeat: float = 15.0
    ) -> AsyncIterator[list[Message]]:
        """Every message after ``after`` as it arrives, in batches, for ``seconds``; an empty
        batch every ``heartbeat`` seconds of silence, so a stream can say it is alive."""
        cursor = after
        deadline = anyio.current_time() + seconds
        quiet_until = anyio.current_time() + heartbeat
        while anyio.current_time() < deadline:
            wait = min(deadline, quiet_until) - anyio.current_time()
            batch = await self.wait_for(mailbox, after=cursor, limit=100, wait=max(0.0, wait))
            if batch:
                cursor = batch[-1].seq
                quiet_until = anyio.current_time() + heartbeat
                yield batch
            elif anyio.current_time() >= quiet_until:
                quiet_until = anyio.current_time() + heartbeat
                yield []

    async def _read(self, mailbox: str, after: int, limit: int) -> list[Message]:
        return await anyio.to_thread.run_sync(
            partial(self.relay.read, mailbox, after=after, limit=limit)
        )
