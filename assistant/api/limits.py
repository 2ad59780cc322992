"""Request body limits (ASGI middleware): 413 over the size limit on every path, the UI's included;
``POST /v1/documents`` gets the upload cap instead."""

from __future__ import annotations

import json
from typing import Any

UPLOAD_PATH = "/v1/documents"


class BodyLimitMiddleware:
    """Answers 413 for request bodies over ``max_bytes`` (declared or actually sent), on every path:
    the API's and the UI's (Gradio's routes included)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, send: Any) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": f"Request body is larger than the limit of {self.max_bytes} bytes.",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._too_large(send)
                    return
        # Buffer the body (bounded) so a client that lies about its length cannot get past.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = {"done": False}

        async def replay() -> dict:
            if not replayed["done"]:
                replayed["done"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class UploadAwareBodyLimit:
    """The API's body limit, except ``POST /v1/documents``, which may be as large as the upload cap; so may
    the paths in ``app.state.upload_paths`` (the UI admin view adds its ``POST /ui-admin/documents``, which
    the UI gate lets through only for an administrator, and only when the UI is mounted)."""

    def __init__(self, app: Any, max_bytes: int, upload_max_bytes: int):
        self.default = BodyLimitMiddleware(app, max_bytes=max_bytes)
        # Multipart framing and the catalog fields come on top of the file itself.
        self.upload = BodyLimitMiddleware(app, max_bytes=upload_max_bytes + 64 * 1024)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and self._is_upload(scope):
            await self.upload(scope, receive, send)
        else:
            await self.default(scope, receive, send)

    @staticmethod
    def _is_upload(scope: dict) -> bool:
        path = scope.get("path")
        if path == UPLOAD_PATH:
            return True
        app = scope.get("app")
        return path in getattr(getattr(app, "state", None), "upload_paths", ())
