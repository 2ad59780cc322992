"""A ``Build`` from a corpus directory, with the indexing code's own steps (chunk, embed, tokenise).

Stand-in until the indexing pipeline produces a ``Build`` through the store seam (issue 11).
"""

from __future__ import annotations

import numpy as np

from assistant.catalog import load_catalog
from assistant.chunking import CHUNKER_VERSION, chunk_document
from assistant.evidence import span_embed_text, split_spans
from assistant.indexing import INDEX_FORMAT, _embedder, corpus_fingerprint, embed_text, lexical_tokens
from assistant.loaders import SUPPORTED_SUFFIXES, load_text
from assistant.settings import Settings
from assistant.store import Build


def build_from_corpus(settings: Settings) -> Build:
    docs = load_catalog(settings.corpus_dir, SUPPORTED_SUFFIXES)
    nodes, indexed = [], []
    for doc in docs:
        doc_nodes = chunk_document(doc, load_text(settings.corpus_dir / doc.file), settings.chunk_tokens)
        if doc_nodes:
            nodes += doc_nodes
            indexed.append(doc)
    embedder = _embedder(settings)
    vectors = np.ascontiguousarray(embedder.embed_passages([embed_text(n) for n in nodes]), dtype=np.float32)
    span_texts, span_rows = [], {}
    for n in nodes:
        spans = split_spans(n)
        span_rows[n.node_id] = (len(span_texts), len(spans))
        span_texts += [span_embed_text(n, q, is_row) for q, is_row in spans]
    span_vectors = np.ascontiguousarray(embedder.embed_passages(span_texts), dtype=np.float32)
    manifest = {"embedding_name": settings.embedding_model, "dims": int(vectors.shape[1]),
                "chunker_version": CHUNKER_VERSION, "index_format": INDEX_FORMAT,
                "chunk_tokens": settings.chunk_tokens, "documents": corpus_fingerprint(settings, docs),
                "indexed_documents": [d.model_dump() for d in indexed], "passage_count": len(nodes),
                "span_count": int(span_vectors.shape[0])}
    return Build(nodes, vectors, [lexical_tokens(n) for n in nodes], span_vectors, span_rows, indexed, manifest)
