"""The server: the API and the browser UI on one FastAPI app (parts from ``assistant.compose``), served by uvicorn.

The service loads its index in a background thread so ``/healthz`` answers at once and
``/readyz`` says 503 until the index and models are in memory.
"""

from __future__ import annotations

import logging
import threading

from fastapi import FastAPI

from assistant.api import create_app
from assistant.api.security import check_bind
from assistant.service import AssistantService
from assistant.settings import Settings

log = logging.getLogger(__name__)


def build_app(settings: Settings, service: AssistantService | None = None, with_ui: bool = True) -> FastAPI:
    """The full app; loads ``service`` (default: ``compose.build_service``) in the background unless it is loaded."""
    from assistant.compose import build_service

    service = service or build_service(settings)
    app = create_app(service, settings)
    if not service.ready:
        threading.Thread(target=_load, args=(service,), name="index-loader", daemon=True).start()
    interval = build_poll_interval(settings)
    if interval > 0:  # notice a build another process published (``assistant.stores.watch``)
        from assistant.stores.watch import BuildWatcher

        app.state.build_watcher = BuildWatcher(service, interval)
        app.state.build_watcher.start()
    if with_ui and settings.ui_enabled:
        from ui import mount_ui

        mount_ui(app, service, settings)
    return app


def build_poll_interval(settings: Settings) -> float:
    """``ASSISTANT_BUILD_POLL_SECONDS``; unset: 2 s with the PostgreSQL store (many workers), off with
    the local one (``POST /v1/index/reload`` swaps a new build in)."""
    if settings.build_poll_seconds is not None:
        return max(0.0, settings.build_poll_seconds)
    return 2.0 if settings.store == "postgres" else 0.0


def _load(service: AssistantService) -> None:
    try:
        service.load()
    except Exception as exc:  # /readyz keeps saying 503; the log says why
        log.error("could not load the index: %s", exc)


def app_factory() -> FastAPI:
    """For ``uvicorn --factory`` (one app per worker process)."""
    from assistant.settings import get_settings

    return build_app(get_settings())


def run(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    import uvicorn

    check_bind(host, settings)
    log.info("serving on http://%s:%d (API under /v1, docs at /docs%s)", host, port,
             ", chat at /" if settings.ui_enabled else "; browser UI off")
    proxy = settings.forwarded_allow_ips.strip()
    common = dict(host=host, port=port, log_level=settings.log_level.lower(),
                  proxy_headers=bool(proxy), forwarded_allow_ips=proxy or None)
    if workers > 1:
        uvicorn.run("assistant.server:app_factory", factory=True, workers=workers, **common)
    else:
        uvicorn.run(build_app(settings), **common)
