"""Fixed-window rate limits kept in the store, so every node behind a load balancer counts
the same hits.

One row per (bucket, window): the first hit inserts it, later hits increment it with
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (one atomic statement on both backends).
A hit over the limit still counts, and is answered with ``http.rate_limited`` (429) and the
seconds until the window ends, which the shell sends as ``Retry-After`` (RFC 9110 §10.2.3).
Rows of ended windows are deleted by ``sweep``; a bucket key (a client address or a relay
address) is kept no longer than its window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from server.store import Schema, Store
from vault import Unavailable

RATE_LIMIT_SCHEMA = Schema(
    "rate_limit",
    (
        "CREATE TABLE rate_counter ("
        " bucket TEXT NOT NULL, window_end INTEGER NOT NULL, hits INTEGER NOT NULL,"
        " PRIMARY KEY (bucket, window_end));"
        "CREATE INDEX rate_counter_window_end ON rate_counter (window_end)",
    ),
)


class RateLimited(Unavailable):
    code = "http.rate_limited"
    en = "Too many requests. Wait {retry_after} seconds and try again."
    nl = "Te veel verzoeken. Wacht {retry_after} seconden en probeer het opnieuw."
    http_status: ClassVar[int] = 429


@dataclass(frozen=True)
class RateRule:
    """At most ``limit`` hits per bucket in each ``window_seconds`` window."""

    name: str
    limit: int
    window_seconds: int


class RateLimiter:
    def __init__(self, store: Store) -> None:
        self._store = store

    def hit(self, rule: RateRule, key: str, *, now: datetime) -> int:
        """Count one hit of ``key`` under ``rule``; return the hits in this window so far.

        Raises ``RateLimited`` (with ``retry_after`` seconds) when the hit is over the limit.
        """
        at = now.timestamp()
        window_end = (math.floor(at / rule.window_seconds) + 1) * rule.window_seconds
        with self._store.transaction() as tx:
            ((hits,),) = tx.execute(
                "INSERT INTO rate_counter (bucket, window_end, hits) VALUES (?, ?, 1) "
                "ON CONFLICT (bucket, window_end) DO UPDATE SET hits = rate_counter.hits + 1 "
                "RETURNING hits",
                (f"{rule.name}:{key}", window_end),
            )
        if hits > rule.limit:
            raise RateLimited(
                f"{rule.name}: {rule.limit} per {rule.window_seconds} s",
                retry_after=max(1, math.ceil(window_end - at)),
            )
        return int(hits)

    def sweep(self, *, now: datetime) -> int:
        """Delete the counters of ended windows; return how many went."""
        with self._store.transaction() as tx:
            gone = tx.execute(
                "DELETE FROM rate_counter WHERE window_end <= ? RETURNING 1",
                (int(now.timestamp()),),
            )
        return len(gone)
