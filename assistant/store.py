"""The passage store: the one owner of a published build's passages and their search.

Retrieval, the service and the answerer read passages only through a ``PassageStore``; what
sits behind it (FAISS + bm25s files under ``index_dir``, or PostgreSQL with pgvector) is
picked by name from a registry in the composition root (``settings.store``).

A build is written unpublished (``write``), then made current in one step (``publish``): a
failed write leaves the previous build serving. ``build_id`` is cheap, so a running worker
can poll it and reload when another process publishes.

Scores come back as ``(passage id, score)`` pairs, best first. With ``k`` at least the number
of passages a store returns every passage (the local store always can), so the fusion sees
full score vectors, exactly as before the seam existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from llama_index.core.schema import TextNode

from assistant.records import DocumentInfo, Filters

Scored = list[tuple[str, float]]
"""(passage id, score) pairs, best first."""


class IndexUnavailable(Exception):
    """No published build, or one this code cannot read; the message says what to do (re-index)."""


@dataclass
class Build:
    """Everything one index build holds, in memory, before a store writes it."""

    nodes: list[TextNode]
    vectors: np.ndarray
    """One unit vector per node, in node order (float32, shape (len(nodes), dims))."""
    lexical_tokens: list[list[str]]
    """The BM25 tokens of each node, in node order."""
    span_vectors: np.ndarray
    """One unit vector per sentence or table row (``evidence.split_spans`` order)."""
    span_rows: dict[str, tuple[int, int]]
    """Passage id -> (first row in ``span_vectors``, number of spans)."""
    documents: list[DocumentInfo]
    """The documents indexed in this build."""
    manifest: dict = field(default_factory=dict)
    """Embedding name and model id, dims, chunker version, corpus fingerprint, timings."""


@dataclass(frozen=True)
class StoreStats:
    """Corpus statistics saved with the build, so nothing is recomputed from every text at load."""

    passages: int
    idf: dict[str, float]
    """Index token -> inverse document frequency over the passages."""
    idf_default: float
    """The idf of a token no passage has."""
    vocabulary: frozenset[str]
    """The words of the passages (not numbers), for typo correction of questions."""
    passages_per_document: dict[str, int]


@runtime_checkable
class PassageStore(Protocol):
    """Where passages live and how they are searched. Implementations are thread-safe for reads."""

    name: str

    # -- builds ------------------------------------------------------------------------------
    def write(self, build: Build) -> str:
        """Persist ``build`` without publishing it; returns its build id."""

    def publish(self, build_id: str) -> None:
        """Make ``build_id`` the current build in one atomic step, then prune old builds."""

    def build_id(self) -> str | None:
        """The id of the published build (cheap: workers poll it), or None when there is none."""

    def manifest(self) -> dict:
        """The published build's manifest (see ``Build.manifest``)."""

    # -- search ------------------------------------------------------------------------------
    def dense(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> Scored:
        """Inner product of ``vector`` with the passage vectors, the ``k`` best."""

    def lexical(self, tokens: list[str], k: int, filters: Filters | None = None) -> Scored:
        """BM25 of the query tokens against the passages, the ``k`` best with a score above 0."""

    def span_similarity(self, passage_id: str, vector: np.ndarray) -> np.ndarray | None:
        """Cosine similarity of ``vector`` to each span of the passage, in ``split_spans`` order."""

    # -- reading -----------------------------------------------------------------------------
    def get(self, ids: list[str]) -> list[TextNode]:
        """The passages with these ids, in the given order; unknown ids are left out."""

    def neighbours(self, passage_id: str) -> tuple[TextNode | None, TextNode | None]:
        """The passages before and after this one in its document."""

    def documents(self) -> list[DocumentInfo]:
        """The documents of the published build."""

    def stats(self) -> StoreStats:
        """Corpus statistics of the published build."""
