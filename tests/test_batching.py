"""The query micro-batcher: concurrent queries share model calls, each gets its own vector."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from assistant.batching import QueryBatcher


def test_concurrent_queries_share_a_model_call_and_keep_their_own_vectors():
    calls = []

    def encode(texts):
        calls.append(len(texts))
        time.sleep(0.02)  # a model call takes time: queries arriving meanwhile wait for the next one
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)

    batcher = QueryBatcher(encode, max_batch=8, max_wait_s=0.01)
    texts = ["q" * n for n in range(1, 17)]
    with ThreadPoolExecutor(16) as pool:
        vectors = list(pool.map(batcher.embed, texts))
    assert [v[0] for v in vectors] == [float(len(t)) for t in texts], "every caller gets its own row"
    assert sum(calls) == 16 and len(calls) < 16 and max(calls) <= 8
    assert sum(n * k for n, k in batcher.batch_sizes.items()) == 16


def test_a_failing_model_call_fails_every_waiting_query():
    def encode(texts):
        raise RuntimeError("model crashed")

    batcher = QueryBatcher(encode, max_batch=4, max_wait_s=0.005)
    errors = []

    def ask():
        try:
            batcher.embed("x")
        except RuntimeError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert errors == ["model crashed"] * 3


@pytest.mark.slow
def test_the_service_embeds_through_the_batcher(full_service):
    before = sum(full_service.query_batch_sizes().values())
    full_service.ask("How many staff did the Office of the Ombudsperson receive in 2017, a batching probe?")
    assert sum(full_service.query_batch_sizes().values()) == before + 1


def test_texts_queued_together_share_one_model_call():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)

    batcher = QueryBatcher(encode, max_batch=8, max_wait_s=0.01)
    vectors = batcher.embed_many(["a", "bb", "ccc"])
    assert calls == [["a", "bb", "ccc"]]
    assert [v[0] for v in vectors] == [1.0, 2.0, 3.0]


@pytest.mark.slow
def test_a_question_asking_several_things_is_embedded_in_one_model_call(full_service):
    question = ("How many staff did the Office of the Ombudsperson receive in 2017 (a probe of parts), "
                "and how many cases did it close?")
    assert len(full_service.parts().retriever.plan(question).parts) == 2
    sizes = full_service.query_batch_sizes()
    calls, queries = sum(sizes.values()), sum(n * k for n, k in sizes.items())
    full_service.ask(question)
    sizes = full_service.query_batch_sizes()
    assert sum(sizes.values()) == calls + 1, "the question and its parts go to the model together"
    assert sum(n * k for n, k in sizes.items()) == queries + 3
