"""POST /v1/search: retrieval only, the passages with their scores."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from assistant.api import deps
from assistant.service import AssistantService
from assistant.api.workers import QuestionPool
from assistant.api.models import SearchRequest, SearchResponse, error_responses
from assistant.api.security import require_api_key
from assistant.settings import Settings

router = APIRouter(prefix="/v1", tags=["retrieval"], dependencies=[Depends(require_api_key)])


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Retrieve passages (no answer)",
    responses=error_responses(400, 401, 413, 422, 429, 503),
)
async def search(
    body: SearchRequest,
    service: AssistantService = Depends(deps.get_service),
    settings: Settings = Depends(deps.get_settings),
    pool: QuestionPool = Depends(deps.get_pool),
) -> Any:
    query = deps.check_question(body.query, settings, field="query")
    passages = await deps.run_question(pool, service.search, query, top_k=body.top_k, filters=body.filters)
    return {"query": query, "passages": [p.model_dump() for p in passages]}
