"""The index pipeline: load the catalog, chunk, embed (cached by text), and hand a ``Build`` to the store.

The store (``settings.store``) writes the build unpublished and then publishes it in one step,
so a bad document or a crash never leaves a half-written index serving.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from llama_index.core.schema import MetadataMode, TextNode

from assistant.catalog import load_catalog
from assistant.chunking import CHUNKER_VERSION, chunk_document
from assistant.evidence import span_embed_text, split_spans
from assistant.indexing.staleness import corpus_fingerprint
from assistant.lexical import analysis_version, index_tokens
from assistant.loaders import SUPPORTED_SUFFIXES, LoadError, load_text
from assistant.records import DocumentInfo
from assistant.settings import Settings
from assistant.store import Build, IndexUnavailable, PassageStore

if TYPE_CHECKING:
    from assistant.embeddings import CachedEmbedder

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""``progress(advance, total)``: passages embedded since the last call, of ``total``."""
OnDocument = Callable[[DocumentInfo, "int | None", "str | None"], None]
"""``on_document(doc, passages, error)``: once per catalogued document after it is chunked."""


@dataclass
class BuildReport:
    passages: int = 0
    documents: int = 0
    embedded: int = 0
    """Passages embedded (not found in the cache)."""
    spans_embedded: int = 0
    seconds: float = 0.0
    build_id: str | None = None
    errors: list[str] = field(default_factory=list)
    skipped: bool = False


def embed_text(node: TextNode) -> str:
    """What the dense model sees: title and section path, then the passage."""
    return node.get_content(metadata_mode=MetadataMode.EMBED)


def lexical_tokens(node: TextNode) -> list[str]:
    return index_tokens(embed_text(node), node.metadata.get("language", "en"))


def chunk_corpus(settings: Settings, docs: list[DocumentInfo], report: BuildReport,
                 on_document: OnDocument | None = None) -> tuple[list[TextNode], list[DocumentInfo]]:
    """The passages of every document that loads, and those documents; failures go to ``report.errors``."""
    nodes: list[TextNode] = []
    indexed: list[DocumentInfo] = []
    for doc in docs:
        try:
            text = load_text(settings.corpus_dir / doc.file)
        except LoadError as exc:
            report.errors.append(str(exc))
            log.error("%s", exc)
            if on_document:
                on_document(doc, None, str(exc))
            continue
        doc_nodes = chunk_document(doc, text, settings.chunk_tokens)
        if not doc_nodes:
            report.errors.append(f"{doc.file}: no text to index")
            if on_document:
                on_document(doc, None, report.errors[-1])
            continue
        if on_document:
            on_document(doc, len(doc_nodes), None)
        nodes.extend(doc_nodes)
        indexed.append(doc)
    return nodes, indexed


def make_build(settings: Settings, embedder: CachedEmbedder, report: BuildReport | None = None,
               progress: Progress | None = None, on_document: OnDocument | None = None) -> Build:
    """Catalog -> passages -> vectors (passages, then every sentence and table row) -> ``Build``."""
    t0 = time.perf_counter()
    report = report if report is not None else BuildReport()
    catalog = load_catalog(settings.corpus_dir, SUPPORTED_SUFFIXES)
    nodes, indexed = chunk_corpus(settings, catalog, report, on_document)
    if not nodes:
        raise IndexUnavailable("no document could be indexed: " + "; ".join(report.errors))

    before = embedder.misses
    vectors = embedder.embed_passages(
        [embed_text(n) for n in nodes], progress=(lambda k: progress(k, len(nodes))) if progress else None
    )
    report.embedded = embedder.misses - before
    span_texts: list[str] = []
    span_rows: dict[str, tuple[int, int]] = {}
    for n in nodes:
        spans = split_spans(n)
        span_rows[n.node_id] = (len(span_texts), len(spans))
        span_texts += [span_embed_text(n, q, is_row) for q, is_row in spans]
    span_vectors = embedder.embed_passages(span_texts)  # progress counts passages; spans follow them
    report.spans_embedded = embedder.misses - before - report.embedded
    manifest = {
        "embedding_name": settings.embedding_model,
        "embedding_model": embedder.model_id,
        "chunker_version": CHUNKER_VERSION,
        "chunk_tokens": settings.chunk_tokens,
        "lexical_analysis": analysis_version(),
        "documents": corpus_fingerprint(settings, catalog),
        "build_seconds": round(time.perf_counter() - t0, 2),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return Build(
        nodes=nodes,
        vectors=np.ascontiguousarray(vectors, dtype=np.float32),
        lexical_tokens=[lexical_tokens(n) for n in nodes],
        span_vectors=np.ascontiguousarray(span_vectors, dtype=np.float32),
        span_rows=span_rows,
        documents=indexed,
        manifest=manifest,
    )


def build_index(settings: Settings, progress: Progress | None = None, on_document: OnDocument | None = None, *,
                store: PassageStore | None = None, embedder: CachedEmbedder | None = None) -> BuildReport:
    """Chunk, embed (cached by passage), write and publish a new build. Bad documents are reported and skipped.

    ``store`` and ``embedder`` default to the ones the settings name (``assistant.compose``)."""
    from assistant import compose

    t0 = time.perf_counter()
    report = BuildReport()
    build = make_build(settings, embedder or compose.make_embedder(settings), report, progress, on_document)
    store = store or compose.make_store(settings)
    build_id = store.write(build)
    store.publish(build_id)
    report.passages, report.documents, report.build_id = len(build.nodes), len(build.documents), build_id
    report.seconds = time.perf_counter() - t0
    return report
