"""The PassageStore contract, for every store: the local one (FAISS + bm25s files) and PostgreSQL.

Each test runs once per store on the real corpus build; the last ones check that the two stores
agree with each other score for score, which is what makes the answers the same.
"""

from __future__ import annotations

import numpy as np
import pytest

from assistant.lexical import query_tokens
from assistant.records import Filters
from assistant.store import Build, PassageStore

STORES = ["local", "postgres"]


@pytest.fixture
def build(corpus_build) -> Build:
    return corpus_build


def _empty_store(kind: str, request, tmp_path) -> PassageStore:
    if kind == "local":
        from assistant.stores.local import LocalStore

        return LocalStore(tmp_path / "index")
    from assistant.stores.postgres import PgOptions, PostgresStore

    server = request.getfixturevalue("pg_server")
    return PostgresStore(server.url, PgOptions(schema=request.getfixturevalue("pg_schema")))


@pytest.fixture(params=STORES)
def empty(request, tmp_path) -> PassageStore:
    return _empty_store(request.param, request, tmp_path)


@pytest.fixture(params=STORES)
def store(request, tmp_path, build) -> PassageStore:
    s = _empty_store(request.param, request, tmp_path)
    s.publish(s.write(build))
    return s


@pytest.fixture
def both(request, tmp_path, build) -> tuple[PassageStore, PassageStore]:
    out = []
    for kind in STORES:
        s = _empty_store(kind, request, tmp_path / kind)
        s.publish(s.write(build))
        out.append(s)
    return out[0], out[1]


def _vectors(build: Build, n: int = 8) -> np.ndarray:
    rng = np.random.default_rng(3)
    q = build.vectors[rng.choice(len(build.nodes), n, replace=False)] + rng.normal(0, 0.03, (n, build.vectors.shape[1]))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


QUESTIONS = ["What did Denmark give IOM unearmarked in 2022?", "Vilka är Sveriges prioriteringar för IOM?",
             "IOM total revenue 2020", "How many migrants did IOM assist in 2019?", "earmarked funding Nigeria"]


def test_publish_makes_a_written_build_current(empty, build):
    assert isinstance(empty, PassageStore)
    assert empty.build_id() is None
    first = empty.write(build)
    assert empty.build_id() is None
    empty.publish(first)
    assert empty.build_id() == first
    second = empty.write(build)
    assert empty.build_id() == first and second != first
    empty.publish(second)
    assert empty.build_id() == second


def test_search_and_reading(store, build):
    n = len(build.nodes)
    q = _vectors(build, 1)[0]
    scored = store.dense(q, n)
    assert len(scored) == n and [s for _, s in scored] == sorted((s for _, s in scored), reverse=True)
    assert [i for i, _ in store.dense(q, 5)] == [i for i, _ in scored[:5]]
    lexical = store.lexical(query_tokens(QUESTIONS[0]), 10)
    assert 0 < len(lexical) <= 10 and all(s > 0 for _, s in lexical)
    assert store.lexical(["qqqqnotatoken"], 10) == []
    ids = [i for i, _ in lexical[:3]]
    assert [node.node_id for node in store.get(ids + ["nope"])] == ids
    prev, nxt = store.neighbours(build.nodes[1].node_id)
    assert (prev.node_id, nxt.node_id) == (build.nodes[0].node_id, build.nodes[2].node_id)
    assert [d.id for d in store.documents()] == [d.id for d in build.documents]
    assert store.stats().passages == n
    start, count = build.span_rows[build.nodes[3].node_id]
    assert np.allclose(store.span_similarity(build.nodes[3].node_id, q), build.span_vectors[start:start + count] @ q,
                       atol=1e-5)
    assert store.manifest()["passage_count"] == n


def test_filters(store, build):
    docs = {d.id: d for d in build.documents}
    q = _vectors(build, 1)[0]
    n = len(build.nodes)
    for filters in (Filters(document_ids=["se-2020-2022"]), Filters(language="sv"), Filters(publisher="migration"),
                    Filters(year=2022)):
        hits = store.get([i for i, _ in store.dense(q, n, filters)])
        assert hits and all(filters.admits(docs[h.metadata["document_id"]]) for h in hits)
        hits = store.get([i for i, _ in store.lexical(query_tokens(QUESTIONS[2]), n, filters)])
        assert all(filters.admits(docs[h.metadata["document_id"]]) for h in hits)


def test_the_two_stores_score_alike(both, build):
    local, pg = both
    n = len(build.nodes)
    for q in _vectors(build):
        a, b = dict(local.dense(q, n)), dict(pg.dense(q, n))
        assert a.keys() == b.keys()
        assert max(abs(a[i] - b[i]) for i in a) < 1e-5
    for question in QUESTIONS:
        tokens = query_tokens(question)
        a, b = dict(local.lexical(tokens, n)), dict(pg.lexical(tokens, n))
        assert a.keys() == b.keys(), question
        assert max((abs(a[i] - b[i]) / max(a[i], 1e-9) for i in a), default=0) < 1e-5, question
    sa, sb = local.stats(), pg.stats()
    assert sa.passages == sb.passages and sa.vocabulary == sb.vocabulary
    assert sa.passages_per_document == sb.passages_per_document
    assert sa.idf.keys() == sb.idf.keys() and all(abs(sa.idf[t] - sb.idf[t]) < 1e-9 for t in sa.idf)
    assert abs(sa.idf_default - sb.idf_default) < 1e-9
    assert local.documents() == pg.documents()
    ids = [node.node_id for node in build.nodes[::37]]
    assert [x.model_dump() for x in local.get(ids)] == [x.model_dump() for x in pg.get(ids)]
