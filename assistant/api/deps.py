"""Shared dependencies: the service and settings on ``app.state``, readiness, and helpers
that turn service exceptions into API errors."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from fastapi import Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from assistant.api.errors import ApiError
from assistant.api.metrics import Metrics
from assistant.api.workers import Overloaded, QuestionPool, takes_deadline
from assistant.records import Answer, Filters, Turn
from assistant.service import AssistantService, DeadlineExceeded, NotFound, NotReady
from assistant.settings import Settings

T = TypeVar("T")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_pool(request: Request) -> QuestionPool:
    """The bounded question executor every question goes through."""
    return request.app.state.question_pool


def busy_error(exc: BaseException) -> ApiError | None:
    """503 with Retry-After for a full queue or a question past its deadline; None for anything else."""
    if isinstance(exc, Overloaded):
        return ApiError(503, "overloaded", "The server is answering as many questions as it can; retry shortly.",
                        headers={"Retry-After": "2"})
    if isinstance(exc, (DeadlineExceeded, TimeoutError)):
        return ApiError(503, "deadline_exceeded", "The question took longer than the server allows; retry shortly.",
                        headers={"Retry-After": "2"})
    return None


async def run_question(pool: QuestionPool | None, fn: Callable[..., T], *args: Any, deadline: float | None = None,
                       what: str = "item", **kwargs: Any) -> T:
    """``call_service(fn, ...)`` on the bounded executor (None: the threadpool, as the bot's turns run)."""
    if pool is None:
        return await call_service_async(fn, *args, what=what, **kwargs)
    deadline = pool.deadline() if deadline is None else deadline
    if takes_deadline(fn):
        kwargs["deadline"] = deadline
    job = functools.partial(call_service, fn, *args, what=what, **kwargs)
    try:
        return await pool.run(job, deadline=deadline)
    except ApiError:
        raise
    except Exception as exc:
        mapped = busy_error(exc)
        if mapped is None:
            raise
        raise mapped from None


def get_service(request: Request) -> AssistantService:
    """The loaded service; 503 (with Retry-After) while the index is still loading."""
    service: AssistantService = request.app.state.service
    if not service.ready:
        raise ApiError(503, "not_ready", "The index is still loading; retry shortly.", headers={"Retry-After": "5"})
    return service


def call_service(fn: Callable[..., T], *args: Any, what: str = "item", **kwargs: Any) -> T:
    """Call the service, mapping NotFound to 404 and bad-input ValueErrors to 400."""
    try:
        return fn(*args, **kwargs)
    except ApiError:
        raise
    except Exception as exc:
        if isinstance(exc, NotFound):
            text = str(exc.args[0]) if exc.args else ""
            raise ApiError(404, "not_found", text if " " in text else f"No such {what}: {text}".rstrip(": ")) from None
        if isinstance(exc, NotReady):
            raise ApiError(503, "not_ready", "The index is still loading; retry shortly.", headers={"Retry-After": "5"})
        if isinstance(exc, ValueError) and not isinstance(exc, ValidationError):
            # Bad input the service rejected (a pydantic ValidationError is our bug: 500).
            raise ApiError(400, "bad_request", str(exc) or "Bad request.") from None
        raise


async def call_service_async(fn: Callable[..., T], *args: Any, what: str = "item", **kwargs: Any) -> T:
    """``call_service`` in the threadpool: service calls are synchronous CPU work."""
    return await run_in_threadpool(call_service, fn, *args, what=what, **kwargs)


def check_question(text: str, settings: Settings, field: str = "question") -> str:
    if len(text) > settings.max_question_chars:
        raise ApiError(
            413,
            "question_too_long",
            f"The {field} has {len(text)} characters; the limit is {settings.max_question_chars}.",
        )
    stripped = text.strip()
    if not stripped:
        raise ApiError(422, "validation_error", f"Invalid request: {field}: must not be blank")
    return stripped


def check_history(history: list[Turn] | None, settings: Settings) -> list[Turn] | None:
    """413 ``history_too_long`` for too many turns, a turn too long, or too much history in all."""
    if not history:
        return None
    max_turns, per_turn, total_cap = settings.max_history_turns, settings.max_turn_chars, settings.max_history_chars
    if len(history) > max_turns:
        raise ApiError(413, "history_too_long", f"The history has {len(history)} turns; the limit is {max_turns}.")
    total = 0
    for i, turn in enumerate(history):
        n = len(turn.content)
        if n > per_turn:
            raise ApiError(413, "history_too_long",
                           f"History turn {i + 1} has {n} characters; the limit per turn is {per_turn}.")
        total += n
    if total > total_cap:
        raise ApiError(413, "history_too_long",
                       f"The history has {total} characters in all; the limit is {total_cap}.")
    return [Turn(role=t.role, content=t.content) for t in history]


async def ask(
    service: AssistantService,
    question: str,
    top_k: int,
    filters: Filters | None,
    history: list[Turn] | None,
    pool: QuestionPool | None = None,
    deadline: float | None = None,
) -> Answer:
    return await run_question(pool, service.ask, question, deadline=deadline, top_k=top_k, filters=filters,
                              history=history or None)
