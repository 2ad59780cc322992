"""GET /v1/models and /v1/models/{id}: the OpenAI model list, behind the same API keys.

Many OpenAI clients (chat front ends, IDE plugins, bot frameworks) list the models before
they chat. The list holds the assistant itself (``assistant``) and, when a generative
answerer is configured, the LLM that phrases its answers. Any model name is accepted by
``/v1/chat/completions``; these are the names worth offering.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel

from assistant.api.errors import ApiError
from assistant.api.models import error_responses
from assistant.api.security import require_api_key
from assistant.settings import Settings

router = APIRouter(prefix="/v1", tags=["openai-compatible"], dependencies=[Depends(require_api_key)])

ASSISTANT_MODEL = "assistant"
OWNER = "iom-assistant"
_STARTED = int(time.time())


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


def available_models(settings: Settings) -> list[dict[str, Any]]:
    models = [{"id": ASSISTANT_MODEL, "object": "model", "created": _STARTED, "owned_by": OWNER}]
    if settings.answerer != "extractive":
        name = settings.llm_model or (settings.llm_model_path.stem if settings.llm_model_path else None)
        if name and name != ASSISTANT_MODEL:
            models.append({"id": name, "object": "model", "created": _STARTED, "owned_by": f"{OWNER}:{settings.answerer}"})
    return models


@router.get(
    "/models",
    response_model=ModelList,
    summary="OpenAI-compatible model list",
    description="`assistant` (the extractive answerer with citations), plus the LLM answerer when one is configured.",
    responses=error_responses(401, 429),
)
async def list_models(request: Request) -> Any:
    return {"object": "list", "data": available_models(request.app.state.settings)}


@router.get(
    "/models/{model_id:path}",
    response_model=ModelOut,
    summary="One model of the list",
    responses=error_responses(401, 404, 429),
)
async def get_model(request: Request, model_id: str = Path(max_length=200)) -> Any:
    for m in available_models(request.app.state.settings):
        if m["id"] == model_id:
            return m
    raise ApiError(404, "not_found", f"No such model: {model_id}")
