"""Browser chat UI: Gradio mounted on the FastAPI app at ``/``.

It calls the same service object as the HTTP API (no HTTP round trip to itself).
Mount it after the API routes are added: Gradio at ``/`` catches every path not routed before it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ui.formatting import parse_auth

__all__ = ["mount_ui", "build_blocks", "parse_auth"]


def build_blocks(service: Any, settings: Any):
    from ui.layout import build_blocks as _build

    return _build(service, settings)


def mount_ui(app: FastAPI, service: Any, settings: Any, path: str = "/") -> FastAPI:
    """Mount the chat UI on ``app`` at ``path``; ask for a login when ``settings.ui_auth`` is set."""
    import gradio as gr

    from ui.layout import CSS, HEAD, THEME, TITLE, build_blocks as _build

    auth = parse_auth(getattr(settings, "ui_auth", ""))
    demo = _build(service, settings)
    demo.queue(default_concurrency_limit=2)
    return gr.mount_gradio_app(
        app,
        demo,
        path=path,
        auth=auth or None,
        auth_message=f"{TITLE}: sign in (accounts are set in ASSISTANT_UI_AUTH)." if auth else None,
        footer_links=[],
        ssr_mode=False,
        theme=THEME,
        css=CSS,
        head=HEAD,
        show_error=False,
        mcp_server=False,
    )
