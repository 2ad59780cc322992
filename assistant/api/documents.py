"""The catalog and its passages, and the admin index reload."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Path

from assistant.api import deps
from assistant.api.models import DocumentList, DocumentOut, ReloadResponse, error_responses
from assistant.service import PassageDetail
from assistant.api.security import require_admin_key, require_api_key

router = APIRouter(prefix="/v1", tags=["documents"], dependencies=[Depends(require_api_key)])
admin_router = APIRouter(prefix="/v1", tags=["admin"])


def _dump(obj: Any) -> Any:
    return obj if isinstance(obj, dict) else obj.model_dump()


@router.get(
    "/documents",
    response_model=DocumentList,
    summary="The catalog, with passage counts",
    responses=error_responses(401, 429, 503),
)
async def list_documents(service: Any = Depends(deps.get_service)) -> Any:
    docs = await deps.call_service_async(service.documents)
    return {"documents": [_dump(d) for d in docs]}


@router.get(
    "/documents/{document_id}",
    response_model=DocumentOut,
    summary="One catalog entry",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_document(
    document_id: str = Path(max_length=200, examples=["dk-2023-2026"]),
    service: Any = Depends(deps.get_service),
) -> Any:
    return _dump(await deps.call_service_async(service.document, document_id, what="document"))


@router.get(
    "/passages/{passage_id:path}",
    response_model=PassageDetail,
    summary="One passage with its neighbours",
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_passage(
    passage_id: str = Path(max_length=300),
    service: Any = Depends(deps.get_service),
) -> Any:
    return _dump(await deps.call_service_async(service.passage, passage_id, what="passage"))


@admin_router.post(
    "/index/reload",
    response_model=ReloadResponse,
    summary="Swap in the index on disk (admin key)",
    description="Requests in flight finish on the old index; new ones use the reloaded one.",
    responses=error_responses(401, 403, 429, 503),
    dependencies=[Depends(require_admin_key)],
)
async def reload_index(service: Any = Depends(deps.get_service)) -> Any:
    start = time.perf_counter()
    await deps.call_service_async(service.reload)
    return {"status": "reloaded", "took_ms": round((time.perf_counter() - start) * 1000, 1)}
