"""Hybrid retrieval: BM25 and dense scores from the passage store, fused, steered by what the query names.

The store returns each signal's ``k`` best passages. On a small corpus ``k`` is every passage,
so the fusion sees full score vectors rather than two truncated lists: a passage that is second
on both counts is not lost, and filters and boosts apply before the cut. A store over a large
corpus may be asked for fewer (``candidates``): the fusion then runs over the union of the two
lists, a passage missing from one list taking that list's lowest score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from assistant.query import QueryPlan, Vocabulary, part_plan, plan_query
from assistant.records import Filters, Turn
from assistant.store import PassageStore
from assistant.text import YEAR


@dataclass(frozen=True)
class FusionWeights:
    bm25: float = 0.5
    dense: float = 0.5
    named_document: float = 0.35
    year_in_text: float = 0.08
    year_in_period: float = 0.12
    excluded_year: float = 0.4


MAX_EMBEDDED_CHARS = 600


SCOPE_K = 2
"""Passages searched per side of a question with several (``scopes``)."""


class UnknownFilter(ValueError):
    pass


@dataclass(frozen=True)
class _Facts:
    """What the fusion needs of a passage on every query, computed once per passage."""

    position: tuple[int, int, int]
    """Document order, then offsets: the order passages were indexed in (ties fall the same way)."""
    document_id: str
    years_in_text: frozenset[int]
    period: tuple[int, int]


@dataclass
class Candidates:
    """The passages both signals returned (in index order), with their scores and the filter mask."""

    nodes: list[TextNode]
    bm25: np.ndarray
    dense: np.ndarray
    keep: np.ndarray
    doc_ids: np.ndarray
    years_in_text: list[frozenset[int]]
    period_start: np.ndarray
    period_end: np.ndarray

    def covers(self, years: list[int]) -> np.ndarray:
        """Passages whose document's period includes one of ``years``."""
        return np.any([(self.period_start <= y) & (y <= self.period_end) for y in years], axis=0)


class HybridRetriever(BaseRetriever):
    """A llama-index retriever over a ``PassageStore``; ``search`` takes a prepared ``QueryPlan``."""

    def __init__(self, store: PassageStore, embedder, top_k: int = 5, weights: FusionWeights | None = None,
                 candidates: int | None = None):
        """``candidates``: how many passages to ask each signal for; None: every passage."""
        super().__init__()
        self.store = store
        self.embedder = embedder
        self.top_k = top_k
        self.weights = weights or FusionWeights()
        stats = store.stats()
        self.documents = store.documents()
        self.doc_of = {d.id: d for d in self.documents}
        self._doc_order = {d.id: i for i, d in enumerate(self.documents)}
        self.vocabulary = Vocabulary.of(stats.vocabulary)
        self.passages = stats.passages
        self.candidates_k = min(candidates or self.passages, self.passages)
        self._facts: dict[str, _Facts] = {}
        self._full: tuple[Candidates, dict[str, int]] | None = None

    @property
    def full_scan(self) -> bool:
        """Each signal scores every passage (the fusion is over full score vectors)."""
        return self.candidates_k >= self.passages

    def plan(self, question: str, history: list[Turn] | None = None) -> QueryPlan:
        return plan_query(question, self.documents, self.vocabulary, history)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.search(self.plan(query_bundle.query_str), self.top_k)

    # -- scoring -----------------------------------------------------------------------------
    def query_vector(self, plan: QueryPlan) -> np.ndarray:
        """The question's unit vector (the embedder remembers recent ones). Only the first
        ``MAX_EMBEDDED_CHARS`` are embedded: a question at the size limit would otherwise cost
        seconds of model time while other questions wait."""
        return np.asarray(self.embedder.embed_query(plan.search_text[:MAX_EMBEDDED_CHARS]), dtype=np.float32)

    def prepare(self, plan: QueryPlan) -> None:
        """Embed, in one model call, every text a question is scored on: its own and those of the
        things it asks (``QueryPlan.parts``, ranked by the answerer), which one by one cost twice."""
        plans = [plan, *(part_plan(plan, p) for p in plan.parts)]
        self.embedder.embed_queries([p.search_text[:MAX_EMBEDDED_CHARS] for p in plans])

    def check_filters(self, filters: Filters | None) -> None:
        if filters and filters.document_ids:
            unknown = [d for d in filters.document_ids if d not in self.doc_of]
            if unknown:
                raise UnknownFilter(f"unknown document id(s): {', '.join(unknown)}")

    def candidates(self, plan: QueryPlan, filters: Filters | None = None) -> Candidates:
        """Both signals' passages from the store. A full scan asks unfiltered (the dense floor is the
        median over every passage) and masks afterwards; a partial one lets the store filter."""
        self.check_filters(filters)
        pushed = None if self.full_scan else filters
        k = self.candidates_k
        lexical = self.store.lexical(plan.tokens, k, pushed)
        dense = self.store.dense(self.query_vector(plan), k, pushed)
        if self.full_scan:  # every passage, every time: the layout is the same, only the scores differ
            layout, rows = self._full_layout(dense)
        else:
            layout = self._layout(self.store.get(list(dict.fromkeys([i for i, _ in dense] + [i for i, _ in lexical]))))
            rows = {n.node_id: i for i, n in enumerate(layout.nodes)}
        bm25 = np.zeros(len(layout.nodes), dtype=np.float32)
        vectors = np.full(len(layout.nodes), min((v for _, v in dense), default=0.0), dtype=np.float32)
        for i, v in lexical:
            bm25[rows[i]] = v
        for i, v in dense:
            vectors[rows[i]] = v
        keep = layout.keep
        if filters is not None and not filters.empty:
            admitted = [d for d, doc in self.doc_of.items() if filters.admits(doc)]
            keep = np.isin(layout.doc_ids, admitted)
        return replace(layout, bm25=bm25, dense=vectors, keep=keep)

    def _full_layout(self, dense: list[tuple[str, float]]) -> tuple[Candidates, dict[str, int]]:
        """The layout of every passage and each passage's row, made on the first full scan (whose
        dense list has them all); concurrent first scans make the same one."""
        if self._full is None:
            layout = self._layout(self.store.get([i for i, _ in dense]))
            self._full = layout, {n.node_id: i for i, n in enumerate(layout.nodes)}
        return self._full

    def _layout(self, nodes: list[TextNode]) -> Candidates:
        """Passages in index order with the per-passage facts the fusion reads (no scores yet)."""
        facts = [self._facts_of(n) for n in nodes]
        order = sorted(range(len(nodes)), key=lambda i: facts[i].position)
        nodes, facts = [nodes[i] for i in order], [facts[i] for i in order]
        empty = np.zeros(len(nodes), dtype=np.float32)
        return Candidates(
            nodes=nodes,
            bm25=empty,
            dense=empty,
            keep=np.ones(len(nodes), dtype=bool),
            doc_ids=np.array([f.document_id for f in facts]),
            years_in_text=[f.years_in_text for f in facts],
            period_start=np.array([f.period[0] for f in facts]),
            period_end=np.array([f.period[1] for f in facts]),
        )

    def _facts_of(self, node: TextNode) -> _Facts:
        facts = self._facts.get(node.node_id)
        if facts is None:
            md = node.metadata
            doc = self.doc_of[md["document_id"]]
            facts = _Facts(
                position=(self._doc_order[doc.id], int(md.get("start") or 0), int(md.get("end") or 0)),
                document_id=doc.id,
                years_in_text=frozenset(int(y) for y in YEAR.findall(node.text)),
                period=doc.years or (0, -1),
            )
            self._facts[node.node_id] = facts
        return facts

    def fuse(self, plan: QueryPlan, cands: Candidates) -> np.ndarray:
        w = self.weights
        bm25, dense = cands.bm25, cands.dense
        if not len(bm25):
            return bm25
        b = bm25 / bm25.max() if bm25.max() > 0 else bm25
        floor = np.median(dense)
        d = np.clip((dense - floor) / max(dense.max() - floor, 1e-6), 0, 1)
        score = w.bm25 * b + w.dense * d
        if plan.documents:
            score += w.named_document * np.isin(cands.doc_ids, plan.documents)
        if plan.years:
            asked = set(plan.years)
            score += w.year_in_text * np.array([bool(ys & asked) for ys in cands.years_in_text])
            score += w.year_in_period * cands.covers(plan.years)
        if plan.excluded_years:
            single_year = cands.period_start == cands.period_end
            score -= w.excluded_year * (single_year & np.all(
                [(cands.period_start <= y) & (y <= cands.period_end) for y in plan.excluded_years], axis=0))
        return score

    def search(self, plan: QueryPlan, top_k: int, filters: Filters | None = None) -> list[NodeWithScore]:
        cands = self.candidates(plan, filters)
        score = np.where(cands.keep, self.fuse(plan, cands), -np.inf)
        order = np.argsort(-score)[:top_k]
        return [NodeWithScore(node=cands.nodes[i], score=float(score[i])) for i in order if np.isfinite(score[i])]

    def gather(self, plan: QueryPlan, top_k: int, filters: Filters | None = None) -> list[NodeWithScore]:
        """``search``, then for a question with several sides the best ``SCOPE_K`` passages of each
        side that the main results lack, so that every side has evidence."""
        self.prepare(plan)
        hits = self.search(plan, top_k, filters)
        seen = {h.node.node_id for h in hits}
        for scope in plan.scopes:
            allowed = [d for d in scope.documents if not (filters and filters.document_ids) or d in filters.document_ids]
            if not allowed:
                continue
            side = replace(plan, years=[scope.year]) if scope.year else plan
            narrowed = (filters or Filters()).model_copy(update={"document_ids": allowed})
            for hit in self.search(side, SCOPE_K, narrowed):
                if hit.node.node_id not in seen:
                    seen.add(hit.node.node_id)
                    hits.append(hit)
        return hits
