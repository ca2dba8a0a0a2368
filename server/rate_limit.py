"""Fixed-window rate limits: one kept in the store, so every node behind a load balancer
counts the same hits, and one kept in the process, for the per-client flood limit that every
request of every service passes.

The per-client limit is per node on purpose: it guards a node against one client's flood,
and a store write on every request would cost more than most requests themselves (it made
the service frame several times slower than the bare framework). Limits that must hold
across nodes, such as the relay's per-address limit, use the store.

Store-kept limits:

One row per (bucket, window): the first hit inserts it, later hits increment it with
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (one atomic statement on both backends).
A hit over the limit still counts, and is answered with ``http.rate_limited`` (429) and the
seconds until the window ends, which the shell sends as ``Retry-After`` (RFC 9110 §10.2.3).
Rows of ended windows are deleted by ``sweep``; a bucket key (a client address or a relay
address) is kept no longer than its window.
"""

from __future__ import annotations

import math
import threading
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


def _window(rule: RateRule, now: datetime) -> tuple[float, int]:
    at = now.timestamp()
    return at, (math.floor(at / rule.window_seconds) + 1) * rule.window_seconds


def _check(rule: RateRule, hits: int, at: float, window_end: int) -> int:
    if hits > rule.limit:
        raise RateLimited(
            f"{rule.name}: {rule.limit} per {rule.window_seconds} s",
            retry_after=max(1, math.ceil(window_end - at)),
        )
    return hits


class RateLimiter:
    """Counts kept in the store: shared by every node on the same database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def hit(self, rule: RateRule, key: str, *, now: datetime) -> int:
        """Count one hit of ``key`` under ``rule``; return the hits in this window so far.

        Raises ``RateLimited`` (with ``retry_after`` seconds) when the hit is over the limit.
        """
        at, window_end = _window(rule, now)
        with self._store.transaction() as tx:
            ((hits,),) = tx.execute(
                "INSERT INTO rate_counter (bucket, window_end, hits) VALUES (?, ?, 1) "
                "ON CONFLICT (bucket, window_end) DO UPDATE SET hits = rate_counter.hits + 1 "
                "RETURNING hits",
                (f"{rule.name}:{key}", window_end),
            )
        return _check(rule, int(hits), at, window_end)

    def sweep(self, *, now: datetime) -> int:
        """Delete the counters of ended windows; return how many went."""
        with self._store.transaction() as tx:
            gone = tx.execute(
                "DELETE FROM rate_counter WHERE window_end <= ? RETURNING 1",
                (int(now.timestamp()),),
            )
        return len(gone)


class LocalRateLimiter:
    """Counts kept in this process only (see the module docstring for when that is right)."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()  # the sweeper runs in a worker thread

    def hit(self, rule: RateRule, key: str, *, now: datetime) -> int:
        """As ``RateLimiter.hit``, counted in this process."""
        at, window_end = _window(rule, now)
        bucket = (rule.name, key, window_end)
        with self._lock:
            hits = self._hits.get(bucket, 0) + 1
            self._hits[bucket] = hits
        return _check(rule, hits, at, window_end)

    def sweep(self, *, now: datetime) -> int:
        """Forget the counters of ended windows; return how many went."""
        at = now.timestamp()
        with self._lock:
            ended = [bucket for bucket in self._hits if bucket[2] <= at]
            for bucket in ended:
                del self._hits[bucket]
        return len(ended)
