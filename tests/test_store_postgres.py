"""The PostgreSQL store against a real server: same scores as FAISS and bm25s, builds, filters, outages."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import bm25s
import numpy as np
import pytest

from assistant.evidence import IdfTable
from assistant.lexical import query_tokens, words
from assistant.records import Filters
from assistant.store import Build, PassageStore
from assistant.stores.errors import StoreUnavailable
from conftest import CORPUS, make_settings
from assistant.settings import ROOT


@pytest.fixture(scope="session")
def questions() -> list[str]:
    lines = (ROOT / "evals" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:40]


@pytest.fixture(scope="module")
def published(pg_server, corpus_build):
    """The corpus build written and published once, in a schema of its own, for the tests that only
    read it (the tests that write get an empty store each, ``pg_store``)."""
    from assistant.stores.postgres import PgOptions, PostgresStore

    store = PostgresStore(pg_server.url, PgOptions(schema="t_read_" + uuid.uuid4().hex[:8]))
    store.publish(store.write(corpus_build))
    return store


def _query_vectors(build: Build, n: int = 12) -> np.ndarray:
    """Unit vectors near passages (a passage vector plus noise): realistic similarity structure."""
    rng = np.random.default_rng(7)
    rows = rng.choice(len(build.nodes), n, replace=False)
    q = build.vectors[rows] + rng.normal(0, 0.02, (n, build.vectors.shape[1])).astype(np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def test_is_a_passage_store(published):
    assert isinstance(published, PassageStore)
    assert published.name == "postgres"


def test_dense_scores_equal_the_inner_products(published, corpus_build):
    ids = [n.node_id for n in corpus_build.nodes]
    n = len(ids)
    for q in _query_vectors(corpus_build):
        got = dict(published.dense(q, n))
        assert len(got) == n
        expected = corpus_build.vectors @ q
        assert np.allclose([got[i] for i in ids], expected, atol=1e-5)
        top = published.dense(q, 5)
        assert [i for i, _ in top] == [ids[j] for j in np.argsort(-expected, kind="stable")[:5]]


def test_bm25_scores_equal_bm25s(published, corpus_build, questions):
    ids = [n.node_id for n in corpus_build.nodes]
    bm25 = bm25s.BM25(k1=1.2, b=0.75)
    bm25.index(corpus_build.lexical_tokens, show_progress=False)
    vocab = bm25.vocab_dict
    checked = 0
    for question in questions:
        tokens = [t for t in query_tokens(question) if t in vocab]
        if not tokens:
            continue
        expected = np.asarray(bm25.get_scores(tokens), dtype=np.float64)
        got = dict(published.lexical(tokens, len(ids)))
        assert set(got) == {ids[i] for i in np.flatnonzero(expected > 0)}, question
        assert np.allclose([got.get(i, 0.0) for i in ids], expected, rtol=1e-5, atol=1e-5), question
        best = published.lexical(tokens, 3)
        assert [s for _, s in best] == sorted((s for _, s in best), reverse=True)
        assert best[0][1] == pytest.approx(expected.max(), rel=1e-5)
        checked += 1
    assert checked >= 30
    assert published.lexical(["zzzz-not-a-token"], 10) == []


def test_stats_are_the_answerers_idf_and_the_planners_vocabulary(published, corpus_build):
    stats = published.stats()
    idf = IdfTable(corpus_build.lexical_tokens)
    assert stats.passages == len(corpus_build.nodes)
    assert stats.idf.keys() == idf.idf.keys()
    assert all(stats.idf[t] == pytest.approx(v, rel=1e-12) for t, v in idf.idf.items())
    assert stats.idf_default == pytest.approx(idf.default)
    assert stats.vocabulary == {w for n in corpus_build.nodes for w in words(n.text) if not w[0].isdigit()}
    counts: dict[str, int] = {}
    for n in corpus_build.nodes:
        counts[n.metadata["document_id"]] = counts.get(n.metadata["document_id"], 0) + 1
    assert stats.passages_per_document == counts


def test_reading_passages_documents_and_spans(published, corpus_build):
    nodes = corpus_build.nodes
    picked = [nodes[5].node_id, nodes[0].node_id, "no-such-id", nodes[5].node_id]
    got = published.get(picked)
    assert [n.node_id for n in got] == [nodes[5].node_id, nodes[0].node_id, nodes[5].node_id]
    assert got[0].model_dump() == nodes[5].model_dump()  # text, metadata (and its order) unchanged
    assert published.documents() == corpus_build.documents
    middle = nodes[1]
    prev, nxt = published.neighbours(middle.node_id)
    assert prev.node_id == middle.metadata["prev_id"] and nxt.node_id == middle.metadata["next_id"]
    assert published.neighbours(nodes[0].node_id)[0] is None
    assert published.neighbours("no-such-id") == (None, None)
    q = _query_vectors(corpus_build, 1)[0]
    for node in nodes[:20]:
        start, count = corpus_build.span_rows[node.node_id]
        sims = published.span_similarity(node.node_id, q)
        assert sims.shape == (count,)
        assert np.allclose(sims, corpus_build.span_vectors[start:start + count] @ q, atol=1e-6)
    assert published.span_similarity("no-such-id", q) is None
    assert published.manifest()["passage_count"] == len(nodes)


@pytest.mark.parametrize("filters", [
    Filters(document_ids=["dk-2023-2026"]),
    Filters(language="sv"),
    Filters(publisher="denmark"),
    Filters(year=2021),
    Filters(year=2021, language="en"),
    Filters(document_ids=["dk-2023-2026", "se-2020-2022"], publisher="Sweden"),
])
def test_filters_in_sql_keep_exactly_the_matching_documents(published, corpus_build, filters, questions):
    docs = {d.id: d for d in corpus_build.documents}

    def keep(doc) -> bool:
        years = doc.years
        return ((not filters.document_ids or doc.id in filters.document_ids)
                and (not filters.language or doc.language == filters.language)
                and (not filters.publisher or filters.publisher.lower() in doc.publisher.lower())
                and (not filters.year or (years is not None and years[0] <= filters.year <= years[1])))

    allowed = {n.node_id for n in corpus_build.nodes if keep(docs[n.metadata["document_id"]])}
    n = len(corpus_build.nodes)
    q = _query_vectors(corpus_build, 1)[0]
    assert {i for i, _ in published.dense(q, n, filters)} == allowed
    top = published.dense(q, 3, filters)
    assert len(top) == min(3, len(allowed)) and {i for i, _ in top} <= allowed
    tokens = query_tokens(questions[0]) + query_tokens("IOM migration funding")
    assert {i for i, _ in published.lexical(tokens, n, filters)} <= allowed


def test_a_written_build_is_served_only_once_published(pg_store, corpus_build):
    assert pg_store.build_id() is None
    first = pg_store.write(corpus_build)
    assert pg_store.build_id() is None  # written, not published
    pg_store.publish(first)
    assert pg_store.build_id() == first
    second = pg_store.write(corpus_build)
    assert pg_store.build_id() == first
    pg_store.publish(second)
    assert pg_store.build_id() == second and pg_store.serving_build == second
    builds = pg_store.builds()
    assert [b["build_id"] for b in builds if b["published"]] == [second]


def test_a_failed_write_leaves_the_previous_build_published_and_nothing_behind(pg_store, corpus_build):
    good = pg_store.write(corpus_build)
    pg_store.publish(good)
    broken_nodes = [n.model_copy(deep=True) for n in corpus_build.nodes]
    del broken_nodes[-1].metadata["document_id"]  # fails half-way through the COPY
    broken = Build(broken_nodes, corpus_build.vectors, corpus_build.lexical_tokens, corpus_build.span_vectors,
                   corpus_build.span_rows, corpus_build.documents, corpus_build.manifest)
    with pytest.raises(KeyError):
        pg_store.write(broken)
    assert pg_store.build_id() == good
    assert [b["build_id"] for b in pg_store.builds()] == [good]
    tables = pg_store._run(lambda c: c.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename ~ '_b[0-9]+$'",
        (pg_store.schema,)).fetchone()[0])
    assert tables == 3  # the good build's passages, terms and postings
    with pytest.raises(ValueError):
        pg_store.publish("no-such-build")
    assert pg_store.build_id() == good


def test_old_builds_are_pruned(pg_store, corpus_build):
    ids = []
    for _ in range(4):
        ids.append(pg_store.write(corpus_build))
        pg_store.publish(ids[-1])
    kept = [b["build_id"] for b in pg_store.builds()]
    assert kept == [ids[3], ids[2]]  # keep_builds = 2: the published one and the one before
    tables = pg_store._run(lambda c: c.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename ~ '_b[0-9]+$'",
        (pg_store.schema,)).fetchone()[0])
    assert tables == 6


def test_a_store_object_keeps_reading_its_build_until_refreshed(pg_server, pg_schema, corpus_build):
    from assistant.stores.postgres import PgOptions, PostgresStore

    writer = PostgresStore(pg_server.url, PgOptions(schema=pg_schema))
    first = writer.write(corpus_build)
    writer.publish(first)
    reader = PostgresStore(pg_server.url, PgOptions(schema=pg_schema))
    assert reader.serving_build == first
    second = writer.write(corpus_build)
    writer.publish(second)
    assert reader.build_id() == second  # what the database publishes now
    assert reader.serving_build == first and reader.documents()  # still reading its own build (kept: 2)
    assert reader.refresh() == second and reader.serving_build == second


def test_hnsw_above_the_exact_size(pg_server, pg_schema, corpus_build):
    from assistant.stores.postgres import PgOptions, PostgresStore

    store = PostgresStore(pg_server.url, PgOptions(schema=pg_schema, exact_below=100, hnsw_ef_search=40))
    store.publish(store.write(corpus_build))
    p = store._current().table("passages")

    def explain(conn):
        with conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")  # as dense() does above exact_below
            return conn.execute(f"EXPLAIN SELECT passage_id FROM {p} ORDER BY (embedding::vector(384)) "
                                "<#> %s::vector(384) LIMIT 10", (corpus_build.vectors[0],)).fetchall()
    assert "passages_b1_hnsw" in " ".join(r[0] for r in store._run(explain))
    recall = []
    for q in _query_vectors(corpus_build):
        exact = {corpus_build.nodes[i].node_id for i in np.argsort(-(corpus_build.vectors @ q))[:10]}
        got = store.dense(q, 10)
        assert len(got) == 10
        recall.append(len(exact & {i for i, _ in got}) / 10)
        filtered = store.dense(q, 10, Filters(document_ids=["se-2020-2022"]))
        assert len(filtered) == 10
        assert {n.metadata["document_id"] for n in store.get([i for i, _ in filtered])} == {"se-2020-2022"}
    assert np.mean(recall) >= 0.9
    assert len(store.dense(corpus_build.vectors[0], len(corpus_build.nodes))) == len(corpus_build.nodes)  # exact


def test_database_down_is_store_unavailable_then_recovers(tmp_path, corpus_build):
    from assistant.stores.pglocal import LocalPostgres
    from assistant.stores.postgres import PgOptions, PostgresStore

    server = LocalPostgres(tmp_path / "data").start()  # durable: an immediate stop loses no commit
    try:
        store = PostgresStore(server.url, PgOptions(schema="outage", timeout_s=1))  # each refused call waits this long
        store.publish(store.write(corpus_build))
        q = corpus_build.vectors[0]
        assert store.dense(q, 3)
        from assistant.api.security import make_bucket

        bucket = make_bucket(make_settings(tmp_path, CORPUS, store="postgres", database_url=server.url,
                                           database_schema="outage"), "requests", 2)
        assert bucket.take("key:a") == 0.0
        server.kill()
        with pytest.raises(StoreUnavailable, match="database is unavailable"):
            store.dense(q, 3)
        # the rate limit falls back to the worker's own bucket instead of failing requests
        assert bucket.take("key:a") == 0.0 and bucket.take("key:a") == 0.0 and bucket.take("key:a") > 0
        with pytest.raises(StoreUnavailable):
            store.build_id()
        server.start()
        assert store.dense(q, 3)[0][0] == corpus_build.nodes[0].node_id
        assert store.build_id() == store.serving_build
    finally:
        server.stop("immediate")


def test_rate_limit_buckets_are_shared_through_the_database(pg_server, pg_schema):
    from assistant.api.security import make_bucket

    settings = make_settings(Path("/nonexistent"), CORPUS, store="postgres", database_url=pg_server.url,
                             database_schema=pg_schema)
    one, two = make_bucket(settings, "requests", 3), make_bucket(settings, "requests", 3)  # two workers
    assert [one.take("key:a"), two.take("key:a"), one.take("key:a")] == [0.0, 0.0, 0.0]
    wait = two.take("key:a")
    assert 0 < wait <= 20.5  # 3 a minute: the next token within 20 s
    assert one.peek("key:a") > 0 and one.take("key:b") == 0.0  # per client
    other = make_bucket(settings, "failed_auth", 3)
    assert other.take("key:a") == 0.0  # per limiter


def test_feedback_is_shared_through_the_database(pg_server, pg_schema, tmp_path):
    from assistant.records import Feedback
    from assistant.service import AssistantService
    from assistant.stores.shared import PgFeedbackLog, shared_store

    settings = make_settings(tmp_path, CORPUS, store="postgres", database_url=pg_server.url, database_schema=pg_schema)
    for worker in (AssistantService(settings), AssistantService(settings)):
        worker.feedback(Feedback(question="What did Denmark give?", answer="USD 1", rating="down"))
    assert not settings.feedback_path.exists()
    out = tmp_path / "exported.jsonl"
    assert PgFeedbackLog(shared_store(settings)).export(out) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["rating"] for r in rows} == {"down"} and all("timestamp" in r for r in rows)


def test_the_teams_replay_cache_is_shared_through_the_database(pg_server, pg_schema, tmp_path):
    from assistant.stores.shared import PgReplayCache, shared_store

    settings = make_settings(tmp_path, CORPUS, store="postgres", database_url=pg_server.url, database_schema=pg_schema)
    one, two = PgReplayCache(shared_store(settings)), PgReplayCache(shared_store(settings))  # two workers
    assert one.seen_before(["activity:1", "body:aa"], 60) is False
    assert two.seen_before(["activity:1"], 60) is True  # the replay reaches the other worker: refused
    assert two.seen_before(["activity:2", "body:aa"], 60) is True  # same body, new id
    assert one.seen_before(["activity:3"], 0.0) is False
    assert two.seen_before(["activity:3"], 60) is False  # expired: recorded afresh
    assert one.seen_before(["activity:3"], 60) is True
