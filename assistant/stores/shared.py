"""State that many API workers share when the PostgreSQL store is used: feedback, rate limits and
the Teams replay cache.

With one process, feedback is a JSON-lines file and the token buckets live in memory. Behind
several workers (several hosts) a file per host scatters the feedback, and a key could send the
per-minute limit to every worker. So with ``ASSISTANT_STORE=postgres``:

- feedback rows go to ``<schema>.feedback`` (jsonb); ``export_feedback`` writes them as the JSON lines
  ``assistant eval add-from-feedback`` reads (the CLI does it before reading).
- rate-limit buckets are rows of the UNLOGGED table ``<schema>.rate_buckets``, refilled and taken in
  one ``INSERT ... ON CONFLICT DO UPDATE`` (atomic under concurrency, one round trip), on the
  database's clock, so every worker sees the same bucket.

- the Teams replay cache (``assistant.api.replay.ReplayCache``) is the UNLOGGED table
  ``<schema>.replay_keys`` (key, expiry): one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired``
  records the keys and tells whether one was there, so a replay sent to another worker is refused.

Trade-off: every authenticated request pays one round trip (~0.2-0.5 ms on a LAN) and the limits
depend on the database. If the database cannot be reached the bucket falls back to the worker's
own in-memory bucket (the limit is then per worker, as without the database) rather than refusing
requests; questions fail with 503 anyway until the database is back. UNLOGGED: buckets are not
worth WAL, and a crash of the database refills them, which errs on the side of serving.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from pathlib import Path

from assistant.stores.errors import StoreUnavailable

log = logging.getLogger(__name__)


_SHARED: dict[tuple[str, str], object] = {}
_SHARED_LOCK = threading.Lock()


class _Lazy:
    """The settings' PostgresStore (no build pinned), opened on first use: a database that is down
    when the app starts does not stop it."""

    def __init__(self, settings):
        self.settings = settings

    def _run(self, fn, retry: bool = True):
        from assistant.stores.postgres import PostgresStore

        url = self.settings.database_url.get_secret_value() if self.settings.database_url else ""
        key = (url, self.settings.database_schema)
        with _SHARED_LOCK:
            store = _SHARED.get(key)
        if store is None:
            store = PostgresStore.from_settings(self.settings, pin=False)  # StoreUnavailable if down
            with _SHARED_LOCK:
                _SHARED[key] = store
        return store._run(fn, retry=retry)


def shared_store(settings) -> _Lazy:
    return _Lazy(settings)


class PgTokenBucket:
    """``assistant.api.security.TokenBucket``'s interface (``per_minute``, ``take``, ``peek``) in the database."""

    def __init__(self, store, limiter: str, per_minute: int):
        """``store``: anything with PostgresStore's ``_run`` (``shared_store(settings)``)."""
        from assistant.api.security import TokenBucket

        self.store = store
        self.limiter = limiter
        self.per_minute = per_minute
        self.capacity = float(max(per_minute, 1))
        self.rate = per_minute / 60.0
        self._fallback = TokenBucket(per_minute)
        self._warned = 0.0
        self._lock = threading.Lock()

    def _degraded(self, exc: Exception) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._warned > 30:
                self._warned = now
                log.warning("rate limit %s: database unavailable, limiting per worker (%s)", self.limiter, exc)

    def take(self, client: str) -> float:
        if self.per_minute <= 0:
            return 0.0
        params = {"l": self.limiter, "c": client, "cap": self.capacity, "rate": self.rate}
        refilled = "least(%(cap)s, r.tokens + (excluded.updated - r.updated) * %(rate)s)"
        sql = f"""
            INSERT INTO rate_buckets AS r (limiter, client, tokens, updated, ok)
            VALUES (%(l)s, %(c)s, %(cap)s - 1, extract(epoch FROM clock_timestamp()), true)
            ON CONFLICT (limiter, client) DO UPDATE SET
                tokens = {refilled} - CASE WHEN {refilled} >= 1 THEN 1 ELSE 0 END,
                ok = {refilled} >= 1,
                updated = excluded.updated
            RETURNING ok, tokens"""
        try:
            ok, tokens = self.store._run(lambda conn: conn.execute(sql, params).fetchone(), retry=False)
        except StoreUnavailable as exc:
            self._degraded(exc)
            return self._fallback.take(client)
        if random.random() < 0.01:
            self._prune()
        return 0.0 if ok else (1.0 - float(tokens)) / self.rate

    def peek(self, client: str) -> float:
        if self.per_minute <= 0:
            return 0.0
        sql = """SELECT least(%(cap)s, tokens + (extract(epoch FROM clock_timestamp()) - updated) * %(rate)s)
                 FROM rate_buckets WHERE limiter = %(l)s AND client = %(c)s"""
        params = {"l": self.limiter, "c": client, "cap": self.capacity, "rate": self.rate}
        try:
            row = self.store._run(lambda conn: conn.execute(sql, params).fetchone(), retry=False)
        except StoreUnavailable as exc:
            self._degraded(exc)
            return self._fallback.peek(client)
        tokens = self.capacity if row is None else float(row[0])
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _prune(self) -> None:
        """Forget buckets that are full again (idle longer than capacity / rate)."""
        full_after = self.capacity / max(self.rate, 1e-9)
        try:
            self.store._run(lambda conn: conn.execute(
                "DELETE FROM rate_buckets WHERE limiter = %s AND updated < extract(epoch FROM clock_timestamp()) - %s",
                (self.limiter, full_after)), retry=False)
        except StoreUnavailable:
            pass


class PgFeedbackLog:
    """Feedback rows in ``<schema>.feedback``."""

    def __init__(self, store):
        self.store = store

    def append(self, record: dict) -> None:
        from psycopg.types.json import Jsonb

        self.store._run(lambda conn: conn.execute("INSERT INTO feedback (item) VALUES (%s)", (Jsonb(record),)),
                        retry=False)

    def export(self, path: Path) -> int:
        """Write every feedback row as a JSON line to ``path`` (oldest first); returns how many."""
        rows = self.store._run(lambda conn: conn.execute("SELECT item FROM feedback ORDER BY id").fetchall())
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for (item,) in rows:
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
        return len(rows)


class PgReplayCache:
    """``ReplayCache`` in the database (shared by every worker); the worker's memory cache while the
    database cannot be reached (a replay to another worker is then not caught, as without it)."""

    def __init__(self, store, max_entries: int = 100_000):
        from assistant.api.replay import MemoryReplayCache

        self.store = store
        self._fallback = MemoryReplayCache(max_entries)

    def seen_before(self, keys, ttl_s: float) -> bool:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return False
        sql = """
            WITH now AS (SELECT extract(epoch FROM clock_timestamp()) AS t)
            INSERT INTO replay_keys AS r (key, expires)
            SELECT k, now.t + %(ttl)s FROM unnest(%(keys)s::text[]) AS k, now
            ON CONFLICT (key) DO UPDATE SET expires = excluded.expires
                WHERE r.expires <= extract(epoch FROM clock_timestamp())
            RETURNING key"""
        try:
            recorded = self.store._run(lambda conn: conn.execute(sql, {"keys": keys, "ttl": float(ttl_s)}).fetchall(),
                                       retry=False)
        except StoreUnavailable as exc:
            log.warning("replay cache: database unavailable, checking this worker only (%s)", exc)
            return self._fallback.seen_before(keys, ttl_s)
        if random.random() < 0.01:
            try:
                self.store._run(lambda conn: conn.execute(
                    "DELETE FROM replay_keys WHERE expires <= extract(epoch FROM clock_timestamp())"), retry=False)
            except StoreUnavailable:
                pass
        return len(recorded) < len(keys)  # a key was there and had not expired
