"""The bounded executor every question goes through (API, Teams and UI alike).

Questions are CPU work (the query embedding, retrieval, the answerer). They run on
``ASSISTANT_ASK_WORKERS`` threads; at most ``ASSISTANT_ASK_QUEUE_SIZE`` more may wait. One more
is refused at once (``Overloaded``: 503 with Retry-After) instead of piling up. Each question has
a deadline (``ASSISTANT_ASK_DEADLINE_S``, counted from its arrival): a question still queued at
its deadline is never started, and a running one stops at the service's next stage check
(``DeadlineExceeded``: 503 with Retry-After). A slot is freed only when its work has really
stopped, so abandoned work still counts against the bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
import time
from typing import Any, Callable, TypeVar

from assistant.service import DeadlineExceeded

log = logging.getLogger("assistant.api")

T = TypeVar("T")


class Overloaded(RuntimeError):
    """Every worker is busy and the queue is full."""


def takes_deadline(fn: Callable[..., Any]) -> bool:
    try:
        return "deadline" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class QuestionPool:
    def __init__(self, workers: int = 2, queue_size: int = 64, deadline_s: float = 8.0):
        self.workers = max(1, int(workers))
        self.queue_size = max(0, int(queue_size))
        self.deadline_s = float(deadline_s)
        self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="question")
        self._slots = threading.BoundedSemaphore(self.workers + self.queue_size)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.refused = 0
        self.expired = 0

    def deadline(self, seconds: float | None = None) -> float:
        return time.monotonic() + (self.deadline_s if seconds is None else seconds)

    def submit(self, fn: Callable[..., T], *args: Any, deadline: float, **kwargs: Any) -> concurrent.futures.Future:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.refused += 1
            raise Overloaded(f"all {self.workers} workers are busy and {self.queue_size} questions are waiting")
        with self._lock:
            self.in_flight += 1
        if takes_deadline(fn):
            kwargs["deadline"] = deadline

        def job() -> T:
            if time.monotonic() > deadline:  # waited in the queue past its deadline: do nothing
                raise DeadlineExceeded("the question ran out of time (queued)")
            return fn(*args, **kwargs)

        try:
            future = self._executor.submit(job)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return future

    def _release(self, _future: Any) -> None:
        with self._lock:
            self.in_flight -= 1
        self._slots.release()

    def _expired(self, future: concurrent.futures.Future) -> BaseException:
        future.cancel()  # not started yet: it never will be
        with self._lock:
            self.expired += 1
        return DeadlineExceeded("the question ran out of time")

    async def run(self, fn: Callable[..., T], *args: Any, deadline: float | None = None, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on a worker, awaited until ``deadline`` (default: now + deadline_s)."""
        deadline = self.deadline() if deadline is None else deadline
        future = self.submit(fn, *args, deadline=deadline, **kwargs)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise self._expired(future) from None

    def run_sync(self, fn: Callable[..., T], *args: Any, deadline: float | None = None, **kwargs: Any) -> T:
        """The same, for callers on a plain thread (the UI's handlers)."""
        deadline = self.deadline() if deadline is None else deadline
        future = self.submit(fn, *args, deadline=deadline, **kwargs)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            raise self._expired(future) from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
