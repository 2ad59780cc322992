"""Query embeddings of concurrent requests embedded together (a micro-batcher).

A new question's query embedding is the one model call on the answer path, and the model runs
one call at a time. Embedding eight queries in one call costs far less than eight calls, so the
first query to arrive waits up to ``max_wait_s`` for others, then everything queued (up to
``max_batch``) goes to the model at once. One batcher per process, one model per process.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np


class QueryBatcher:
    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_batch: int = 16, max_wait_s: float = 0.004):
        """``encode(texts)`` -> float32 (n, dims), one row per text, in order."""
        self.encode = encode
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max_wait_s
        self.batch_sizes: Counter[int] = Counter()
        """How many queries each model call embedded (for ``/metrics`` and the load bench)."""
        self._queue: queue.Queue[tuple[str, Future]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="query-batcher", daemon=True)
        self._thread.start()

    def embed(self, text: str) -> np.ndarray:
        return self.embed_many([text])[0]

    def embed_many(self, texts: list[str]) -> list[np.ndarray]:
        """One vector per text; texts queued together share a model call."""
        futures: list[Future] = []
        for text in texts:
            futures.append(Future())
            self._queue.put((text, futures[-1]))
        return [f.result() for f in futures]

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            try:
                while len(batch) < self.max_batch:
                    batch.append(self._queue.get(timeout=self.max_wait_s))
            except queue.Empty:
                pass
            try:
                vectors = self.encode([text for text, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - every waiting request gets the error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.batch_sizes[len(batch)] += 1
            for (_, future), vector in zip(batch, vectors):
                future.set_result(vector)
