"""The agent's HTTP server: /metrics, / (status page), /probes/NAME (history and debug record, `?debug=true`
as text), POST /probes/NAME/run, /-/healthy, /-/ready, POST /-/reload, /api/results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from probes.web.debug_text import debug_text
from probes.web.probe_page import DEFAULT_REFRESH as PROBE_REFRESH
from probes.web.probe_page import render_probe_page
from probes.web.status_page import DEFAULT_REFRESH as STATUS_REFRESH
from probes.web.status_page import render_status_page
from probes.web.view import AgentView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def metrics_body(agent: AgentView) -> AsyncIterator[bytes]:
    """/metrics piece by piece, yielding to the event loop between pieces: with 10,000 probes the whole
    text is tens of megabytes, and joining it in one go would stall every probe run for that long."""
    # prometheus-client renders its registry in one call; a thread lets the loop run meanwhile (the GIL is
    # handed over every few ms), which matters once thousands of probes have a missed-runs series.
    yield await asyncio.to_thread(generate_latest, agent.metrics.registry)
    for chunk in agent.prometheus.chunks():
        await asyncio.sleep(0)
        if chunk:  # an empty piece would end a chunked response
            yield chunk.encode()


def _refresh(request: Request, default: int) -> int:
    """`?refresh=N` seconds (0: never) for a wall screen or a test; anything odd falls back to the default."""
    try:
        return max(0, min(3600, int(request.query_params.get("refresh", default))))
    except ValueError:
        return default


class Lifecycle(Protocol):
    @property
    def ready(self) -> bool: ...

    async def reload(self) -> tuple[bool, str]: ...


def lifecycle_routes(agent: Lifecycle) -> list[Route]:
    """/-/healthy, /-/ready and POST /-/reload, the same for a one-process agent and a multi-process one."""

    async def healthy(request: Request) -> Response:
        return PlainTextResponse("probe-agent is healthy.\n")

    async def ready(request: Request) -> Response:
        if agent.ready:
            return PlainTextResponse("probe-agent is ready.\n")
        return PlainTextResponse("probe-agent is not ready.\n", status_code=503)

    async def reload(request: Request) -> Response:
        ok, message = await agent.reload()
        return JSONResponse({"status": "success" if ok else "error", "message": message},
                            status_code=200 if ok else 500)

    return [
        Route("/-/healthy", healthy, methods=["GET", "HEAD"]),
        Route("/-/ready", ready, methods=["GET", "HEAD"]),
        Route("/-/reload", reload, methods=["POST", "PUT"]),
    ]


def create_app(agent: AgentView, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    async def metrics(request: Request) -> Response:
        return StreamingResponse(metrics_body(agent), media_type=CONTENT_TYPE)

    async def results(request: Request) -> Response:
        where = {"region": agent.identity.region, "agent": agent.identity.agent}  # for `probe-agent diff`
        return JSONResponse([{**r.to_dict(), **where} for r in agent.latest.values()])

    async def index(request: Request) -> Response:
        return HTMLResponse(render_status_page(agent, refresh=_refresh(request, STATUS_REFRESH)))

    async def probe_page(request: Request) -> Response:
        name = request.path_params["name"]
        prober = agent.probers().get(name)
        history = agent.probe_history(name)
        if prober is None or history is None:
            return PlainTextResponse(f"unknown probe {name!r}\n", status_code=404)
        if request.query_params.get("debug", "").lower() in ("true", "1", "yes"):
            return PlainTextResponse(debug_text(name, prober.config.type, prober.config.target(), history,
                                                time.time()))
        return HTMLResponse(render_probe_page(agent, prober, history, refresh=_refresh(request, PROBE_REFRESH)))

    async def run_now(request: Request) -> Response:
        name = request.path_params["name"]
        result = await agent.run_probe_now(name)
        if result is None:
            return JSONResponse({"error": f"unknown probe {name!r}"}, status_code=404)
        return JSONResponse(result.to_dict())

    return Starlette(routes=[
        Route("/", index),
        Route("/metrics", metrics),
        *lifecycle_routes(agent),
        Route("/api/results", results),
        Route("/probes/{name}", probe_page),
        Route("/probes/{name}/run", run_now, methods=["POST"]),
        *extra_routes,
    ])
