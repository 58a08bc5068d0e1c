"""Metrics: Prometheus counters and histograms per endpoint, served at GET /metrics.

Each app has its own registry (tests build many apps in one process). The endpoint label is
the route template (`/v1/kbs/{kb}`), never the raw path, so label values stay few.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_api_requests",
            "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rag_api_request_seconds",
            "Time until the whole response was sent.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "rag_api_errors",
            "Responses with status >= 400, and errors inside streams.",
            ["endpoint", "kind"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "rag_api_tokens",
            "LLM tokens used by answers.",
            ["endpoint", "kind"],
            registry=self.registry,
        )
        self.first_token = Histogram(
            "rag_api_first_token_seconds",
            "Time to the first streamed token of an answer.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.disconnects = Counter(
            "rag_api_stream_disconnects",
            "Streams the client dropped before the end.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def count_tokens(self, endpoint: str, prompt: int, completion: int) -> None:
        self.tokens.labels(endpoint, "prompt").inc(prompt)
        self.tokens.labels(endpoint, "completion").inc(completion)


class MetricsMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware): times streamed responses to their last byte."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            endpoint = _endpoint(scope)
            self.metrics.requests.labels(endpoint, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
            if status[0] >= 400:
                self.metrics.errors.labels(endpoint, str(status[0])).inc()


def _endpoint(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
