"""The one service object that the CLI, the HTTP API and the browser UI all call.

It owns the loaded index, the retriever and the answerer as one immutable ``_State``;
``reload`` builds a new state and swaps the reference, so a request in flight finishes on
the state it started with and none is dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from llama_index.core.schema import NodeWithScore

from assistant.answering import AnswerPolicy, ExtractiveAnswerer, to_passage_out
from assistant.evidence import IdfTable
from assistant.indexing import LoadedIndex, lexical_tokens, load_index
from assistant.ranker import Ranker
from assistant.records import Answer, DocumentInfo, Feedback, Filters, PassageOut, Turn
from assistant.retrieval import HybridRetriever
from assistant.settings import Settings

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


@dataclass(frozen=True)
class _State:
    index: LoadedIndex
    retriever: HybridRetriever
    answerer: ExtractiveAnswerer


class AssistantService:
    def __init__(self, settings: Settings, ranker: Ranker | None = None):
        """``ranker``: the evidence ranker to use instead of ``settings.ranker_path`` (training passes
        the untrained ``Ranker.prior()``)."""
        self.settings = settings
        self._ranker = ranker
        self._state: _State | None = None
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
        with self._reload_lock:
            t0 = time.perf_counter()
            index = load_index(self.settings)
            from assistant.embeddings import CachedEmbedder, get_embedding

            embedder = CachedEmbedder(get_embedding(self.settings.embedding_model), self.settings.embedding_cache_dir)
            embedder.batch_queries(self.settings.query_batch_size, self.settings.query_batch_wait_ms / 1000)
            retriever = HybridRetriever(index, embedder, top_k=self.settings.top_k)
            idf = IdfTable([lexical_tokens(n) for n in index.nodes])
            answerer = self._make_answerer(idf, index, lambda plan: index.span_similarity(retriever.query_vector(plan)))
            retriever.dense_scores(retriever.plan("warm up"))  # load the model now, not on the first question
            self._state = _State(index, retriever, answerer)
            log.info("loaded index %s: %d passages in %.1f s", index.path.name, len(index.nodes), time.perf_counter() - t0)

    def _make_answerer(self, idf: IdfTable, index: LoadedIndex, span_similarity):
        policy = AnswerPolicy(threshold=self.settings.answer_threshold)
        extractive = ExtractiveAnswerer(idf, index.documents, self._ranker or Ranker.load(self.settings.ranker_path),
                                        policy, span_similarity)
        if self.settings.answerer == "extractive":
            return extractive
        from assistant.generative import GenerativeAnswerer

        return GenerativeAnswerer(self.settings, extractive)

    def query_batch_sizes(self) -> dict[int, int]:
        """Query-embedding model calls so far, by how many queries each embedded."""
        state = self._state
        batcher = state.retriever.embedder.batcher if state else None
        return dict(batcher.batch_sizes) if batcher else {}

    def _current(self) -> _State:
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
        index = self._current().index
        counts: dict[str, int] = {}
        for node in index.nodes:
            counts[node.metadata["document_id"]] = counts.get(node.metadata["document_id"], 0) + 1
        return [DocumentSummary(**d.model_dump(), passage_count=counts.get(d.id, 0)) for d in index.documents]

    def document(self, document_id: str) -> DocumentSummary:
        for doc in self.documents():
            if doc.id == document_id:
                return doc
        raise NotFound(f"no document with id {document_id!r}")

    def passage(self, passage_id: str) -> PassageDetail:
        index = self._current().index
        row = index.row_of.get(passage_id)
        if row is None:
            raise NotFound(f"no passage with id {passage_id!r}")
        node = index.nodes[row]

        def neighbour(key: str) -> PassageOut | None:
            other = index.row_of.get(node.metadata.get(key) or "")
            if other is None:
                return None
            return to_passage_out(NodeWithScore(node=index.nodes[other], score=0.0))

        base = to_passage_out(NodeWithScore(node=node, score=0.0))
        md = node.metadata
        return PassageDetail(**base.model_dump(), printed_page=md.get("printed_page"), paragraph=md.get("paragraph"),
                             kind=md.get("kind", "text"), previous=neighbour("prev_id"), next=neighbour("next_id"))

    # -- feedback ----------------------------------------------------------------------------
    def feedback(self, item: Feedback) -> None:
        """Append to the feedback log (JSON lines) that ``assistant eval add-from-feedback`` reads."""
        path = self.settings.feedback_path
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({**item.model_dump(), "timestamp": datetime.now(timezone.utc).isoformat()}, ensure_ascii=False)
        with self._feedback_lock, open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
