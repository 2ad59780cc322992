"""The HTTP API: ``create_app(service, settings)`` returns the FastAPI app.

Routers are thin; each calls the one ``AssistantService`` that the CLI and UI use too.
The server (``assistant.server``) adds the UI and runs uvicorn.
"""

from __future__ import annotations

import logging
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

from assistant.service import AssistantService
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


def create_app(service: AssistantService, settings: Settings, *, max_body_bytes: int | None = None) -> FastAPI:
    """Build the API around a (loaded or loading) ``AssistantService``.

    ``/readyz`` and every service endpoint answer 503 until ``service.ready`` is true.
    """
    from assistant import __version__
    from assistant.api import ask, documents, feedback, health, openai_compat, search, teams
    from assistant.api.errors import install_error_handlers
    from assistant.api.limits import UploadAwareBodyLimit
    from assistant.api.metrics import Metrics, MetricsMiddleware
    from assistant.api.security import make_bucket

    app = FastAPI(
        title="IOM partnership document assistant",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served below from local assets: nothing is fetched from a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_local_docs(app)
    app.state.service = service
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.rate_limiter = make_bucket(settings, "requests", settings.rate_limit_per_minute)
    app.state.failed_auth = make_bucket(settings, "failed_auth",
                                        settings.failed_auth_per_minute if settings.rate_limit_per_minute > 0 else 0)
    from assistant.api.replay import MemoryReplayCache

    # Signed Teams requests already seen (webhook and bot): a replay is 409. Per process (see replay.py),
    # or in the database with the PostgreSQL store, so every worker sees every worker's requests.
    if settings.store == "postgres":
        from assistant.stores.shared import PgReplayCache, shared_store

        app.state.replay_cache = PgReplayCache(shared_store(settings), settings.replay_cache_entries)
    else:
        app.state.replay_cache = MemoryReplayCache(settings.replay_cache_entries)
    from assistant.api.workers import QuestionPool

    app.state.question_pool = QuestionPool(
        workers=settings.ask_workers,
        queue_size=settings.ask_queue_size,
        deadline_s=settings.ask_deadline_s,
    )

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

    limit = max_body_bytes or settings.max_body_bytes or DEFAULT_MAX_BODY_BYTES
    # Order: the last added runs first. Metrics see every response, including 413s and CORS.
    # POST /v1/documents gets the upload cap (ASSISTANT_MAX_UPLOAD_BYTES); every other body the limit above.
    app.add_middleware(UploadAwareBodyLimit, max_bytes=limit, upload_max_bytes=settings.max_upload_bytes)
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


DOCS_ASSETS = "/docs/assets"


def install_local_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with their scripts, styles and icon served from the
    ``fastapi-offline`` package under ``/docs/assets``: the browser fetches nothing from a CDN."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html

    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=static), name="docs-assets")
    oauth_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=app.title + " - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth_redirect}",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        )

    @app.get(oauth_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=app.title + " - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


__all__ = ["create_app"]
