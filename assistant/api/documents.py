"""The catalog and its passages, and the admin index reload."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from assistant.api import deps
from assistant.service import AssistantService
from assistant.api.errors import ApiError
from assistant.api.models import DocumentList, DocumentOut, ReloadResponse, error_responses
from assistant.service import PassageDetail
from assistant.store import IndexUnavailable
from assistant.api.security import require_admin_key, require_api_key

log = logging.getLogger("assistant.api")

router = APIRouter(prefix="/v1", tags=["documents"], dependencies=[Depends(require_api_key)])
admin_router = APIRouter(prefix="/v1", tags=["admin"])


@router.get(
    "/documents",
    response_model=DocumentList,
    summary="The catalog, with passage counts",
    responses=error_responses(401, 429, 503),
)
async def list_documents(service: AssistantService = Depends(deps.get_service)) -> Any:
    docs = await deps.call_service_async(service.documents)
    return {"documents": [d.model_dump() for d in docs]}


@router.get(
    "/documents/{document_id}",
    response_model=DocumentOut,
    summary="One catalog entry",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_document(
    document_id: str = Path(max_length=200, examples=["dk-2023-2026"]),
    service: AssistantService = Depends(deps.get_service),
) -> Any:
    return (await deps.call_service_async(service.document, document_id, what="document")).model_dump()


@router.get(
    "/passages/{passage_id:path}",
    response_model=PassageDetail,
    summary="One passage with its neighbours",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_passage(
    passage_id: str = Path(max_length=300),
    service: AssistantService = Depends(deps.get_service),
) -> Any:
    return (await deps.call_service_async(service.passage, passage_id, what="passage")).model_dump()


@admin_router.post(
    "/index/reload",
    response_model=ReloadResponse,
    summary="Swap in the index on disk (admin key)",
    description="Requests in flight finish on the old index; new ones use the reloaded one.",
    responses=error_responses(401, 403, 409, 429, 503),
    dependencies=[Depends(require_admin_key)],
)
async def reload_index(request: Request) -> Any:
    """Works before the first load succeeded too (e.g. the server started before `assistant index`)."""
    service: AssistantService = request.app.state.service
    start = time.perf_counter()
    try:
        await run_in_threadpool(service.reload)
    except Exception as exc:  # the old index (if any) keeps serving: reload swaps only after a full load
        log.error("index reload failed: %s", exc, exc_info=not isinstance(exc, IndexUnavailable))
        message = str(exc) if isinstance(exc, IndexUnavailable) else "the index on disk could not be loaded"
        still = "the previous index is still serving" if service.ready else "no index is loaded"
        raise ApiError(409, "reload_failed", f"Reload failed ({message}); {still}.") from None
    return {"status": "reloaded", "took_ms": round((time.perf_counter() - start) * 1000, 1)}
