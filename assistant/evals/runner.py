"""Run eval cases through a backend and score each one.

The backend is anything with ``ask(question, top_k, history) -> records.Answer`` (:class:`Asker`): the
in-process :class:`ServiceAsker` (the same ``AssistantService`` the API uses) or
:class:`HttpAsker` (``POST {url}/v1/ask`` on a running server).

Retrieval depth. The answer is always asked for with the configured ``top_k`` (as the official
scorer does), so answer, citation and ``hit@top_k`` figures are what a user sees. hit@k for k
beyond ``top_k`` (hit@10 with the default top_k 5) and MRR need a deeper ranking: when
``depth > top_k`` the runner makes a second, retrieval-only call for ``depth`` passages
(``asker.rank`` when the asker has it: ``service.search`` in process, ``POST /v1/search`` over
HTTP; otherwise ``ask(top_k=depth)``) and appends the passages the first call did not return,
in their order. So hit@k for k <= top_k is exactly what the answer was given. The second call
is not timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from assistant.evals import metrics as m
from assistant.evals.cases import EvalCase, gold_doc_ids
from assistant.records import Answer, PassageOut, Turn

if TYPE_CHECKING:
    from assistant.service import AssistantService


@runtime_checkable
class Asker(Protocol):
    def ask(self, question: str, top_k: int, history: Sequence[Turn] = ()) -> Answer: ...


class Ranker(Protocol):
    """Optional extra of an Asker: the retrieval ranking alone (cheaper than a second ask)."""

    def rank(self, question: str, top_k: int, history: Sequence[Turn] = ()) -> list[PassageOut]: ...


class AskError(RuntimeError):
    """The backend could not answer (HTTP error, unreachable server)."""


class ServiceAsker:
    """In process: the loaded ``AssistantService``."""

    def __init__(self, service: AssistantService) -> None:
        self.service = service

    def ask(self, question: str, top_k: int, history: Sequence[Turn] = ()) -> Answer:
        return self.service.ask(question, top_k=top_k, history=list(history) or None)

    def rank(self, question: str, top_k: int, history: Sequence[Turn] = ()) -> list[PassageOut]:
        """``service.search``: the same plan and retrieval as ``ask``, without answering."""
        return list(self.service.search(question, top_k=top_k, history=list(history) or None))

    def close(self) -> None:
        pass


class HttpAsker:
    """A running server: ``POST {url}/v1/ask`` with ``Authorization: Bearer {key}``."""

    def __init__(self, url: str, key: str | None = None, timeout: float = 120.0, client=None) -> None:
        """``client``: an ``httpx.Client`` to use instead of a new one (e.g. FastAPI's TestClient)."""
        import httpx

        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self._httpx = httpx
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)
        self._headers = headers

    def _post(self, path: str, body: dict):
        return self._client.post(self.url + path, json=body, headers=self._headers)

    def ask(self, question: str, top_k: int, history: Sequence[Turn] = ()) -> Answer:
        body: dict = {"question": question, "top_k": top_k}
        if history:
            body["history"] = [t.model_dump() for t in history]
        try:
            r = self._post("/v1/ask", body)
        except self._httpx.HTTPError as e:
            raise AskError(f"cannot reach {self.url}/v1/ask: {e.__class__.__name__}: {e}") from None
        if r.status_code != 200:
            raise AskError(f"HTTP {r.status_code} from {self.url}/v1/ask: {r.text[:300]}")
        try:
            return Answer.model_validate(r.json())
        except ValueError as e:
            raise AskError(f"{self.url}/v1/ask returned something that is not an answer record: {e}") from None

    def rank(self, question: str, top_k: int, history: Sequence[Turn] = ()) -> list[PassageOut]:
        """``POST /v1/search``; falls back to ``/v1/ask`` on a server without it, and for a follow-up
        (search takes no history)."""
        if history:
            return self.ask(question, top_k, history).passages
        try:
            r = self._post("/v1/search", {"query": question, "top_k": top_k})
        except self._httpx.HTTPError as e:
            raise AskError(f"cannot reach {self.url}/v1/search: {e.__class__.__name__}: {e}") from None
        if r.status_code in (404, 405):
            return self.ask(question, top_k).passages
        if r.status_code != 200:
            raise AskError(f"HTTP {r.status_code} from {self.url}/v1/search: {r.text[:300]}")
        try:
            return [PassageOut.model_validate(p) for p in r.json()["passages"]]
        except (ValueError, KeyError, TypeError) as e:
            raise AskError(f"{self.url}/v1/search returned something unexpected: {e}") from None

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


def _merge_ranking(first: Sequence[PassageOut], deeper: Sequence[PassageOut], depth: int) -> list[PassageOut]:
    seen = {p.id for p in first}
    out = list(first)
    for p in deeper:
        if len(out) >= depth:
            break
        if p.id not in seen:
            seen.add(p.id)
            out.append(p)
    return out[:depth]


def _passage_view(p: PassageOut, rank: int, full: bool) -> dict:
    d = {"rank": rank, "id": p.id, "document_id": p.document_id, "page": p.page, "score": round(p.score, 4)}
    if full:
        d["title"] = p.title
        d["section"] = p.section
        d["text"] = p.text
    return d


def score_case(
    case: EvalCase,
    answer: Answer | None,
    gold_ids: list[str],
    top_k: int,
    depth: int,
    ranking: Sequence[PassageOut] | None = None,
    latency_ms: float | None = None,
    error: str | None = None,
    doc_texts: dict[str, str] | None = None,
) -> dict:
    """One result row. ``ranking`` defaults to ``answer.passages``.

    ``checks`` holds the per-question pass/fail the gate compares with the baseline:
    answerable: ``retrieved`` (hit@top_k), ``correct``, ``citation``; unanswerable: ``refusal``.
    """
    row: dict = {
        "id": case.id,
        "kind": case.kind,
        "lang": case.lang,
        "question": case.question,
        "doc_ids": gold_ids,
        "expected": case.answer,
        "latency_ms": round(latency_ms, 1) if latency_ms is not None else None,
    }
    if error is not None or answer is None:
        row["error"] = error or "no answer"
        row["answered"] = None
        if case.unanswerable:
            row.update(refusal_ok=False, checks={"refusal": False})
        else:
            row.update(rank=None, retrieved=False, correct=False, lead_correct=False, citation_ok=False,
                       cited_gold_doc=False, false_refusal=False,
                       checks={"retrieved": False, "correct": False, "lead": False, "citation": False})
        row["passed"] = False
        return row

    ranked = list(ranking if ranking is not None else answer.passages)[:depth]
    row["answered"] = answer.answered
    row["answer"] = answer.answer
    if answer.timings_ms:
        row["timings_ms"] = answer.timings_ms
    row["citations"] = [c.model_dump(include={"n", "passage_id", "document_id", "page", "quote"}) for c in answer.citations]
    if case.unanswerable:
        ok = m.refusal_ok(answer)
        row.update(refusal_ok=ok, checks={"refusal": ok})
    else:
        rank = m.first_hit_rank([p.text for p in ranked], case.evidence)
        row["rank"] = rank
        row["retrieved"] = m.hit_at(rank, top_k)
        row["correct"] = m.answer_correct(answer, case.must_include, case.must_not)
        row["lead_correct"] = m.lead_correct(answer, case.must_include, case.must_not)
        row["citation_ok"] = m.citation_correct(answer, gold_ids, case.evidence)
        row["cited_gold_doc"] = m.cited_gold_doc(answer, gold_ids, doc_texts)
        row["false_refusal"] = m.false_refusal(answer)
        row["checks"] = {"retrieved": row["retrieved"], "correct": row["correct"], "lead": row["lead_correct"],
                         "citation": row["citation_ok"]}
    row["passed"] = all(row["checks"].values())
    # What came back, in full for the failing questions (the report shows them), ids otherwise.
    cited = {c.passage_id for c in answer.citations}
    row["passages"] = [
        _passage_view(p, i, full=not row["passed"])
        for i, p in enumerate(ranked[: max(top_k, 1)], start=1)
    ]
    if not row["passed"]:
        shown = {p.id for p in ranked[:top_k]}
        row["cited_passages"] = [
            _passage_view(p, i, full=True) for i, p in enumerate(answer.passages, start=1) if p.id in cited and p.id not in shown
        ]
        row["must_include"] = case.must_include
        row["must_not"] = case.must_not
        row["evidence"] = case.evidence
        if case.history:
            row["history"] = [t.model_dump() for t in case.history]
    return row


def run_cases(
    cases: Sequence[EvalCase],
    asker: Asker,
    doc_ids: dict[str, str],
    top_k: int = 5,
    depth: int = 10,
    on_result: Callable[[dict], None] | None = None,
    give_up_after: int = 3,
    doc_texts: dict[str, str] | None = None,
) -> list[dict]:
    """Ask every case and return one scored row per case (errors become failing rows).

    Raises AskError when the first ``give_up_after`` questions all fail (a backend that is
    down, not a question that is hard)."""
    depth = max(depth, top_k)
    rows = []
    for case in cases:
        gold = gold_doc_ids(case, doc_ids)
        t0 = time.perf_counter()
        try:
            answer = asker.ask(case.question, top_k=top_k, history=case.history)
            latency = (time.perf_counter() - t0) * 1000
            ranking = answer.passages[:top_k]
            if depth > top_k:
                rank = getattr(asker, "rank", None)
                deeper = (rank(case.question, depth, case.history) if rank
                          else asker.ask(case.question, top_k=depth, history=case.history).passages)
                ranking = _merge_ranking(ranking, deeper, depth)
            row = score_case(case, answer, gold, top_k, depth, ranking=ranking, latency_ms=latency,
                             doc_texts=doc_texts)
        except Exception as e:  # noqa: BLE001 - any backend failure is a failing row, not a crash
            latency = (time.perf_counter() - t0) * 1000
            msg = str(e) if isinstance(e, AskError) else f"{e.__class__.__name__}: {e}"
            row = score_case(case, None, gold, top_k, depth, latency_ms=latency, error=msg)
        rows.append(row)
        if on_result is not None:
            on_result(row)
        if give_up_after and len(rows) == give_up_after and all(r.get("error") for r in rows):
            raise AskError(f"the first {give_up_after} questions all failed; last error: {row['error']}")
    return rows
