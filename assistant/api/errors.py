"""One error shape for every failure: ``{"error": {"code": ..., "message": ...}}``.

Validation errors are 422 (400 for unknown filter keys), HTTP errors keep their status,
and anything unexpected is a 500 with a generic message: no trace ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("assistant.api")

_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise from routers and dependencies to answer with a JSON error."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _is_unknown_filter(err: dict[str, Any]) -> bool:
    loc = list(err.get("loc", ()))
    return err.get("type") == "extra_forbidden" and "filters" in loc[:-1]


def describe_validation(errors: list[dict[str, Any]]) -> tuple[int, str, str]:
    """Status, code and message for a list of pydantic errors."""
    unknown = [e for e in errors if _is_unknown_filter(e)]
    if unknown:
        keys = sorted({str(e["loc"][-1]) for e in unknown})
        return (
            400,
            "unknown_filter",
            f"Unknown filter key(s): {', '.join(keys)}. Allowed: document_ids, publisher, language, year.",
        )
    msgs = []
    for e in errors[:5]:
        if e.get("type") == "json_invalid":
            msgs.append("request body is not valid JSON")
        else:
            msgs.append(f"{_loc(e.get('loc', ()))}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return 422, "validation_error", "Invalid request: " + "; ".join(msgs) + more


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_json(exc.status, exc.code, exc.message, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    status, code, message = describe_validation(list(exc.errors()))
    return error_json(status, code, message)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _DEFAULT_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_json(exc.status_code, code, detail, getattr(exc, "headers", None))


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The passage database is down or unreachable: a clear 503, and the next request reconnects.
    log.warning("store unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_json(503, "store_unavailable",
                      "The passage database is unavailable; retry shortly.", {"Retry-After": "5"})


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Logged server-side with its traceback; the client only learns that it failed.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_json(500, "internal_error", "Internal server error.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    from assistant.stores.errors import StoreUnavailable

    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(Exception, _unhandled)
