"""Prometheus metrics (one registry per app) and the ASGI middleware that feeds them.

Also which paths the API owns (``is_api_path``), which the metrics label and the UI mount skip.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

log = logging.getLogger("assistant.api")

# Paths the API owns, always, even with the UI mounted at "/": these never reach Gradio.
API_PATHS = ("/v1", "/teams", "/api/messages", "/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json")

# Methods counted under their own name in the metrics; anything else is "other", so an
# invented method cannot create new series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def is_api_path(path: str) -> bool:
    """``/v1``, ``/v1/...``, ``/teams/...``, ``/metrics``, the docs: the API's, whatever is mounted at "/"."""
    for p in API_PATHS:
        if path == p or path.startswith(p + "/"):
            return True
    return False


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "assistant_http_requests",
            "HTTP requests handled by the API.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "assistant_http_request_duration_seconds",
            "Time to answer an HTTP request (until the response starts streaming).",
            ["method", "route"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.answers = Counter(
            "assistant_answers",
            "Questions answered or refused, by endpoint.",
            ["outcome", "endpoint"],
            registry=self.registry,
        )

    def count_answer(self, answered: bool, endpoint: str) -> None:
        self.answers.labels("answered" if answered else "refused", endpoint).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_is_api_path = is_api_path


class MetricsMiddleware:
    """Counts requests and their latency by route template (bounded label cardinality)."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not _is_api_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}
        observed = {"done": False}

        def observe() -> None:
            if observed["done"]:
                return
            observed["done"] = True
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - start
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.metrics.requests.labels(method, label, str(status["code"])).inc()
            self.metrics.latency.labels(method, label).observe(elapsed)
            log.debug("%s %s -> %s in %.1f ms", method, label, status["code"], elapsed * 1000)

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                observe()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            observe()
