"""The local passage store: FAISS (dense) + bm25s (lexical) files under ``index_dir``.

Layout::

    builds/<build id>/{manifest.json, passages.jsonl, vectors.faiss, bm25/, spans.npy, spans.json, stats.json}
    current -> builds/<build id>        (a symlink, replaced atomically)

``write`` puts a build into its own directory (a temporary name, every file fsynced, then renamed);
``publish`` swaps the ``current`` link with ``os.replace`` and prunes old builds. A crash or a bad
document never leaves a half-written index, and a store that has read a build keeps serving it
(its snapshot) until the service opens a new store to reload.

``spans.npy`` holds one vector per sentence and table row of every passage (``evidence.split_spans``
order; ``spans.json`` maps a passage id to its first row and span count). ``stats.json`` holds
the idf of the BM25 tokens, the passages' vocabulary and the passages per document, so nothing is
recomputed from every text at load.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bm25s
import faiss
import numpy as np
from llama_index.core.schema import TextNode

from assistant.records import DocumentInfo, Filters
from assistant.store import Build, IndexUnavailable, Scored, StoreStats

CURRENT = "current"
KEEP_BUILDS = 2
INDEX_FORMAT = 3
"""Bumped when the build's files change; an index of another format is refused (re-index).
3: ``stats.json`` (idf, vocabulary, passages per document) and ``build_id`` in the manifest."""


@dataclass
class _Snapshot:
    """One published build, in memory."""

    path: Path
    manifest: dict
    nodes: list[TextNode]
    faiss_index: faiss.Index
    bm25: bm25s.BM25
    documents: list[DocumentInfo]
    span_vectors: np.ndarray
    span_rows: dict[str, tuple[int, int]]
    stats: StoreStats

    def __post_init__(self) -> None:
        self.row_of = {n.node_id: i for i, n in enumerate(self.nodes)}
        self.vocab_ids = self.bm25.vocab_dict
        doc_of = {d.id: d for d in self.documents}
        self.row_docs = [doc_of[n.metadata["document_id"]] for n in self.nodes]
        self.ids = [n.node_id for n in self.nodes]

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """Rows the filters keep (None: all)."""
        if filters is None or filters.empty:
            return None
        return np.array([filters.admits(d) for d in self.row_docs], dtype=bool)


def _best(scores: np.ndarray, ids: list[str], k: int, keep: np.ndarray | None, positive: bool) -> Scored:
    ok = np.ones(len(scores), dtype=bool) if keep is None else keep.copy()
    if positive:
        ok &= scores > 0
    rows = np.flatnonzero(ok)
    order = rows[np.argsort(-scores[rows], kind="stable")][: max(k, 0)]
    return [(ids[i], float(scores[i])) for i in order]


class LocalStore:
    """``PassageStore`` over the files under ``index_dir`` (see the module docstring)."""

    name = "local"

    def __init__(self, index_dir: Path | str):
        self.index_dir = Path(index_dir)
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    # -- builds ------------------------------------------------------------------------------
    def write(self, build: Build) -> str:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        builds = self.index_dir / "builds"
        builds.mkdir(exist_ok=True)
        build_id = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        tmp = builds / f".tmp-{build_id}"
        tmp.mkdir()
        try:
            _write_files(tmp, build, build_id)
            _fsync_tree(tmp)  # every file on disk before the build gets its final name
            os.replace(tmp, builds / build_id)
            _fsync_dir(builds)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return build_id

    def publish(self, build_id: str) -> None:
        build = self.index_dir / "builds" / build_id
        if not (build / "manifest.json").is_file():
            raise IndexUnavailable(f"no written build {build_id!r} in {self.index_dir}")
        _publish(self.index_dir, build)
        _prune(self.index_dir / "builds", keep=build)

    def build_id(self) -> str | None:
        path = self.current_path()
        return path.name if path is not None else None

    def current_path(self) -> Path | None:
        """The directory of the published build on disk (not necessarily the one this store has read)."""
        link = self.index_dir / CURRENT
        return link.resolve() if link.exists() else None

    def manifest(self) -> dict:
        return self._current().manifest

    @property
    def path(self) -> Path:
        """The directory of the build this store serves."""
        return self._current().path

    # -- search ------------------------------------------------------------------------------
    def dense(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> Scored:
        snap = self._current()
        n = snap.faiss_index.ntotal
        sims, rows = snap.faiss_index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), n)
        scores = np.zeros(n, dtype=np.float32)
        scores[rows[0]] = sims[0]
        return _best(scores, snap.ids, k, snap.mask(filters), positive=False)

    def lexical(self, tokens: list[str], k: int, filters: Filters | None = None) -> Scored:
        snap = self._current()
        known = [t for t in tokens if t in snap.vocab_ids]
        if not known:
            return []
        scores = np.asarray(snap.bm25.get_scores(known), dtype=np.float32)
        return _best(scores, snap.ids, k, snap.mask(filters), positive=True)

    def span_similarity(self, passage_id: str, vector: np.ndarray) -> np.ndarray | None:
        snap = self._current()
        rows = snap.span_rows.get(passage_id)
        if rows is None:
            return None
        start, n = rows
        return snap.span_vectors[start:start + n] @ vector

    # -- reading -----------------------------------------------------------------------------
    def get(self, ids: list[str]) -> list[TextNode]:
        snap = self._current()
        return [snap.nodes[snap.row_of[i]] for i in ids if i in snap.row_of]

    def neighbours(self, passage_id: str) -> tuple[TextNode | None, TextNode | None]:
        snap = self._current()
        row = snap.row_of.get(passage_id)
        if row is None:
            return None, None
        md = snap.nodes[row].metadata

        def at(key: str) -> TextNode | None:
            other = snap.row_of.get(md.get(key) or "")
            return snap.nodes[other] if other is not None else None

        return at("prev_id"), at("next_id")

    def documents(self) -> list[DocumentInfo]:
        return list(self._current().documents)

    def stats(self) -> StoreStats:
        return self._current().stats

    # -- loading -----------------------------------------------------------------------------
    def _current(self) -> _Snapshot:
        snap = self._snapshot
        if snap is None:
            with self._lock:
                if self._snapshot is None:
                    self._snapshot = _load(self.index_dir)
                snap = self._snapshot
        return snap


# --- the on-disk format --------------------------------------------------------------------


def _write_files(path: Path, build: Build, build_id: str) -> None:
    from assistant.stores import build_stats

    vectors = np.ascontiguousarray(build.vectors, dtype=np.float32)
    spans = np.ascontiguousarray(build.span_vectors, dtype=np.float32)
    np.save(path / "spans.npy", spans)
    (path / "spans.json").write_text(json.dumps(build.span_rows))
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    faiss.write_index(index, str(path / "vectors.faiss"))
    bm25 = bm25s.BM25(k1=1.2, b=0.75)
    bm25.index(build.lexical_tokens, show_progress=False)
    bm25.save(str(path / "bm25"))
    stats = build_stats(build)
    (path / "stats.json").write_text(json.dumps({
        "passages": stats.passages,
        "idf": stats.idf,
        "idf_default": stats.idf_default,
        "vocabulary": sorted(stats.vocabulary),
        "passages_per_document": stats.passages_per_document,
    }, ensure_ascii=False))
    with open(path / "passages.jsonl", "w", encoding="utf-8") as f:
        for n in build.nodes:
            f.write(n.model_dump_json() + "\n")
    manifest = {
        **build.manifest,
        "build_id": build_id,
        "index_format": INDEX_FORMAT,
        "dims": int(vectors.shape[1]),
        "span_count": int(spans.shape[0]),
        "passage_count": len(build.nodes),
        "indexed_documents": [d.model_dump() for d in build.documents],
    }
    manifest.setdefault("created_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))


def _load(index_dir: Path) -> _Snapshot:
    link = index_dir / CURRENT
    path = link.resolve() if link.exists() else None
    if path is None or not (path / "manifest.json").is_file():
        raise IndexUnavailable(f"no index in {index_dir}: run `assistant index`")
    manifest = json.loads((path / "manifest.json").read_text())
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
    raw = json.loads((path / "stats.json").read_text(encoding="utf-8"))
    stats = StoreStats(passages=raw["passages"], idf=raw["idf"], idf_default=raw["idf_default"],
                       vocabulary=frozenset(raw["vocabulary"]), passages_per_document=raw["passages_per_document"])
    return _Snapshot(path, manifest, nodes, index, bm25, docs, span_vectors, span_rows, stats)


# --- publishing: fsync, the symlink swap, pruning ------------------------------------------


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
