"""Browser chat UI: Gradio mounted on the FastAPI app at ``/``.

It calls the same service object as the HTTP API (no HTTP round trip to itself).
Mount it after the API routes are added; the paths the API owns never reach Gradio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from assistant.settings import Settings
from ui.formatting import parse_auth

if TYPE_CHECKING:
    from assistant.service import AssistantService

__all__ = ["mount_ui", "build_blocks", "parse_auth"]

# The "Manage documents" tab (ui.admin) is shown to UI accounts named in ASSISTANT_UI_ADMINS.


def build_blocks(service: AssistantService, settings: Settings):
    from ui.layout import build_blocks as _build

    return _build(service, settings)


def mount_ui(app: FastAPI, service: AssistantService, settings: Settings, path: str = "/") -> FastAPI:
    """Mount the chat UI on ``app`` at ``path``, behind :class:`ui.gate.UIGate`.

    With ``settings.ui_auth`` set, every UI route needs a login (see ``ui.gate``). The paths
    the API owns (``/v1``, ``/teams``, ``/metrics``, ...) never reach Gradio, so they keep the
    API's JSON errors, and Gradio adds no CORS headers of its own.
    """
    import gradio as gr

    from ui.gate import UIGate
    from ui.layout import CSS, HEAD, THEME, build_blocks as _build

    from ui import admin
    from ui.formatting import parse_admins
    from ui.gate import UISessions

    accounts = parse_auth(settings.ui_auth)
    admin_key = settings.admin_key
    sessions = UISessions(accounts, parse_admins(settings.ui_admins, accounts),
                          admin_enabled=bool(admin_key is not None and admin_key.get_secret_value()))
    app.state.ui_sessions = sessions
    app.include_router(admin.router)  # before Gradio's mount at "/", which would match every path
    # the admin view's upload gets the upload cap (the gate admits only administrators to it)
    app.state.upload_paths = set(getattr(app.state, "upload_paths", ())) | {admin.UPLOAD_PATH}
    demo = _build(service, settings, pool=getattr(app.state, "question_pool", None), sessions=sessions)
    demo.queue(default_concurrency_limit=2, max_size=settings.ui_queue_size or 16)
    gr.mount_gradio_app(
        app,
        demo,
        path=path,
        footer_links=[],
        run_history=False,
        ssr_mode=False,
        theme=THEME,
        css=CSS,
        head=HEAD,
        show_error=False,
        mcp_server=False,
        max_file_size=1,  # the page has no upload component (the gate also answers 404 to uploads)
        enable_monitoring=False,
        pwa=False,
    )
    _own_api_paths(app)
    app.add_middleware(
        UIGate,
        sessions=sessions,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        session_hours=settings.ui_session_hours,
    )
    return app


def _own_api_paths(app: FastAPI) -> None:
    """Swap Gradio's mount for one that never matches an API path, and drop Gradio's CORS."""
    from starlette.routing import Match, Mount

    from assistant.api.metrics import is_api_path

    class UIMount(Mount):
        def matches(self, scope):  # type: ignore[override]
            if scope.get("type") in ("http", "websocket") and is_api_path(scope.get("path", "")):
                return Match.NONE, {}
            return super().matches(scope)

    routes = app.router.routes
    for i, route in enumerate(routes):
        if isinstance(route, Mount) and not isinstance(route, UIMount) and getattr(route.app, "get_blocks", None):
            sub = route.app
            sub.user_middleware = [m for m in sub.user_middleware if m.cls.__name__ != "CustomCORSMiddleware"]
            sub.middleware_stack = None
            routes[i] = UIMount(route.path or "/", app=sub, name=route.name)
