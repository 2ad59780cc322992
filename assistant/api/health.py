"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistant.api.models import HealthResponse, error_responses
from assistant.api.security import require_api_key

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness (open, no key)")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=HealthResponse,
    summary="Readiness (open): 503 until the index and models are loaded",
    responses=error_responses(503),
)
async def readyz(request: Request) -> dict:
    from assistant.api.errors import ApiError

    if not getattr(request.app.state.service, "ready", False):
        raise ApiError(503, "not_ready", "The index is still loading.", headers={"Retry-After": "5"})
    return {"status": "ready"}


@router.get(
    "/metrics",
    summary="Prometheus metrics (API key when keys are configured)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **error_responses(401, 429)},
    dependencies=[Depends(require_api_key)],
)
async def metrics(request: Request) -> Response:
    body, content_type = request.app.state.metrics.render()
    sizes = request.app.state.service.query_batch_sizes()
    if sizes:  # the micro-batcher's model calls by how many query embeddings each took
        lines = ["# HELP assistant_query_embedding_batches_total Query-embedding model calls by batch size.",
                 "# TYPE assistant_query_embedding_batches_total counter"]
        lines += [f'assistant_query_embedding_batches_total{{size="{n}"}} {count}' for n, count in sorted(sizes.items())]
        body += ("\n".join(lines) + "\n").encode()
    return Response(body, media_type=content_type)
