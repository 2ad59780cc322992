"""The one service object that the CLI, the HTTP API and the browser UI all call.

It owns the loaded build (its ``PassageStore``), the retriever and the answerer as one immutable
``compose.Parts``; ``reload`` assembles new parts and swaps the reference, so a request in flight
finishes on the parts it started with and none is dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from llama_index.core.schema import NodeWithScore, TextNode

from assistant.answering import to_passage_out
from assistant.ranker import Ranker
from assistant.records import Answer, DocumentInfo, Feedback, Filters, PassageOut, Turn
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.compose import Parts

log = logging.getLogger(__name__)


class NotFound(LookupError):
    pass


class NotReady(RuntimeError):
    pass


class DeadlineExceeded(TimeoutError):
    """The question's deadline passed: its remaining work is dropped (the API answers 503)."""


def _check_deadline(deadline: float | None, stage: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlineExceeded(f"the question ran out of time ({stage})")


class DocumentSummary(DocumentInfo):
    passage_count: int = 0


class PassageDetail(PassageOut):
    printed_page: str | None = None
    paragraph: str | None = None
    kind: str = "text"
    previous: PassageOut | None = None
    next: PassageOut | None = None


class AssistantService:
    def __init__(self, settings: Settings, ranker: Ranker | None = None):
        """``ranker``: the evidence ranker to use instead of ``settings.ranker_path`` (training passes
        the untrained ``Ranker.prior()``). Build it with ``assistant.compose.build_service``."""
        self.settings = settings
        self._ranker = ranker
        self._state: Parts | None = None
        self._reload_lock = threading.Lock()
        self._feedback_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._state is not None

    def load(self) -> None:
        """Load the index and models (seconds); ``reload`` is the same, for a running service."""
        self.reload()

    def reload(self) -> None:
        """Open the published build and swap it in; requests in flight finish on the old one."""
        from assistant.compose import assemble

        with self._reload_lock:
            t0 = time.perf_counter()
            parts = assemble(self.settings, self._ranker)
            self._state = parts
            log.info("loaded %s build %s: %d passages in %.1f s", parts.store.name, self.build_id,
                     parts.store.stats().passages, time.perf_counter() - t0)

    @property
    def build_id(self) -> str | None:
        """The build this service answers from (None before it is loaded)."""
        state = self._state
        if state is None:
            return None
        return state.store.manifest().get("build_id") or state.store.build_id()

    def published_build_id(self) -> str | None:
        """The build the store has published now (cheap: the build watcher polls it)."""
        return self._current().store.build_id()

    def parts(self) -> Parts:
        """The loaded store, retriever and answerer (training and the benches read them)."""
        return self._current()

    def query_batch_sizes(self) -> dict[int, int]:
        """Query-embedding model calls so far, by how many queries each embedded."""
        state = self._state
        batcher = state.retriever.embedder.batcher if state else None
        return dict(batcher.batch_sizes) if batcher else {}

    def _current(self) -> Parts:
        state = self._state
        if state is None:
            raise NotReady("the index is not loaded yet")
        return state

    # -- questions ---------------------------------------------------------------------------
    def ask(self, question: str, top_k: int = 5, filters: Filters | None = None,
            history: list[Turn] | None = None, deadline: float | None = None) -> Answer:
        """Answer ``question``. ``deadline`` (a ``time.monotonic()`` value) is checked before each
        stage: past it, ``DeadlineExceeded`` is raised and the rest of the work is not done."""
        state = self._current()
        _check_deadline(deadline, "queued")
        t0 = time.perf_counter()
        plan = state.retriever.plan(question, history)
        _check_deadline(deadline, "plan")
        t1 = time.perf_counter()
        hits = state.retriever.gather(plan, max(top_k, 1), filters)
        _check_deadline(deadline, "retrieval")
        t2 = time.perf_counter()
        answer = state.answerer.answer(question, plan, hits)
        t3 = time.perf_counter()
        answer.timings_ms = {
            **answer.timings_ms,
            "plan": round((t1 - t0) * 1000, 2),
            "retrieval": round((t2 - t1) * 1000, 2),
            "answer": round((t3 - t2) * 1000, 2),
            "total": round((t3 - t0) * 1000, 2),
        }
        return answer

    def search(self, query: str, top_k: int = 5, filters: Filters | None = None,
               history: list[Turn] | None = None, deadline: float | None = None) -> list[PassageOut]:
        state = self._current()
        _check_deadline(deadline, "queued")
        plan = state.retriever.plan(query, history)
        _check_deadline(deadline, "plan")
        return [to_passage_out(h) for h in state.retriever.search(plan, top_k, filters)]

    # -- catalog -----------------------------------------------------------------------------
    def documents(self) -> list[DocumentSummary]:
        store = self._current().store
        counts = store.stats().passages_per_document
        return [DocumentSummary(**d.model_dump(), passage_count=counts.get(d.id, 0)) for d in store.documents()]

    def document(self, document_id: str) -> DocumentSummary:
        for doc in self.documents():
            if doc.id == document_id:
                return doc
        raise NotFound(f"no document with id {document_id!r}")

    def passage(self, passage_id: str) -> PassageDetail:
        store = self._current().store
        found = store.get([passage_id])
        if not found:
            raise NotFound(f"no passage with id {passage_id!r}")
        node = found[0]
        previous, following = store.neighbours(passage_id)

        def out(n: TextNode | None) -> PassageOut | None:
            return to_passage_out(NodeWithScore(node=n, score=0.0)) if n is not None else None

        base = to_passage_out(NodeWithScore(node=node, score=0.0))
        md = node.metadata
        return PassageDetail(**base.model_dump(), printed_page=md.get("printed_page"), paragraph=md.get("paragraph"),
                             kind=md.get("kind", "text"), previous=out(previous), next=out(following))

    # -- feedback ----------------------------------------------------------------------------
    def feedback(self, item: Feedback) -> None:
        """Append to the feedback log (JSON lines) that ``assistant eval add-from-feedback`` reads."""
        record = {**item.model_dump(), "timestamp": datetime.now(timezone.utc).isoformat()}
        if self.settings.store == "postgres":  # shared by every worker: ``assistant.stores.shared``
            from assistant.stores.shared import PgFeedbackLog, shared_store

            PgFeedbackLog(shared_store(self.settings)).append(record)
            return
        path = self.settings.feedback_path
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False)
        with self._feedback_lock, open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
