"""The composition root: the one place the parts named in the settings are built and wired.

The server, the CLI, the evals and the benches get their service (and the indexer its store and
embedder) from here; each part is picked by name from its registry:

- embedders: ``assistant.embeddings.register_embedding`` / ``get_embedding`` (``settings.embedding_model``)
- passage stores: ``assistant.stores.register_store`` / ``open_store`` (``settings.store``)
- answerers: ``assistant.answerers.register_answerer`` / ``make_answerer`` (``settings.answerer``)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from assistant.answerers import Answerer
    from assistant.embeddings import CachedEmbedder
    from assistant.ranker import Ranker
    from assistant.retrieval import HybridRetriever
    from assistant.service import AssistantService
    from assistant.store import PassageStore


def make_embedder(settings: Settings, *, batch_queries: bool = False) -> CachedEmbedder:
    """The embedding ``settings.embedding_model`` names, behind the on-disk passage cache."""
    from assistant.embeddings import CachedEmbedder, get_embedding

    embedder = CachedEmbedder(get_embedding(settings.embedding_model), settings.embedding_cache_dir)
    if batch_queries:
        embedder.batch_queries(settings.query_batch_size, settings.query_batch_wait_ms / 1000)
    return embedder


def make_store(settings: Settings) -> PassageStore:
    """The passage store ``settings.store`` names (unloaded: it reads its build on first use)."""
    from assistant.stores import open_store

    return open_store(settings)


@dataclass(frozen=True)
class Parts:
    """What a loaded service answers with: one published build and what reads it."""

    store: PassageStore
    retriever: HybridRetriever
    answerer: Answerer


def assemble(settings: Settings, ranker: Ranker | None = None) -> Parts:
    """Open the published build and wire retriever and answerer to it (seconds: models load here)."""
    from assistant.answerers import AnswererParts, make_answerer
    from assistant.indexing.staleness import check_compatible
    from assistant.ranker import Ranker
    from assistant.retrieval import HybridRetriever

    if settings.model_threads > 0:  # read when the model's library loads, so before make_embedder
        os.environ.setdefault("OMP_NUM_THREADS", str(settings.model_threads))
    store = make_store(settings)
    check_compatible(store.manifest(), settings)
    embedder = make_embedder(settings, batch_queries=True)
    retriever = HybridRetriever(store, embedder, top_k=settings.top_k, candidates=settings.retrieval_candidates)

    def span_similarity(plan):
        vector = retriever.query_vector(plan)

        def similarity(passage_id: str, count: int):
            sims = store.span_similarity(passage_id, vector)
            return sims if sims is not None and len(sims) == count else None
        return similarity

    answerer = make_answerer(settings, AnswererParts(
        settings=settings,
        stats=store.stats(),
        documents=store.documents(),
        ranker=ranker or Ranker.load(settings.ranker_path),
        span_similarity=span_similarity,
        next_passage=lambda passage_id: store.neighbours(passage_id)[1],
    ))
    retriever.query_vector(retriever.plan("warm up"))  # load the model now, not on the first question
    return Parts(store, retriever, answerer)


def build_service(settings: Settings, ranker: Ranker | None = None) -> AssistantService:
    """The service every front end calls (not loaded: call ``load()``, or let the server do it)."""
    from assistant.service import AssistantService

    return AssistantService(settings, ranker=ranker)


def loaded_service(settings: Settings, ranker: Ranker | None = None) -> AssistantService:
    service = build_service(settings, ranker)
    service.load()
    return service


def build_app(settings: Settings, service: AssistantService | None = None, with_ui: bool = True) -> FastAPI:
    """The HTTP API (and the browser UI) around ``service``; see ``assistant.server``."""
    from assistant.server import build_app as _build_app

    return _build_app(settings, service or build_service(settings), with_ui=with_ui)
