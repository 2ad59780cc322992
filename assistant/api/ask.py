"""POST /v1/ask: the answer record, or Server-Sent Events with ``"stream": true``."""

from __future__ import annotations

from typing import Any, AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from assistant.api import deps
from assistant.service import AssistantService
from assistant.api.workers import QuestionPool
from assistant.api.metrics import Metrics
from assistant.api.models import ASK_EVENT_SCHEMA, AskRequest, error_responses
from assistant.api.render import SSE_HEADERS, deltas, sse
from assistant.api.security import require_api_key
from assistant.records import Answer
from assistant.settings import Settings

router = APIRouter(prefix="/v1", tags=["answers"], dependencies=[Depends(require_api_key)])

_STREAM_DOC = """\
With `"stream": true` the response is `text/event-stream`:

```
event: answer
data: {"delta": "Denmark gave "}

event: answer
data: {"delta": "USD 8 million ..."}

event: citations
data: [{"n": 1, "passage_id": "...", "document_id": "...", "title": "...", "page": 3, "quote": "..."}]

event: done
data: {"answer": "...", "answered": true, "citations": [...], "passages": [...], "timings_ms": {...}}
```
Concatenating the `delta`s gives `answer`.
"""


async def answer_events(answer: Answer) -> AsyncIterator[str]:
    for piece in deltas(answer.answer):
        yield sse("answer", {"delta": piece})
    yield sse("citations", [c.model_dump() for c in answer.citations])
    yield sse("done", answer.model_dump())


@router.post(
    "/ask",
    response_model=Answer,
    summary="Answer a question with exact citations",
    description="Answers from the indexed documents only; `answered` is false when the evidence is "
    "too weak (the answer then says so and has no citations).\n\n" + _STREAM_DOC,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": ASK_EVENT_SCHEMA}},
            "description": "The answer record (JSON), or an event stream when `stream` is true.",
        },
        **error_responses(400, 401, 413, 422, 429, 503),
    },
)
async def ask(
    body: AskRequest,
    service: AssistantService = Depends(deps.get_service),
    settings: Settings = Depends(deps.get_settings),
    metrics: Metrics = Depends(deps.get_metrics),
    pool: QuestionPool = Depends(deps.get_pool),
) -> Any:
    question = deps.check_question(body.question, settings)
    history = deps.check_history(body.history, settings)
    answer = await deps.ask(service, question, body.top_k, body.filters, history, pool=pool)
    metrics.count_answer(answer.answered, "ask")
    if body.stream:
        return StreamingResponse(answer_events(answer), media_type="text/event-stream", headers=SSE_HEADERS)
    return answer
