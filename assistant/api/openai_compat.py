"""POST /v1/chat/completions: the OpenAI chat API, answered by the assistant.

The last user message is the question; earlier user/assistant messages are the history
(system messages are ignored). The reply's content is the answer with numbered sources;
the sources are also in the extra ``citations`` field.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from assistant.api import deps
from assistant.service import AssistantService
from assistant.api.workers import QuestionPool
from assistant.api.errors import ApiError
from assistant.api.metrics import Metrics
from assistant.api.models import CHAT_CHUNK_EVENT_SCHEMA, ChatCompletionRequest, ChatCompletionResponse, error_responses
from assistant.api.render import SSE_HEADERS, deltas, sse
from assistant.render import answer_with_sources
from assistant.api.security import require_api_key
from assistant.records import Answer, Turn
from assistant.settings import Settings

router = APIRouter(prefix="/v1", tags=["openai-compatible"], dependencies=[Depends(require_api_key)])


def split_messages(body: ChatCompletionRequest) -> tuple[str, list[Turn]]:
    last_user = max((i for i, m in enumerate(body.messages) if m.role == "user"), default=None)
    if last_user is None:
        raise ApiError(400, "no_user_message", "The messages contain no user message to answer.")
    history = [
        Turn(role=m.role, content=m.text())  # type: ignore[arg-type]
        for m in body.messages[:last_user]
        if m.role in ("user", "assistant") and m.text().strip()
    ]
    return body.messages[last_user].text(), history


def _unsupported(message: str) -> ApiError:
    return ApiError(400, "unsupported_parameter", message)


def check_supported(body: ChatCompletionRequest) -> None:
    """Refuse, with a 400 that says why, what this endpoint cannot do (rather than ignoring it)."""
    if body.n is not None and body.n != 1:
        raise _unsupported(f"n={body.n} is not supported: the assistant gives one answer per request (send n=1 or omit n).")
    extra = body.model_extra or {}
    if body.tools or extra.get("functions"):
        raise _unsupported("Tool calls are not supported: the assistant answers from its documents only (omit tools/functions).")
    for key in ("tool_choice", "function_call"):
        if extra.get(key) not in (None, "none"):
            raise _unsupported(f"{key} is not supported: the assistant never calls tools (omit {key} or send \"none\").")
    for i, m in enumerate(body.messages):
        if m.role in ("tool", "function") or (m.model_extra or {}).get("tool_calls") or (m.model_extra or {}).get("function_call"):
            raise _unsupported(f"messages[{i}] is a tool call or tool result; tool calls are not supported.")


def _tokens(text: str) -> int:
    return len(text.split())


def _usage(body: ChatCompletionRequest, content: str) -> dict[str, int]:
    prompt_tokens = sum(_tokens(m.text()) for m in body.messages)
    completion_tokens = _tokens(content)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


async def _chunks(cid: str, created: int, model: str, answer: Answer, content: str,
                  usage: dict[str, int] | None = None) -> AsyncIterator[str]:
    base: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
    if usage is not None:  # OpenAI's shape with include_usage: null on every chunk, then one usage chunk
        base["usage"] = None
    first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    yield sse(None, first)
    for piece in deltas(content):
        yield sse(None, {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
    last = {
        **base,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "citations": [c.model_dump() for c in answer.citations],
        "answered": answer.answered,
    }
    yield sse(None, last)
    if usage is not None:
        yield sse(None, {**base, "choices": [], "usage": usage})
    yield sse(None, "[DONE]")


@router.post(
    "/chat/completions",
    response_model=ChatCompletionResponse,
    summary="OpenAI-compatible chat completion",
    description="Point any OpenAI client at `<server>/v1` with an API key and any model name. "
    "With `stream: true` the response is `chat.completion.chunk` events ending in `data: [DONE]`; "
    "the last chunk carries `citations`.",
    responses={
        200: {"content": {"text/event-stream": {"schema": CHAT_CHUNK_EVENT_SCHEMA}}},
        **error_responses(400, 401, 413, 422, 429, 503),
    },
)
async def chat_completions(
    body: ChatCompletionRequest,
    service: AssistantService = Depends(deps.get_service),
    settings: Settings = Depends(deps.get_settings),
    metrics: Metrics = Depends(deps.get_metrics),
    pool: QuestionPool = Depends(deps.get_pool),
) -> Any:
    check_supported(body)
    question, history = split_messages(body)
    question = deps.check_question(question, settings)
    history = deps.check_history(history, settings)
    answer = await deps.ask(service, question, body.top_k, body.filters, history, pool=pool)
    metrics.count_answer(answer.answered, "chat")
    content = answer_with_sources(answer, markdown=True)
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        usage = _usage(body, content) if include_usage else None
        return StreamingResponse(
            _chunks(cid, created, body.model, answer, content, usage), media_type="text/event-stream", headers=SSE_HEADERS
        )
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": _usage(body, content),
        "citations": [c.model_dump() for c in answer.citations],
        "answered": answer.answered,
    }
