"""White-box HTTP metrics of the demo API, named as the usual alert rules expect them.

`http_requests_total{method,endpoint,status}` and `http_request_duration_seconds{method,endpoint}`,
with `endpoint` the route template (`/api/items/{id}`), never the raw path, so ids cannot explode
the series count. Requests that a fault answered or cut off are counted too: drills depend on it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import BaseRoute, Match

from probes.faults.asgi import (
    UNANSWERED_STATUS,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    remember_transport,
)

UNMATCHED = "other"


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "endpoint", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration in seconds, by method and route template.",
            ["method", "endpoint"],
            registry=registry,
        )


def endpoint_of(routes: Sequence[BaseRoute], scope: Scope) -> str:
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:  # PARTIAL = the path matched but the method did not (405)
            return str(getattr(route, "path", UNMATCHED))
    return UNMATCHED


class MetricsMiddleware:
    """Outermost layer: sees every status, including 500s from errors and fault answers."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: int | None = None

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        remember_transport(scope, send)  # a fault inside that resets the connection needs it
        try:
            await self.app(scope, receive, send_and_record)
        except BaseException:
            status = status or 500
            raise
        finally:
            method = scope["method"]
            endpoint = endpoint_of(self.routes, scope)
            final = status or scope.get(UNANSWERED_STATUS) or 500
            self.metrics.requests.labels(method, endpoint, str(final)).inc()
            self.metrics.duration.labels(method, endpoint).observe(time.perf_counter() - start)
