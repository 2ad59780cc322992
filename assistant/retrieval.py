"""Hybrid retrieval: BM25 and dense (FAISS) scores fused, steered by what the query names.

The corpus is small (hundreds of passages), so both signals score every passage and the
fusion sees full score vectors rather than two truncated lists: a passage that is second
on both counts is not lost, and filters and boosts apply before the cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from assistant.indexing import LoadedIndex
from assistant.lexical import words
from assistant.query import QueryPlan, plan_query
from assistant.records import Filters, Turn


@dataclass(frozen=True)
class FusionWeights:
    bm25: float = 0.5
    dense: float = 0.5
    named_document: float = 0.35
    year_in_text: float = 0.08
    year_in_period: float = 0.12
    excluded_year: float = 0.4


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
        self._lower_texts = [t.lower() for t in texts]

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

    def dense_scores(self, plan: QueryPlan) -> np.ndarray:
        vec = np.asarray(self.embedder.embed_query(plan.question), dtype=np.float32).reshape(1, -1)
        n = self.index.faiss_index.ntotal
        sims, rows = self.index.faiss_index.search(vec, n)
        out = np.zeros(n, dtype=np.float32)
        out[rows[0]] = sims[0]
        return out

    def mask(self, filters: Filters | None) -> np.ndarray:
        keep = np.ones(len(self.index.nodes), dtype=bool)
        if not filters:
            return keep
        docs = self.index.doc_of
        if filters.document_ids:
            unknown = [d for d in filters.document_ids if d not in docs]
            if unknown:
                raise UnknownFilter(f"unknown document id(s): {', '.join(unknown)}")
        for i, node in enumerate(self.index.nodes):
            doc = docs[node.metadata["document_id"]]
            if filters.document_ids and doc.id not in filters.document_ids:
                keep[i] = False
            elif filters.language and doc.language != filters.language:
                keep[i] = False
            elif filters.publisher and filters.publisher.lower() not in doc.publisher.lower():
                keep[i] = False
            elif filters.year and not (doc.years and doc.years[0] <= filters.year <= doc.years[1]):
                keep[i] = False
        return keep

    def fuse(self, plan: QueryPlan, bm25: np.ndarray, dense: np.ndarray) -> np.ndarray:
        w = self.weights
        b = bm25 / bm25.max() if bm25.max() > 0 else bm25
        floor = np.median(dense)
        d = np.clip((dense - floor) / max(dense.max() - floor, 1e-6), 0, 1)
        score = w.bm25 * b + w.dense * d
        docs = self.index.doc_of
        for i, node in enumerate(self.index.nodes):
            doc = docs[node.metadata["document_id"]]
            if plan.documents and doc.id in plan.documents:
                score[i] += w.named_document
            span = doc.years
            if plan.years:
                if any(re.search(rf"\b{y}\b", self._lower_texts[i]) for y in plan.years):
                    score[i] += w.year_in_text
                if span and any(span[0] <= y <= span[1] for y in plan.years):
                    score[i] += w.year_in_period
            if plan.excluded_years and span and all(span[0] <= y <= span[1] for y in plan.excluded_years) \
                    and span[0] == span[1]:
                score[i] -= w.excluded_year
        return score

    def search(self, plan: QueryPlan, top_k: int, filters: Filters | None = None) -> list[NodeWithScore]:
        keep = self.mask(filters)
        score = self.fuse(plan, self.bm25_scores(plan), self.dense_scores(plan))
        score = np.where(keep, score, -np.inf)
        order = np.argsort(-score)[:top_k]
        return [NodeWithScore(node=self.index.nodes[i], score=float(score[i])) for i in order if np.isfinite(score[i])]
