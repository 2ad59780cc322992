"""A SYNTHETIC corpus grown from the real build, for scale benchmarks only (never for answers).

``grow(build, factor)`` keeps the real passages and adds ``factor - 1`` copies of every document:
document ids ``<id>~syn<c>``, titles suffixed "(synthetic copy c)", passage ids re-hashed, the
sentences (table rows) of every passage shuffled, prev/next links remapped. Vectors are the real
ones plus Gaussian noise (sigma 0.03 per dimension, renormalised), not re-embedded: e5 costs
~0.2 s a passage here, and the benchmark measures the stores, not the model. The BM25 tokens are
the real passage's (shuffling sentences does not change them) plus the title's new words.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
from llama_index.core.schema import TextNode

from assistant.evidence import split_spans
from assistant.store import Build
from assistant.text import sentence_spans

NOISE = 0.03


def _shuffled(node: TextNode, rng: random.Random) -> str:
    text = node.text
    if node.metadata.get("kind") == "table":
        lines = text.split("\n")
        head, rows = lines[:2], lines[2:]
        rng.shuffle(rows)
        return "\n".join(head + rows)
    pieces = [text[a:b] for a, b in sentence_spans(text)]
    if len(pieces) < 2:
        return text
    rng.shuffle(pieces)
    return " ".join(pieces)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def grow(build: Build, factor: int, seed: int = 0) -> Build:
    if factor <= 1:
        return build
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    dims = build.vectors.shape[1]
    nodes = list(build.nodes)
    vectors = [build.vectors]
    tokens = list(build.lexical_tokens)
    span_blocks = [build.span_vectors]
    span_rows = dict(build.span_rows)
    documents = list(build.documents)
    next_span = build.span_vectors.shape[0]
    for c in range(1, factor):
        new_id = {n.node_id: hashlib.sha1(f"{n.node_id}:syn{c}".encode()).hexdigest()[:16] for n in build.nodes}
        for d in build.documents:
            documents.append(d.model_copy(update={"id": f"{d.id}~syn{c}", "title": f"{d.title} (synthetic copy {c})",
                                                  "aliases": [], "seed": None}))
        block = []
        for i, n in enumerate(build.nodes):
            md = dict(n.metadata)
            md["document_id"] = f"{md['document_id']}~syn{c}"
            md["title"] = f"{md.get('title', '')} (synthetic copy {c})"
            for key in ("prev_id", "next_id"):
                if md.get(key):
                    md[key] = new_id[md[key]]
            node = TextNode(id_=new_id[n.node_id], text=_shuffled(n, rng), metadata=md,
                            excluded_embed_metadata_keys=list(n.excluded_embed_metadata_keys),
                            excluded_llm_metadata_keys=list(n.excluded_llm_metadata_keys))
            nodes.append(node)
            tokens.append(build.lexical_tokens[i] + ["synthet", "copi", str(c)])
            start, count = build.span_rows[n.node_id]
            original = {text: build.span_vectors[start + j] for j, (text, _) in enumerate(split_spans(n))
                        if j < count}
            spans = split_spans(node)
            rows = np.stack([original.get(text, build.vectors[i]) for text, _ in spans]) if spans \
                else np.zeros((0, dims), dtype=np.float32)
            if len(rows):
                block.append(_unit(rows + nrng.normal(0, NOISE, rows.shape)))
            span_rows[node.node_id] = (next_span, len(spans))
            next_span += len(spans)
        span_blocks += block
        vectors.append(_unit(build.vectors + nrng.normal(0, NOISE, build.vectors.shape)))
    manifest = {**build.manifest, "synthetic_factor": factor, "passage_count": len(nodes)}
    return Build(nodes, np.concatenate(vectors), tokens, np.concatenate(span_blocks), span_rows, documents, manifest)
