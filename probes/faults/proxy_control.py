"""The proxy's control listener: the fault API and the proxy's own /metrics."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from probes import __version__
from probes.faults.api import install_fault_api
from probes.faults.store import FaultStore


def create_control_app(store: FaultStore, token: str | None, registry: CollectorRegistry) -> FastAPI:
    app = FastAPI(title="probe-agent fault proxy control", version=__version__, docs_url=None, redoc_url=None)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/-/healthy")
    async def healthy() -> dict[str, str]:
        return {"status": "healthy"}

    install_fault_api(app, store, token)
    return app
