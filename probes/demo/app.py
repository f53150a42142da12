"""The bundled demo search API: what `probe-agent target` serves and the demo probes watch."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from probes import __version__
from probes.demo.auth import TOKEN_LIFETIME, TokenIssuer
from probes.demo.catalogue import Catalogue, default_catalogue
from probes.demo.metrics import HttpMetrics, MetricsMiddleware
from probes.faults.api import install_fault_api
from probes.faults.asgi import ASGIApp, FaultMiddleware
from probes.faults.store import FaultStore


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients often send a password too; the demo ignores it

    user: str = Field(min_length=1, max_length=100)


class DemoApp(FastAPI):
    """FastAPI with metrics and faults as the outermost layers, outside even the 500 handler.

    Outermost so that requests answered by a fault or failed by an error are still counted, and so
    that an `abort` fault still reaches the server's transport (see probes.faults.asgi).
    """

    fault_store: FaultStore
    http_metrics: HttpMetrics
    registry: CollectorRegistry

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        return MetricsMiddleware(FaultMiddleware(inner, self.fault_store), self.http_metrics, self.router.routes)


def create_app(
    admin_token: str | None = None,
    *,
    store: FaultStore | None = None,
    catalogue: Catalogue | None = None,
) -> DemoApp:
    """The demo API; `admin_token` turns the fault API on (without one, /-/faults is 404)."""
    app = DemoApp(title="probe-agent demo search API", version=__version__)
    app.fault_store = store if store is not None else FaultStore()
    app.registry = CollectorRegistry()
    app.http_metrics = HttpMetrics(app.registry)
    products = catalogue if catalogue is not None else default_catalogue()
    tokens = TokenIssuer()

    def check_bearer(request: Request) -> None:
        # No header is fine (a public API); a header must carry a token this API issued.
        header = request.headers.get("authorization")
        if header is None:
            return
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or tokens.user_of(token.strip()) is None:
            raise HTTPException(401, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/")
    async def index() -> dict[str, Any]:
        return {
            "name": "probe-agent demo search API",
            "endpoints": ["/api/search?q=laptop", "/api/items/{id}", "/api/categories", "/health",
                          "/health/live", "/health/ready", "/auth/token", "/metrics"],
        }

    @app.get("/api/search")
    async def search(
        request: Request,
        q: str = Query("", max_length=200),
        limit: int = Query(10, ge=1, le=100),
        offset: int = Query(0, ge=0, le=10_000),
        category: str | None = Query(None, max_length=50),
    ) -> dict[str, Any]:
        check_bearer(request)
        start = time.perf_counter()
        result = products.search(q, limit=limit, offset=offset, category=category)
        took_ms = round((time.perf_counter() - start) * 1000, 3)
        hits = [
            {"id": hit.item.id, "title": hit.item.title, "score": hit.score,
             "category": hit.item.category, "price": hit.item.price}
            for hit in result.hits
        ]
        return {"total": result.total, "took_ms": took_ms, "hits": hits}

    @app.get("/api/items/{id}")
    async def item(request: Request, id: str) -> dict[str, Any]:
        check_bearer(request)
        found = products.by_id.get(id)
        if found is None:
            raise HTTPException(404, f"no item {id!r}")
        return found.to_json()

    @app.get("/api/categories")
    async def categories(request: Request) -> dict[str, Any]:
        check_bearer(request)
        return {"categories": [{"name": name, "count": count} for name, count in sorted(products.categories.items())]}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "healthy",
            "components": [{"name": "catalogue", "status": "healthy"}, {"name": "index", "status": "healthy"}],
        }

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        # An `unready` fault answers this route before it runs: 503 {"status": "not_ready"}.
        return {"status": "ready"}

    @app.post("/auth/token")
    async def issue_token(body: TokenRequest) -> dict[str, Any]:
        return {"access_token": tokens.issue(body.user), "token_type": "bearer", "expires_in": TOKEN_LIFETIME}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(app.registry), media_type=CONTENT_TYPE_LATEST)

    install_fault_api(app, app.fault_store, admin_token)

    return app
