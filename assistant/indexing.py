"""Build, persist and load the passage index: FAISS (dense) + BM25 (lexical) + a manifest.

Layout under ``index_dir``::

    builds/<stamp>/{manifest.json, passages.jsonl, vectors.faiss, bm25/, spans.npy, spans.json}
    current -> builds/<stamp>        (a symlink, replaced atomically)

A build is written into its own directory and published by swapping the ``current`` link
with ``os.replace``: a crash or a bad document never leaves a half-written index, and a
running server keeps serving the build it loaded until it reloads.

``spans.npy`` holds one dense vector per sentence and table row of every passage (in
``evidence.split_spans`` order; ``spans.json`` maps a passage id to its first row and span count),
so the answerer can compare the question with each candidate span, not just its passage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import bm25s
import faiss
import numpy as np
from llama_index.core.schema import TextNode

from assistant.catalog import CatalogError, load_catalog
from assistant.chunking import CHUNKER_VERSION, chunk_document
from assistant.evidence import span_embed_text, split_spans
from assistant.lexical import index_tokens
from assistant.loaders import SUPPORTED_SUFFIXES, LoadError, load_text
from assistant.records import DocumentInfo
from assistant.settings import Settings

log = logging.getLogger(__name__)
CURRENT = "current"
KEEP_BUILDS = 2
INDEX_FORMAT = 2
"""Bumped when the build's files change; an index of another format is refused (re-index)."""


class IndexUnavailable(Exception):
    """The index is missing or does not match this code; the message says what to do."""


@dataclass
class BuildReport:
    passages: int = 0
    documents: int = 0
    embedded: int = 0
    """Passages embedded (not found in the cache)."""
    spans_embedded: int = 0
    seconds: float = 0.0
    path: Path | None = None
    errors: list[str] = field(default_factory=list)
    skipped: bool = False


@dataclass
class LoadedIndex:
    """An index in memory: passages in FAISS row order, the vectors, BM25 and the catalog."""

    path: Path
    manifest: dict
    nodes: list[TextNode]
    faiss_index: faiss.Index
    bm25: bm25s.BM25
    documents: list[DocumentInfo]
    span_vectors: np.ndarray
    span_rows: dict[str, tuple[int, int]]
    """Passage id -> (first row in ``span_vectors``, number of spans)."""

    def __post_init__(self) -> None:
        self.row_of = {n.node_id: i for i, n in enumerate(self.nodes)}
        self.doc_of = {d.id: d for d in self.documents}

    def span_similarity(self, query_vector: np.ndarray):
        """``f(passage id, span count)`` -> cosine similarity of the query to each span of the passage."""
        def similarity(passage_id: str, count: int) -> np.ndarray | None:
            start, n = self.span_rows.get(passage_id, (0, -1))
            return self.span_vectors[start:start + n] @ query_vector if n == count else None
        return similarity


def embed_text(node: TextNode) -> str:
    """What the dense model sees: title and section path, then the passage."""
    from llama_index.core.schema import MetadataMode

    return node.get_content(metadata_mode=MetadataMode.EMBED)


def lexical_tokens(node: TextNode) -> list[str]:
    return index_tokens(embed_text(node), node.metadata.get("language", "en"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _embedder(settings: Settings):
    from assistant.embeddings import CachedEmbedder, get_embedding

    return CachedEmbedder(get_embedding(settings.embedding_model), settings.embedding_cache_dir)


def corpus_fingerprint(settings: Settings, docs: list[DocumentInfo]) -> dict[str, str]:
    """Content hash of every catalogued file (and its catalog entry), by document id."""
    out = {}
    for doc in docs:
        path = settings.corpus_dir / doc.file
        content = path.read_bytes() if path.is_file() else b""
        out[doc.id] = _sha256(content + doc.model_dump_json().encode())
    return out


def current_path(index_dir: Path) -> Path | None:
    link = index_dir / CURRENT
    return link.resolve() if link.exists() else None


def read_manifest(index_dir: Path) -> dict | None:
    path = current_path(index_dir)
    if path is None or not (path / "manifest.json").is_file():
        return None
    return json.loads((path / "manifest.json").read_text())


def is_stale(settings: Settings) -> bool:
    manifest = read_manifest(settings.index_dir)
    if manifest is None:
        return True
    docs = load_catalog(settings.corpus_dir, SUPPORTED_SUFFIXES)
    return (
        manifest.get("chunker_version") != CHUNKER_VERSION
        or manifest.get("index_format") != INDEX_FORMAT
        or manifest.get("embedding_name") != settings.embedding_model
        or manifest.get("chunk_tokens") != settings.chunk_tokens
        or manifest.get("documents") != corpus_fingerprint(settings, docs)
    )


def build_index(settings: Settings, progress: Callable[[int, int], None] | None = None,
                on_document: Callable[[DocumentInfo, int | None, str | None], None] | None = None) -> BuildReport:
    """Chunk, embed (cached by passage) and publish a new index build. Bad documents are reported and skipped.

    ``progress(advance, total)`` follows the embedding; ``on_document(doc, passages, error)`` is called once
    per catalogued document after it is chunked (``passages`` is None and ``error`` its one-line reason if not).
    """
    t0 = time.perf_counter()
    report = BuildReport()
    docs = load_catalog(settings.corpus_dir, SUPPORTED_SUFFIXES)
    nodes: list[TextNode] = []
    indexed_docs: list[DocumentInfo] = []
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
        indexed_docs.append(doc)
    if not nodes:
        raise IndexUnavailable("no document could be indexed: " + "; ".join(report.errors))

    embedder = _embedder(settings)
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
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    spans = (np.ascontiguousarray(span_vectors, dtype=np.float32), span_rows)

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    builds = settings.index_dir / "builds"
    builds.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    tmp = builds / f".tmp-{stamp}"
    tmp.mkdir()
    try:
        _write_build(tmp, settings, indexed_docs, docs, nodes, vectors, spans, t0)
        _fsync_tree(tmp)  # every file on disk before the build gets its final name
        final = builds / stamp
        os.replace(tmp, final)
        _fsync_dir(builds)
        _publish(settings.index_dir, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(builds, keep=final)
    report.passages, report.documents, report.path = len(nodes), len(indexed_docs), final
    report.seconds = time.perf_counter() - t0
    return report


def _write_build(path: Path, settings: Settings, indexed: list[DocumentInfo], catalog: list[DocumentInfo],
                 nodes: list[TextNode], vectors: np.ndarray,
                 spans: tuple[np.ndarray, dict[str, tuple[int, int]]], t0: float) -> None:
    np.save(path / "spans.npy", spans[0])
    (path / "spans.json").write_text(json.dumps(spans[1]))
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    faiss.write_index(index, str(path / "vectors.faiss"))
    bm25 = bm25s.BM25(k1=1.2, b=0.75)
    bm25.index([lexical_tokens(n) for n in nodes], show_progress=False)
    bm25.save(str(path / "bm25"))
    with open(path / "passages.jsonl", "w", encoding="utf-8") as f:
        for n in nodes:
            f.write(n.model_dump_json() + "\n")
    from assistant.embeddings import get_embedding

    model = get_embedding(settings.embedding_model)
    manifest = {
        "embedding_name": settings.embedding_model,
        "embedding_model": model.model_id,
        "dims": int(vectors.shape[1]),
        "chunker_version": CHUNKER_VERSION,
        "index_format": INDEX_FORMAT,
        "span_count": int(spans[0].shape[0]),
        "chunk_tokens": settings.chunk_tokens,
        "documents": corpus_fingerprint(settings, catalog),
        "indexed_documents": [d.model_dump() for d in indexed],
        "passage_count": len(nodes),
        "build_seconds": round(time.perf_counter() - t0, 2),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every directory (deepest first), then ``root``."""
    dirs = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        dirs.append(Path(dirpath))
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        _fsync_dir(d)


def _publish(index_dir: Path, build: Path) -> None:
    link = index_dir / CURRENT
    tmp_link = index_dir / f".{CURRENT}.tmp-{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(build.relative_to(index_dir))
    _fsync_dir(index_dir)  # the new link is on disk before it replaces the old one
    os.replace(tmp_link, link)
    _fsync_dir(index_dir)


def _prune(builds: Path, keep: Path) -> None:
    olds = sorted((p for p in builds.iterdir() if p.is_dir() and p != keep and not p.name.startswith(".")), reverse=True)
    for old in olds[KEEP_BUILDS - 1:]:
        shutil.rmtree(old, ignore_errors=True)


def load_index(settings: Settings) -> LoadedIndex:
    """Load the published build; refuse one made with another model or chunker."""
    path = current_path(settings.index_dir)
    if path is None:
        raise IndexUnavailable(f"no index in {settings.index_dir}: run `assistant index`")
    manifest = json.loads((path / "manifest.json").read_text())
    if manifest.get("embedding_name") != settings.embedding_model:
        raise IndexUnavailable(
            f"the index was built with embedding model {manifest.get('embedding_name')!r}, "
            f"but {settings.embedding_model!r} is configured: re-index with `assistant index`"
        )
    if manifest.get("chunker_version") != CHUNKER_VERSION:
        raise IndexUnavailable(
            f"the index was built by chunker version {manifest.get('chunker_version')}, this is version "
            f"{CHUNKER_VERSION}: re-index with `assistant index`"
        )
    if manifest.get("index_format") != INDEX_FORMAT:
        raise IndexUnavailable(
            f"the index has format {manifest.get('index_format', 1)}, this code reads format {INDEX_FORMAT}: "
            "re-index with `assistant index`"
        )
    nodes = []
    with open(path / "passages.jsonl", encoding="utf-8") as f:
        for line in f:
            nodes.append(TextNode.model_validate_json(line))
    index = faiss.read_index(str(path / "vectors.faiss"))
    if index.ntotal != len(nodes) or index.d != manifest["dims"]:
        raise IndexUnavailable(f"{path} is inconsistent (vectors vs passages): re-index with `assistant index`")
    bm25 = bm25s.BM25.load(str(path / "bm25"))
    docs = [DocumentInfo(**d) for d in manifest["indexed_documents"]]
    span_vectors = np.load(path / "spans.npy")
    span_rows = {k: tuple(v) for k, v in json.loads((path / "spans.json").read_text()).items()}
    if span_vectors.shape[0] != manifest["span_count"]:
        raise IndexUnavailable(f"{path} is inconsistent (span vectors): re-index with `assistant index`")
    return LoadedIndex(path, manifest, nodes, index, bm25, docs, span_vectors, span_rows)


def build_index_cli(settings: Settings, if_stale: bool = False) -> int:
    """``assistant index``: build with a progress bar, print what happened; exit 1 if a document failed."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    if if_stale and not is_stale(settings):
        console.print(f"index is up to date ({read_manifest(settings.index_dir)['passage_count']} passages)")
        return 0
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("embedding passages", total=None)

        def progress(advance: int, total: int) -> None:
            bar.update(task, advance=advance, total=total)

        try:
            report = build_index(settings, progress=progress)
        except (IndexUnavailable, CatalogError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            return 2
    for err in report.errors:
        console.print(f"[red]error:[/red] {err}")
    print(
        f"indexed {report.passages} passages from {report.documents} documents "
        f"({report.embedded} embedded, the rest cached; {report.spans_embedded} sentence/row vectors embedded) "
        f"in {report.seconds:.1f} s -> {report.path}"
    )
    return 1 if report.errors else 0
