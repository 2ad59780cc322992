"""The PostgreSQL + pgvector passage store: one database that many API workers share.

Schema (in ``ASSISTANT_DATABASE_SCHEMA``, default ``assistant``)::

    builds     one row per build: build_id, seq, state ('writing' | 'ready'), published (at most one
               row true: a partial unique index), dims, manifest, documents, stats (jsonb)
    documents  (build_id, document_id): the catalog entry, with language, publisher and the period's
               first and last year as columns for the filters
    passages   (build_id, passage_id) PARTITION BY LIST (build_id): ord, document_id, prev_id,
               next_id, metadata jsonb, text, node (the TextNode as JSON, exactly as the local store
               keeps it), embedding vector, doclen (BM25 tokens), spans (the span vectors, float32)
    terms      (build_id, token): df and idf of every BM25 token of the build
    postings   (build_id, token, ord): tf and w, the token's BM25 weight in the passage: the inverted
               index, stored in token order with an index-only path (token) INCLUDE (ord, w)

Every build writes its own partitions (``passages_b<seq>``, ``terms_b<seq>``, ``postings_b<seq>``):
loaded with binary COPY into standalone tables, indexed, analysed, then attached and marked
``ready`` in one transaction. ``publish`` flips the ``published`` flag in one transaction (and
sends ``NOTIFY assistant_builds``); old builds are pruned by detaching and dropping their
partitions, so nothing bloats and readers are never blocked. A failed write drops what it
wrote: the previous build keeps serving.

Search (one round trip each):

- dense: pgvector's negative inner product ``<#>`` on unit vectors (= cosine). Exact (a scan of the
  build's partition) below ``exact_below`` passages; from that size the build gets an HNSW index
  (``m``, ``ef_construction``); a query uses it with ``hnsw.ef_search`` = max(``ef_search``, k) and,
  with filters, pgvector's ``iterative_scan = strict_order``. More than 1,000 results (pgvector's
  ceiling for ef_search), e.g. every passage, are computed exactly.
- lexical: BM25 in SQL over the tokens ``lexical_tokens`` produces (the local store's bm25s tokens).
  ``write`` stores each (token, passage) weight ``idf * tf / (tf + k1 * (1 - b + b * doclen / avgdl))``
  with bm25s' defaults, k1 = 1.2, b = 0.75 and the "lucene" idf ``ln(1 + (N - df + 0.5) / (df + 0.5))``
  (df, N and avgdl are the build's, kept in ``terms`` and ``builds.stats``); a query sums the
  weights of its tokens (an index-only scan per token), so scores equal bm25s' up to float rounding.
- filters (document ids, language, publisher substring, year within the document's period) are a
  sub-select on ``documents`` in the same statement.

A store object reads the build it is pinned to (the published one when it was opened, or the one
it published); ``build_id()`` asks the database what is published now (a primary-key lookup:
workers poll it) and ``refresh()`` re-pins. Connections come from one pool per database URL and
schema, shared by every store object of the process. Database errors become ``StoreUnavailable``
(the API answers 503); a broken connection is retried once, so a restarted database is picked up
by the next request.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np
from llama_index.core.schema import TextNode

from assistant.records import DocumentInfo, Filters
from assistant.store import Build, Scored, StoreStats
from assistant.stores.errors import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

K1 = 1.2
B = 0.75
NOTIFY_CHANNEL = "assistant_builds"
HNSW_MAX_EF_SEARCH = 1000
"""pgvector's ceiling for ``hnsw.ef_search``: an HNSW scan returns at most this many rows."""
STALE_WRITE_HOURS = 6
"""A build still 'writing' after this long was left by a crashed writer: pruned."""
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_BUILD_ID = re.compile(r"^[0-9A-Za-z_.-]{1,80}$")


@dataclass(frozen=True)
class PgOptions:
    schema: str = "assistant"
    exact_below: int = 50_000
    """Builds with fewer passages are searched exactly (no HNSW index is built for them)."""
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 100
    keep_builds: int = 2
    """Ready builds kept after a publish, the published one included."""
    pool_min: int = 1
    pool_max: int = 10
    timeout_s: float = 3.0
    """Longest wait for a connection; a database that is down answers within this (503)."""
    statement_timeout_ms: int = 10_000
    node_cache: int = 20_000
    """Passages (with their span vectors) a worker remembers, least recently used out: the ones it
    retrieved lately. Bounded, so a worker never holds a large corpus; a small one fits whole."""
    build_memory: str = "256MB"
    """``maintenance_work_mem`` for the index builds of ``write`` (HNSW builds fastest in memory)."""


@dataclass(frozen=True)
class _Pinned:
    build_id: str
    seq: int
    dims: int
    passages: int
    manifest: dict
    documents: list[DocumentInfo]
    stats: dict
    has_hnsw: bool

    def table(self, kind: str) -> str:
        return f"{kind}_b{self.seq}"


_POOLS: dict[tuple[str, str], Any] = {}
_POOLS_LOCK = threading.Lock()


def _configure(schema: str, opts: PgOptions) -> Callable[[Any], None]:
    def configure(conn) -> None:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        conn.execute(f"SET search_path = {schema}, public")
        conn.execute(f"SET statement_timeout = {int(opts.statement_timeout_ms)}")
        conn.execute(f"SET hnsw.ef_search = {int(opts.hnsw_ef_search)}")
        conn.execute("SET hnsw.iterative_scan = strict_order")
    return configure


def _pool(url: str, opts: PgOptions):
    from psycopg_pool import ConnectionPool

    key = (url, opts.schema)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None or pool.closed:
            pool = ConnectionPool(url, min_size=opts.pool_min, max_size=opts.pool_max, open=False,
                                  kwargs={"autocommit": True, "connect_timeout": max(1, int(opts.timeout_s))},
                                  configure=_configure(opts.schema, opts), timeout=opts.timeout_s,
                                  reconnect_timeout=0, name=f"assistant-{opts.schema}")
            pool.open(wait=False)
            _POOLS[key] = pool
        return pool


def close_pools() -> None:
    """Close every pool of this process (tests, and the end of a CLI run)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def _unavailable(exc: BaseException) -> StoreUnavailable:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreUnavailable(f"the passage database is unavailable ({first})")


class PostgresStore:
    """``PassageStore`` on PostgreSQL with pgvector (see the module docstring)."""

    name = "postgres"

    def __init__(self, url: str, options: PgOptions | None = None, *, pin: bool = True):
        """``pin``: read the published build now (raises ``StoreUnavailable`` when the database is
        down); without, the first read pins it."""
        self.url = url
        self.options = options or PgOptions()
        if not _NAME.match(self.options.schema):
            raise ValueError(f"invalid schema name {self.options.schema!r}")
        self.schema = self.options.schema
        self._pinned: _Pinned | None = None
        self._stats: tuple[str, StoreStats] | None = None
        self._cache: OrderedDict[tuple[str, str], tuple[TextNode, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self._ensure_schema()
        if pin:
            self.refresh()

    @classmethod
    def from_settings(cls, settings, *, pin: bool = True) -> "PostgresStore":
        url = settings.database_url.get_secret_value() if settings.database_url is not None else ""
        if not url:
            raise StoreUnavailable("ASSISTANT_STORE=postgres needs ASSISTANT_DATABASE_URL=postgresql://...")
        return cls(url, PgOptions(schema=settings.database_schema, exact_below=settings.pg_exact_below,
                                  hnsw_m=settings.pg_hnsw_m, hnsw_ef_construction=settings.pg_hnsw_ef_construction,
                                  hnsw_ef_search=settings.pg_hnsw_ef_search, pool_max=settings.pg_pool_size),
                   pin=pin)

    # -- connections -------------------------------------------------------------------------
    @property
    def pool(self):
        return _pool(self.url, self.options)

    def _run(self, fn: Callable[[Any], T], *, retry: bool = True) -> T:
        """``fn(connection)`` with a pooled connection; database errors become ``StoreUnavailable``.
        A broken connection (the database restarted) is retried once on a fresh one."""
        import psycopg
        import psycopg.errors
        from psycopg_pool import PoolTimeout

        for attempt in (0, 1):
            try:
                with self.pool.connection() as conn:
                    return fn(conn)
            except PoolTimeout as exc:
                raise _unavailable(exc) from None
            except psycopg.errors.UndefinedTable:
                # The build this object is pinned to was pruned (two publishes while this worker had
                # not yet swapped): 503 for this request; the worker's build poll moves it on.
                raise StoreUnavailable(f"build {self.serving_build} is no longer in the database; "
                                       "the worker is moving to the published one") from None
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if attempt == 0 and retry:
                    self._discard_broken()
                    continue
                raise _unavailable(exc) from None
        raise AssertionError("unreachable")

    def _discard_broken(self) -> None:
        """After a connection error: drop the pool's idle connections that are broken too (the
        database restarted), so the retry gets a fresh one."""
        try:
            self.pool.check()
        except Exception:  # pragma: no cover - check() logs and discards on its own
            pass

    def _ensure_schema(self) -> None:
        import psycopg

        s = self.schema
        ddl = f"""
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE SCHEMA IF NOT EXISTS {s};
        CREATE TABLE IF NOT EXISTS {s}.builds (
            build_id text PRIMARY KEY,
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            state text NOT NULL DEFAULT 'writing' CHECK (state IN ('writing', 'ready')),
            published boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            published_at timestamptz,
            dims int NOT NULL,
            passages int NOT NULL,
            has_hnsw boolean NOT NULL DEFAULT false,
            manifest jsonb NOT NULL,
            documents jsonb NOT NULL,
            stats jsonb NOT NULL,
            CHECK (NOT published OR state = 'ready'));
        CREATE UNIQUE INDEX IF NOT EXISTS builds_one_published ON {s}.builds ((true)) WHERE published;
        CREATE TABLE IF NOT EXISTS {s}.documents (
            build_id text NOT NULL REFERENCES {s}.builds ON DELETE CASCADE,
            document_id text NOT NULL,
            ord int NOT NULL,
            info jsonb NOT NULL,
            language text, publisher text, year_start int, year_end int,
            passages int NOT NULL,
            PRIMARY KEY (build_id, document_id));
        CREATE TABLE IF NOT EXISTS {s}.passages (
            build_id text NOT NULL,
            passage_id text NOT NULL,
            ord int NOT NULL,
            document_id text NOT NULL,
            prev_id text, next_id text,
            metadata jsonb NOT NULL,
            text text NOT NULL,
            node text NOT NULL,
            embedding vector NOT NULL,
            doclen int NOT NULL,
            spans bytea NOT NULL,
            span_count int NOT NULL,
            PRIMARY KEY (build_id, passage_id)) PARTITION BY LIST (build_id);
        CREATE TABLE IF NOT EXISTS {s}.terms (
            build_id text NOT NULL, token text NOT NULL, df int NOT NULL, idf float8 NOT NULL,
            PRIMARY KEY (build_id, token)) PARTITION BY LIST (build_id);
        CREATE TABLE IF NOT EXISTS {s}.postings (
            build_id text NOT NULL, token text NOT NULL, ord int NOT NULL, tf int NOT NULL, w float4 NOT NULL)
            PARTITION BY LIST (build_id);
        CREATE TABLE IF NOT EXISTS {s}.feedback (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            created_at timestamptz NOT NULL DEFAULT now(),
            item jsonb NOT NULL);
        CREATE UNLOGGED TABLE IF NOT EXISTS {s}.rate_buckets (
            limiter text NOT NULL, client text NOT NULL, tokens float8 NOT NULL, updated float8 NOT NULL,
            ok boolean NOT NULL DEFAULT true,
            PRIMARY KEY (limiter, client));
        CREATE UNLOGGED TABLE IF NOT EXISTS {s}.replay_keys (key text PRIMARY KEY, expires float8 NOT NULL);
        """
        try:
            # A plain connection: the pool's configure needs the vector type to exist already.
            with psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.options.timeout_s))) as conn:
                exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                                      (f"{s}.replay_keys", f"{s}.postings")).fetchone()[0]
                if not exists:
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(hashtext('assistant-schema'))")
                        conn.execute(ddl)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from None

    # -- builds ------------------------------------------------------------------------------
    def write(self, build: Build) -> str:
        nodes = build.nodes
        n = len(nodes)
        if n == 0:
            raise ValueError("a build needs at least one passage")
        vectors = np.ascontiguousarray(build.vectors, dtype=np.float32)
        if vectors.shape[0] != n or len(build.lexical_tokens) != n:
            raise ValueError("a build needs one vector and one token list per passage")
        dims = int(vectors.shape[1])
        build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:10]
        from assistant.stores import build_stats  # idf and vocabulary derived as every store does

        doclens = [len(t) for t in build.lexical_tokens]
        avgdl = float(np.mean(doclens)) if doclens else 0.0
        df = Counter(t for toks in build.lexical_tokens for t in set(toks))
        built = build_stats(build)
        idf = built.idf
        per_doc = Counter(built.passages_per_document)
        stats = {"passages": n, "avgdl": avgdl, "idf_default": built.idf_default,
                 "passages_per_document": built.passages_per_document, "vocabulary": sorted(built.vocabulary),
                 "k1": K1, "b": B}
        has_hnsw = n >= self.options.exact_below
        manifest = {**build.manifest, "build_id": build_id, "store": self.name, "dims": dims,
                    "span_count": int(build.span_vectors.shape[0]), "passage_count": n,
                    "indexed_documents": [d.model_dump() for d in build.documents]}
        manifest.setdefault("created_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        documents = [d.model_dump() for d in build.documents]

        from psycopg.types.json import Jsonb

        def register(conn) -> int:
            return conn.execute(
                "INSERT INTO builds (build_id, dims, passages, has_hnsw, manifest, documents, stats) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING seq",
                (build_id, dims, n, has_hnsw, Jsonb(manifest), Jsonb(documents), Jsonb(stats))).fetchone()[0]

        seq = self._run(register, retry=False)
        tables = {k: f"{k}_b{seq}" for k in ("passages", "terms", "postings")}
        try:
            self._run(lambda conn: self._load(conn, build_id, tables, build, vectors, dims, doclens, df, idf,
                                              has_hnsw, per_doc), retry=False)
        except BaseException:
            self._drop_build(build_id, seq)
            raise
        log.info("wrote build %s: %d passages, %d terms", build_id, n, len(df))
        return build_id

    def _load(self, conn, build_id: str, tables: dict[str, str], build: Build, vectors: np.ndarray, dims: int,
              doclens: list[int], df: Counter, idf: dict[str, float], has_hnsw: bool, per_doc: Counter) -> None:
        lit = _literal(build_id)
        conn.execute(f"SET maintenance_work_mem = '{self.options.build_memory}'")
        conn.execute("SET statement_timeout = 0")  # COPY and index builds of a large corpus take minutes
        try:
            self._load_tables(conn, build_id, lit, tables, build, vectors, dims, doclens, df, idf, has_hnsw, per_doc)
        finally:
            if not conn.broken:
                conn.execute(f"SET statement_timeout = {int(self.options.statement_timeout_ms)}")
                conn.execute("RESET maintenance_work_mem")

    def _load_tables(self, conn, build_id: str, lit: str, tables: dict[str, str], build: Build, vectors: np.ndarray,
                     dims: int, doclens: list[int], df: Counter, idf: dict[str, float], has_hnsw: bool,
                     per_doc: Counter) -> None:
        from psycopg.types.json import Jsonb

        p, t, x = tables["passages"], tables["terms"], tables["postings"]
        for name in (p, t, x):
            parent = name.rsplit("_b", 1)[0]
            conn.execute(f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS)")
            conn.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_build CHECK (build_id = {lit})")
        if dims * 4 < 2000:
            # The vector stays in the row (pgvector's default lets TOAST move it out of a wide row, and
            # an exact scan then fetches every vector from the TOAST table: 10x slower).
            conn.execute(f"ALTER TABLE {p} ALTER COLUMN embedding SET STORAGE PLAIN")
        spans = np.ascontiguousarray(build.span_vectors, dtype=np.float32)
        cols = ("build_id, passage_id, ord, document_id, prev_id, next_id, metadata, text, node, embedding, "
                "doclen, spans, span_count")
        with conn.cursor() as cur:
            with cur.copy(f"COPY {p} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "int4", "text", "text", "text", "jsonb", "text", "text", "vector",
                                "int4", "bytea", "int4"])
                for i, nd in enumerate(build.nodes):
                    start, count = build.span_rows.get(nd.node_id, (0, 0))
                    md = nd.metadata
                    copy.write_row((build_id, nd.node_id, i, md["document_id"], md.get("prev_id"), md.get("next_id"),
                                    Jsonb(md), nd.text, nd.model_dump_json(), vectors[i], doclens[i],
                                    spans[start:start + count].tobytes(), count))
            with cur.copy(f"COPY {t} (build_id, token, df, idf) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "int4", "float8"])
                for token, c in df.items():
                    copy.write_row((build_id, token, c, idf[token]))
            # In token order, so the postings of a token sit together on disk (the index-only scan
            # of a query token reads consecutive pages).
            by_token: dict[str, list[tuple[int, int]]] = {}
            for i, toks in enumerate(build.lexical_tokens):
                for token, tf in Counter(toks).items():
                    by_token.setdefault(token, []).append((i, tf))
            avgdl = float(np.mean(doclens))
            norm = [K1 * (1 - B + B * dl / avgdl) for dl in doclens]
            with cur.copy(f"COPY {x} (build_id, token, ord, tf, w) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "int4", "int4", "float4"])
                for token in sorted(by_token):
                    weight = idf[token]
                    for i, tf in by_token[token]:
                        copy.write_row((build_id, token, i, tf, weight * tf / (tf + norm[i])))
        conn.execute(f"ALTER TABLE {p} ADD PRIMARY KEY (build_id, passage_id)")
        conn.execute(f"CREATE UNIQUE INDEX {p}_ord ON {p} (ord)")
        conn.execute(f"ALTER TABLE {t} ADD PRIMARY KEY (build_id, token)")
        conn.execute(f"CREATE INDEX {x}_token ON {x} (token) INCLUDE (ord, w)")
        if has_hnsw:
            o = self.options
            conn.execute(f"CREATE INDEX {p}_hnsw ON {p} USING hnsw ((embedding::vector({dims})) vector_ip_ops) "
                         f"WITH (m = {int(o.hnsw_m)}, ef_construction = {int(o.hnsw_ef_construction)})")
        for name in (p, t, x):
            conn.execute(f"VACUUM (ANALYZE) {name}")  # statistics, and the visibility map index-only scans need
        with conn.transaction():
            for name in (p, t, x):
                parent = name.rsplit("_b", 1)[0]
                conn.execute(f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES IN ({lit})")
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO documents (build_id, document_id, ord, info, language, publisher, year_start, "
                    "year_end, passages) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(build_id, d.id, i, Jsonb(d.model_dump()), d.language, d.publisher,
                      (d.years or (None, None))[0], (d.years or (None, None))[1], per_doc.get(d.id, 0))
                     for i, d in enumerate(build.documents)])
            conn.execute("UPDATE builds SET state = 'ready' WHERE build_id = %s", (build_id,))

    def publish(self, build_id: str) -> None:
        def flip(conn) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('assistant-publish'))")
                row = conn.execute("SELECT state FROM builds WHERE build_id = %s FOR UPDATE", (build_id,)).fetchone()
                if row is None or row[0] != "ready":
                    raise ValueError(f"build {build_id!r} is not a complete build: it cannot be published")
                conn.execute("UPDATE builds SET published = false WHERE published AND build_id <> %s", (build_id,))
                conn.execute("UPDATE builds SET published = true, published_at = now() WHERE build_id = %s",
                             (build_id,))
                conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, build_id))

        self._run(flip, retry=False)
        self.refresh()
        try:
            self.prune()
        except StoreUnavailable as exc:  # the build is published; pruning waits for the next one
            log.warning("could not prune old builds: %s", exc)

    def prune(self) -> list[str]:
        """Drop builds beyond ``keep_builds`` (the published one is always kept) and builds left
        'writing' by a crashed writer; returns the ids dropped."""
        keep = max(1, self.options.keep_builds)

        def victims(conn) -> list[tuple[str, int]]:
            return conn.execute(
                """SELECT build_id, seq FROM builds b WHERE NOT published AND (
                       (state = 'ready' AND seq NOT IN (
                            SELECT seq FROM builds WHERE state = 'ready'
                            ORDER BY published DESC, seq DESC LIMIT %s))
                       OR (state = 'writing' AND created_at < now() - make_interval(hours => %s)))""",
                (keep, STALE_WRITE_HOURS)).fetchall()

        dropped = []
        for build_id, seq in self._run(victims):
            self._drop_build(build_id, seq)
            dropped.append(build_id)
        return dropped

    def _drop_build(self, build_id: str, seq: int) -> None:
        def drop(conn) -> None:
            for kind in ("passages", "terms", "postings"):
                name = f"{kind}_b{seq}"
                attached = conn.execute(
                    "SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = %s AND n.nspname = %s",
                    (name, self.schema)).fetchone()
                if attached:  # detach without blocking readers of the parent, then drop
                    conn.execute(f"ALTER TABLE {kind} DETACH PARTITION {name} CONCURRENTLY")
                conn.execute(f"DROP TABLE IF EXISTS {name}")
            conn.execute("DELETE FROM builds WHERE build_id = %s AND NOT published", (build_id,))
        try:
            self._run(drop, retry=False)
        except StoreUnavailable as exc:
            log.warning("could not drop build %s: %s", build_id, exc)

    def build_id(self) -> str | None:
        row = self._run(lambda conn: conn.execute("SELECT build_id FROM builds WHERE published").fetchone())
        return row[0] if row else None

    def refresh(self) -> str | None:
        """Pin the published build (what every read then reads); returns its id."""
        def load(conn):
            return conn.execute(
                "SELECT build_id, seq, dims, passages, manifest, documents, stats, has_hnsw "
                "FROM builds WHERE published").fetchone()

        row = self._run(load)
        if row is None:
            self._pinned = None
            return None
        if self._pinned is None or self._pinned.build_id != row[0]:
            self._pinned = _Pinned(row[0], row[1], row[2], row[3], row[4], [DocumentInfo(**d) for d in row[5]],
                                   row[6], row[7])
        return row[0]

    @property
    def serving_build(self) -> str | None:
        """The build this store object reads (``build_id()`` is what the database has published)."""
        return self._pinned.build_id if self._pinned else None

    def _current(self) -> _Pinned:
        if self._pinned is None:
            self.refresh()
        if self._pinned is None:
            from assistant.stores.errors import NoBuild

            raise NoBuild("the database holds no published build: run `assistant index`")
        return self._pinned

    def manifest(self) -> dict:
        return dict(self._current().manifest)

    # -- search ------------------------------------------------------------------------------
    @staticmethod
    def _filter_sql(build: _Pinned, filters: Filters | None) -> tuple[str, dict]:
        if not filters or not (filters.document_ids or filters.language or filters.publisher or filters.year):
            return "", {}
        conds = ["build_id = %(build)s"]
        params: dict[str, Any] = {"build": build.build_id}
        if filters.document_ids:
            conds.append("document_id = ANY(%(ids)s)")
            params["ids"] = list(filters.document_ids)
        if filters.language:
            conds.append("language = %(language)s")
            params["language"] = filters.language
        if filters.publisher:
            conds.append("strpos(lower(publisher), lower(%(publisher)s)) > 0")
            params["publisher"] = filters.publisher
        if filters.year:
            conds.append("year_start <= %(year)s AND %(year)s <= year_end")
            params["year"] = int(filters.year)
        return f"document_id IN (SELECT document_id FROM documents WHERE {' AND '.join(conds)})", params

    def dense(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> Scored:
        build = self._current()
        k = max(0, int(k))
        if k == 0:
            return []
        where, params = self._filter_sql(build, filters)
        params |= {"q": np.asarray(vector, dtype=np.float32), "k": k}
        d = build.dims
        approximate = build.has_hnsw and k <= HNSW_MAX_EF_SEARCH
        # The HNSW index is on ``embedding::vector(d)``: ordering by that expression lets the planner
        # use it; ordering by the bare column is the exact scan.
        expr = f"(embedding::vector({d}))" if approximate else "embedding"
        sql = (f"SELECT passage_id, -({expr} <#> %(q)s::vector({d})) FROM {build.table('passages')} "
               f"{'WHERE ' + where if where else ''} ORDER BY {expr} <#> %(q)s::vector({d}), ord LIMIT %(k)s")

        def query(conn):
            if not approximate:
                return conn.execute(sql, params).fetchall()
            # Above ``exact_below`` the index is what we want even where the planner's costs would
            # pick a scan; one round trip (pipeline mode) for the transaction and its setting.
            with conn.pipeline(), conn.transaction():
                conn.execute("SET LOCAL enable_seqscan = off")
                if k > self.options.hnsw_ef_search:  # an HNSW scan returns at most ef_search rows
                    conn.execute(f"SET LOCAL hnsw.ef_search = {k}")
                cur = conn.execute(sql, params)
            return cur.fetchall()

        rows = self._run(query)
        return [(pid, float(score)) for pid, score in rows]

    def lexical(self, tokens: list[str], k: int, filters: Filters | None = None) -> Scored:
        build = self._current()
        k = max(0, int(k))
        if k == 0 or not tokens:
            return []
        where, params = self._filter_sql(build, filters)
        params |= {"tokens": list(tokens), "k": k}
        p, x = build.table("passages"), build.table("postings")
        filtered = f"AND x.ord IN (SELECT ord FROM {p} WHERE {where})" if where else ""
        # w = idf * tf / (tf + k1 * (1 - b + b * doclen / avgdl)), written with the build; the query
        # sums it over the query tokens (unnest keeps a repeated token repeated, as bm25s counts it).
        sql = f"""
            WITH s AS (SELECT x.ord, sum(x.w::float8) AS score
                       FROM unnest(%(tokens)s::text[]) AS u(token) JOIN {x} x ON x.token = u.token
                       WHERE true {filtered} GROUP BY x.ord ORDER BY score DESC, x.ord LIMIT %(k)s)
            SELECT p.passage_id, s.score FROM s JOIN {p} p USING (ord) ORDER BY s.score DESC, s.ord"""
        rows = self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [(pid, float(score)) for pid, score in rows if score > 0]

    def span_similarity(self, passage_id: str, vector: np.ndarray) -> np.ndarray | None:
        build = self._current()
        found = self._fetch(build, [passage_id])
        if passage_id not in found:
            return None
        return found[passage_id][1] @ np.asarray(vector, dtype=np.float32)

    # -- reading -----------------------------------------------------------------------------
    def _fetch(self, build: _Pinned, ids: list[str]) -> dict[str, tuple[TextNode, np.ndarray]]:
        """The nodes with these ids and their span vectors: from the cache, the rest in one query."""
        out: dict[str, tuple[TextNode, np.ndarray]] = {}
        with self._lock:
            for pid in ids:
                hit = self._cache.get((build.build_id, pid))
                if hit is not None:
                    self._cache.move_to_end((build.build_id, pid))
                    out[pid] = hit
        missing = [pid for pid in ids if pid not in out]
        if not missing:
            return out
        sql = f"SELECT passage_id, node, spans, span_count FROM {build.table('passages')} WHERE passage_id = ANY(%s)"
        rows = self._run(lambda conn: conn.execute(sql, (missing,)).fetchall())
        with self._lock:
            for pid, node, spans, count in rows:
                vectors = np.frombuffer(spans, dtype=np.float32).reshape(count, build.dims)
                out[pid] = self._cache[(build.build_id, pid)] = (TextNode.model_validate_json(node), vectors)
            while len(self._cache) > self.options.node_cache:
                self._cache.popitem(last=False)
        return out

    def get(self, ids: list[str]) -> list[TextNode]:
        if not ids:
            return []
        found = self._fetch(self._current(), list(dict.fromkeys(ids)))
        return [found[i][0] for i in ids if i in found]

    def neighbours(self, passage_id: str) -> tuple[TextNode | None, TextNode | None]:
        build = self._current()
        p = build.table("passages")
        sql = (f"SELECT n.passage_id = p.prev_id, n.node FROM {p} p JOIN {p} n ON n.passage_id IN (p.prev_id, p.next_id) "
               f"WHERE p.passage_id = %s")
        rows = self._run(lambda conn: conn.execute(sql, (passage_id,)).fetchall())
        prev = nxt = None
        for is_prev, node in rows:
            if is_prev:
                prev = TextNode.model_validate_json(node)
            else:
                nxt = TextNode.model_validate_json(node)
        return prev, nxt

    def documents(self) -> list[DocumentInfo]:
        return list(self._current().documents)

    def stats(self) -> StoreStats:
        build = self._current()
        cached = self._stats
        if cached is not None and cached[0] == build.build_id:
            return cached[1]
        rows = self._run(lambda conn: conn.execute(f"SELECT token, idf FROM {build.table('terms')}").fetchall())
        s = build.stats
        stats = StoreStats(passages=int(s["passages"]), idf=dict(rows), idf_default=float(s["idf_default"]),
                           vocabulary=frozenset(s["vocabulary"]),
                           passages_per_document={k: int(v) for k, v in s["passages_per_document"].items()})
        self._stats = (build.build_id, stats)
        return stats

    # -- operations --------------------------------------------------------------------------
    def builds(self) -> list[dict]:
        """Every build in the database, newest first (for ``assistant index`` and the tests)."""
        rows = self._run(lambda conn: conn.execute(
            "SELECT build_id, seq, state, published, passages, created_at FROM builds ORDER BY seq DESC").fetchall())
        return [dict(zip(("build_id", "seq", "state", "published", "passages", "created_at"), r)) for r in rows]


def _literal(build_id: str) -> str:
    if not _BUILD_ID.match(build_id):
        raise ValueError(f"invalid build id {build_id!r}")
    return "'" + build_id + "'"

