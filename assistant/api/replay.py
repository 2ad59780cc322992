"""Replay protection for signed requests (the Teams webhook's HMAC, the bot's JWT).

A signature proves who sent a body, not that it is sent for the first time: a captured request
could be sent again, and again. So each authenticated request leaves keys in a cache (its
activity id, the hash of its body) for as long as its signature would still be accepted, and a
request with a key already there is refused (409 ``replayed``).

The cache is behind :class:`ReplayCache`, one method, so a shared implementation (a database
table with a unique key and an expiry column, or Redis ``SET NX EX``) can replace the in-memory
one when several worker processes must see each other's requests. :class:`MemoryReplayCache` is
per process: with ``--workers N`` a replay that reaches another worker is not caught by it.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from typing import Protocol, Sequence

from assistant.api.errors import ApiError


class ReplayCache(Protocol):
    def seen_before(self, keys: Sequence[str], ttl_s: float) -> bool:
        """True if any of ``keys`` was recorded and has not expired. Otherwise record them all for
        ``ttl_s`` seconds and return False. Check and record are one atomic step."""
        ...


class MemoryReplayCache:
    """:class:`ReplayCache` in this process's memory: at most ``max_entries`` keys (the ones closest
    to expiring are dropped first when full), expired keys dropped as new ones come."""

    def __init__(self, max_entries: int = 100_000, clock=time.monotonic):
        self.max_entries = max(1, int(max_entries))
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def seen_before(self, keys: Sequence[str], ttl_s: float) -> bool:
        now = self._clock()
        with self._lock:
            self._expire(now)
            if any(self._expiry.get(k, 0.0) > now for k in keys):
                return True
            until = now + max(0.0, float(ttl_s))
            for k in keys:
                self._expiry[k] = until
                heapq.heappush(self._heap, (until, k))
            while len(self._expiry) > self.max_entries:
                self._pop()
            return False

    def _pop(self) -> None:
        until, key = heapq.heappop(self._heap)
        if self._expiry.get(key) == until:  # else a stale heap entry of a key recorded again
            del self._expiry[key]

    def _expire(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            self._pop()
        if len(self._heap) > 2 * self.max_entries + 16:  # stale entries of re-recorded keys
            self._heap = [(u, k) for k, u in self._expiry.items()]
            heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._expiry)


def timestamp_age_s(value: object, now: float | None = None) -> float:
    """Seconds between the activity's ISO 8601 ``timestamp`` and now (negative: in the future).
    ``ValueError`` if it is not a timestamp with a time zone."""
    from datetime import datetime

    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise ValueError("no timestamp")
    stamp = datetime.fromisoformat(value.strip())
    if stamp.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return (time.time() if now is None else now) - stamp.timestamp()


def body_key(namespace: str, body: bytes) -> str:
    return f"{namespace}:body:{hashlib.sha256(body).hexdigest()}"


def refuse_replay(cache: ReplayCache | None, keys: Sequence[str], ttl_s: float, what: str) -> None:
    """Raise 409 ``replayed`` if ``cache`` saw any of ``keys``; else remember them for ``ttl_s``."""
    if cache is not None and cache.seen_before(list(keys), ttl_s):
        raise ApiError(409, "replayed", f"This {what} was already received; a signed request is accepted only once.")
