"""The HTTP API: ``create_app(service, settings)`` returns the FastAPI app.

Routers are thin; each calls the one ``AssistantService`` that the CLI and UI use too.
The server (``assistant.server``) adds the UI and runs uvicorn.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from assistant.settings import Settings

log = logging.getLogger("assistant.api")

DEFAULT_MAX_BODY_BYTES = 256 * 1024

DESCRIPTION = """\
Answers questions about the IOM partnership documents with exact, numbered citations,
offline. Every error is JSON: `{"error": {"code": "...", "message": "..."}}`.

**Auth**: `Authorization: Bearer <key>` with a key from `ASSISTANT_API_KEYS` on every endpoint
except `/healthz` and `/readyz` (open when no keys are configured, which restricts the server
to loopback). `POST /v1/index/reload` needs `ASSISTANT_ADMIN_KEY`. `/teams/webhook` is
authenticated by Teams' HMAC signature instead.

**Limits**: questions longer than `ASSISTANT_MAX_QUESTION_CHARS` and bodies over the size
limit give 413; unknown filter keys give 400; more than `ASSISTANT_RATE_LIMIT_PER_MINUTE`
requests per key per minute give 429 with `Retry-After`.
"""


def create_app(service: Any, settings: Settings, *, max_body_bytes: int | None = None) -> FastAPI:
    """Build the API around a (loaded or loading) ``AssistantService``.

    ``/readyz`` and every service endpoint answer 503 until ``service.ready`` is true.
    """
    from assistant import __version__
    from assistant.api import ask, documents, feedback, health, openai_compat, search, teams
    from assistant.api.errors import install_error_handlers
    from assistant.api.metrics import BodyLimitMiddleware, Metrics, MetricsMiddleware
    from assistant.api.security import TokenBucket

    app = FastAPI(
        title="IOM partnership document assistant",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
    )
    app.state.service = service
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.rate_limiter = TokenBucket(settings.rate_limit_per_minute)

    install_error_handlers(app)
    for module in (health, ask, search, documents, feedback, openai_compat, teams):
        app.include_router(module.router)
    app.include_router(documents.admin_router)
    from assistant.api import bot, models_list, uploads

    app.include_router(models_list.router)
    app.include_router(uploads.admin_router)
    app.include_router(uploads.router)
    app.state.index_jobs = uploads.IndexJobs(app.state)
    app.include_router(bot.router)  # POST /api/messages: the Teams bot (Agents SDK)
    app.state.bot = None  # built on the first request from the ASSISTANT_BOT_* settings

    limit = max_body_bytes or int(getattr(settings, "max_body_bytes", 0) or DEFAULT_MAX_BODY_BYTES)
    # Order: the last added runs first. Metrics see every response, including 413s and CORS.
    # POST /v1/documents gets the upload cap (ASSISTANT_MAX_UPLOAD_BYTES); every other body the limit above.
    app.add_middleware(uploads.UploadAwareBodyLimit, max_bytes=limit, upload_max_bytes=settings.max_upload_bytes)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


__all__ = ["create_app"]
