"""Hybrid retrieval: BM25 and dense (FAISS) scores fused, steered by what the query names.

The corpus is small (hundreds of passages), so both signals score every passage and the
fusion sees full score vectors rather than two truncated lists: a passage that is second
on both counts is not lost, and filters and boosts apply before the cut.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from assistant.indexing import LoadedIndex
from assistant.lexical import words
from assistant.query import QueryPlan, plan_query
from assistant.records import Filters, Turn
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


class HybridRetriever(BaseRetriever):
    """A llama-index retriever over a ``LoadedIndex``; ``search`` takes a prepared ``QueryPlan``."""

    def __init__(self, index: LoadedIndex, embedder, top_k: int = 5, weights: FusionWeights | None = None):
        super().__init__()
        self.index = index
        self.embedder = embedder
        self.top_k = top_k
        self.weights = weights or FusionWeights()
        self._vocab_ids = index.bm25.vocab_dict
        texts = [n.text for n in index.nodes]
        self.vocabulary: set[str] = {w for t in texts for w in words(t) if not w[0].isdigit()}
        self._choices = sorted(self.vocabulary)
        # Per-passage facts the fusion needs on every query, computed once.
        self._docs = [index.doc_of[n.metadata["document_id"]] for n in index.nodes]
        self._doc_ids = np.array([d.id for d in self._docs])
        self._years_in_text = [frozenset(int(y) for y in YEAR.findall(t)) for t in texts]
        spans = [d.years or (0, -1) for d in self._docs]
        self._span_start = np.array([a for a, _ in spans])
        self._span_end = np.array([b for _, b in spans])

    def plan(self, question: str, history: list[Turn] | None = None) -> QueryPlan:
        return plan_query(question, self.index.documents, self.vocabulary, self._choices, history)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.search(self.plan(query_bundle.query_str), self.top_k)

    # -- scoring -----------------------------------------------------------------------------
    def bm25_scores(self, plan: QueryPlan) -> np.ndarray:
        tokens = [t for t in plan.tokens if t in self._vocab_ids]
        if not tokens:
            return np.zeros(len(self.index.nodes), dtype=np.float32)
        return np.asarray(self.index.bm25.get_scores(tokens), dtype=np.float32)

    def query_vector(self, plan: QueryPlan) -> np.ndarray:
        """The question's unit vector (the embedder remembers recent ones). Only the first
        ``MAX_EMBEDDED_CHARS`` are embedded: a question at the size limit would otherwise cost
        seconds of model time while other questions wait."""
        return np.asarray(self.embedder.embed_query(plan.search_text[:MAX_EMBEDDED_CHARS]), dtype=np.float32)

    def dense_scores(self, plan: QueryPlan) -> np.ndarray:
        vec = self.query_vector(plan).reshape(1, -1)
        n = self.index.faiss_index.ntotal
        sims, rows = self.index.faiss_index.search(vec, n)
        out = np.zeros(n, dtype=np.float32)
        out[rows[0]] = sims[0]
        return out

    def mask(self, filters: Filters | None) -> np.ndarray:
        keep = np.ones(len(self.index.nodes), dtype=bool)
        if not filters:
            return keep
        if filters.document_ids:
            unknown = [d for d in filters.document_ids if d not in self.index.doc_of]
            if unknown:
                raise UnknownFilter(f"unknown document id(s): {', '.join(unknown)}")
            keep &= np.isin(self._doc_ids, filters.document_ids)
        if filters.language:
            keep &= np.array([d.language == filters.language for d in self._docs])
        if filters.publisher:
            keep &= np.array([filters.publisher.lower() in d.publisher.lower() for d in self._docs])
        if filters.year:
            keep &= self._covers([filters.year])
        return keep

    def _covers(self, years: list[int]) -> np.ndarray:
        """Passages whose document's period includes one of ``years``."""
        return np.any([(self._span_start <= y) & (y <= self._span_end) for y in years], axis=0)

    def fuse(self, plan: QueryPlan, bm25: np.ndarray, dense: np.ndarray) -> np.ndarray:
        w = self.weights
        b = bm25 / bm25.max() if bm25.max() > 0 else bm25
        floor = np.median(dense)
        d = np.clip((dense - floor) / max(dense.max() - floor, 1e-6), 0, 1)
        score = w.bm25 * b + w.dense * d
        if plan.documents:
            score += w.named_document * np.isin(self._doc_ids, plan.documents)
        if plan.years:
            asked = set(plan.years)
            score += w.year_in_text * np.array([bool(ys & asked) for ys in self._years_in_text])
            score += w.year_in_period * self._covers(plan.years)
        if plan.excluded_years:
            single_year = self._span_start == self._span_end
            score -= w.excluded_year * (single_year & np.all(
                [(self._span_start <= y) & (y <= self._span_end) for y in plan.excluded_years], axis=0))
        return score

    def search(self, plan: QueryPlan, top_k: int, filters: Filters | None = None) -> list[NodeWithScore]:
        keep = self.mask(filters)
        score = self.fuse(plan, self.bm25_scores(plan), self.dense_scores(plan))
        score = np.where(keep, score, -np.inf)
        order = np.argsort(-score)[:top_k]
        return [NodeWithScore(node=self.index.nodes[i], score=float(score[i])) for i in order if np.isfinite(score[i])]

    def gather(self, plan: QueryPlan, top_k: int, filters: Filters | None = None) -> list[NodeWithScore]:
        """``search``, then for a question with several sides the best ``SCOPE_K`` passages of each
        side that the main results lack, so that every side has evidence."""
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
