"""The retriever over the passage store: full score vectors by default, the union of top-k lists when asked.

On the fast tier (the fixture corpus embedded by the hashing embedder): what is tested is how the
retriever combines what the store returns, not how good the vectors are.
"""

from __future__ import annotations

import pytest

from assistant.records import Filters
from assistant.retrieval import HybridRetriever, UnknownFilter

QUESTIONS = [
    "What did Denmark give IOM unearmarked in 2022?",
    "Hur mycket kärnstöd gav Sverige till IOM?",
    "Which priorities does the Danish strategy set for 2023-2026?",
]


@pytest.fixture(scope="module")
def parts(fast_service):
    return fast_service.parts()


def test_asking_for_every_passage_is_the_default(parts):
    store, default = parts.store, parts.retriever
    every = HybridRetriever(store, default.embedder, candidates=store.stats().passages)
    assert default.full_scan and every.full_scan
    for q in QUESTIONS:
        a, b = default.search(default.plan(q), 10), every.search(every.plan(q), 10)
        assert [(h.node.node_id, h.score) for h in a] == [(h.node.node_id, h.score) for h in b]


def test_a_full_scan_fuses_every_passage(parts):
    retriever = parts.retriever
    cands = retriever.candidates(retriever.plan(QUESTIONS[0]))
    assert len(cands.nodes) == parts.store.stats().passages
    assert len(set(n.node_id for n in cands.nodes)) == len(cands.nodes)


def test_top_k_candidates_are_fused_over_the_union_of_both_lists(parts):
    """A store over a large corpus returns each signal's k best: the fusion runs over their union."""
    store, full = parts.store, parts.retriever
    k = 12
    partial = HybridRetriever(store, full.embedder, candidates=k)
    assert not partial.full_scan
    for q in QUESTIONS:
        plan = partial.plan(q)
        lexical = {i for i, _ in store.lexical(plan.tokens, k)}
        dense = {i for i, _ in store.dense(partial.query_vector(plan), k)}
        cands = partial.candidates(plan)
        assert {n.node_id for n in cands.nodes} == lexical | dense
        hits = partial.search(plan, 5)
        assert hits and {h.node.node_id for h in hits} <= lexical | dense
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        # the best passage of the full scan is among both lists' best, so it wins here too
        best = full.search(full.plan(q), 1)[0].node.node_id
        if best in lexical and best in dense:
            assert hits[0].node.node_id == best


def test_filters_apply_in_both_modes(parts):
    store, full = parts.store, parts.retriever
    partial = HybridRetriever(store, full.embedder, candidates=8)
    only_sv = Filters(language="sv")
    for retriever in (full, partial):
        hits = retriever.search(retriever.plan(QUESTIONS[0]), 5, only_sv)
        assert hits and {h.node.metadata["language"] for h in hits} == {"sv"}
        with pytest.raises(UnknownFilter):
            retriever.search(retriever.plan(QUESTIONS[0]), 5, Filters(document_ids=["no-such-doc"]))


def test_the_setting_sets_the_candidate_count(fast_settings):
    from assistant.compose import loaded_service

    service = loaded_service(fast_settings.model_copy(update={"retrieval_candidates": 10}))
    retriever = service.parts().retriever
    assert retriever.candidates_k == 10 and not retriever.full_scan
    answer = service.ask("What did Denmark give IOM unearmarked in 2022?")
    assert answer.passages and len(answer.passages) <= 5
