"""The agent process of `run --processes N`: it runs no probes; it keeps the N workers running (a worker
that exits is started again, counted in `probe_agent_worker_restarts_total`) and is the agent to the
outside: /metrics is the workers' complete texts merged (see metrics_merge), /api/results their results
joined, the status page is drawn from those, a probe's own pages go to the worker that runs it, and a
reload (POST /-/reload, SIGHUP) goes to every worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from probes.agent import metrics_merge
from probes.agent.agent import Overrides, resolve_identity
from probes.agent.config_file import AgentConfig, load_config
from probes.agent.history import ProbeHistory
from probes.agent.workers import WorkerProcess, worker_argv, worker_index
from probes.asgi_server import split_host_port, start_server
from probes.config import yamlfile
from probes.errors import CannotRun, ConfigError
from probes.identity import AgentIdentity
from probes.probers import Prober, build_prober
from probes.result import ProbeResult, Sample, StepResult
from probes.web.app import CONTENT_TYPE, lifecycle_routes
from probes.web.status_page import render_status_page

log = logging.getLogger(__name__)

RESTART_DELAYS = (0.2, 0.5, 1.0, 2.0)
"""Pause before restarting a worker that exited, longer while it keeps exiting (still within 5 s)."""
STABLE_AFTER = 30.0
"""A worker that ran this long before exiting starts again after the shortest pause."""
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=8.0, connect=2.0)


class SupervisorMetrics:
    def __init__(self, identity: AgentIdentity, count: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        labels = ["region", "agent"]
        values = (identity.region, identity.agent)
        Gauge("probe_agent_workers", "Worker processes the agent runs (agent.processes).", labels,
              registry=self.registry).labels(*values).set(count)
        self.workers_up = Gauge(
            "probe_agent_workers_up", "Worker processes whose metrics this scrape includes.", labels,
            registry=self.registry).labels(*values)
        self.restarts = Counter(
            "probe_agent_worker_restarts_total", "Worker processes started again after they exited.", labels,
            registry=self.registry).labels(*values)


def result_from_dict(data: dict[str, Any]) -> ProbeResult:
    """A worker's /api/results entry back into a ProbeResult, for the status page."""
    steps = data.get("steps")
    return ProbeResult(
        probe=data["probe"], type=data["type"], success=data["success"], duration_seconds=data["duration_seconds"],
        reason=data.get("reason"), message=data.get("message", ""), degraded=data.get("degraded", False),
        started_at=data.get("started_at", 0.0), status_code=data.get("status_code", 0), phases=data.get("phases"),
        cert_expiry=data.get("cert_expiry"), attempts=data.get("attempts", 1), target=data.get("target", ""),
        details=data.get("details", {}),
        steps=None if steps is None else [
            StepResult(s["step"], s["success"], s["duration_seconds"], s.get("reason"), s.get("message", ""),
                       s.get("degraded", False), s.get("status_code", 0), s.get("optional", False))
            for s in steps],
        samples=[Sample(s["name"], s["value"], tuple(s.get("labels", {}).items())) for s in data.get("samples", [])],
    )


class _NoText:
    """The supervisor renders no probe series itself (AgentView wants a `prometheus`)."""

    def render(self) -> str:
        return ""

    def chunks(self) -> Iterator[str]:
        return iter(())


class Supervisor:
    """The agent process with N workers; also the AgentView of the status page."""

    def __init__(self, config_path: str, config: AgentConfig, overrides: Overrides, count: int,
                 argv: Sequence[str], *, count_from_flag: bool = False) -> None:
        self.config_path = config_path
        self.count_from_flag = count_from_flag
        """--processes was given: agent.processes in the file does not matter."""
        self.config = config
        self.overrides = overrides
        self.count = count
        self.identity = resolve_identity(config, overrides)
        self.metrics = SupervisorMetrics(self.identity, count)
        self.prometheus = _NoText()
        self.latest: dict[str, ProbeResult] = {}
        self._seen: dict[str, ProbeHistory] = {}
        self.last_reload_error: str | None = None
        self.ready = False
        self.workers = [WorkerProcess(i, worker_argv(argv, i, count)) for i in range(count)]
        self._probers = self._build_probers(config)
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._session: aiohttp.ClientSession | None = None
        self._reload_lock = asyncio.Lock()

    @staticmethod
    def _build_probers(config: AgentConfig) -> dict[str, Prober]:
        # Built only to describe the probes on the status page (cheap: no client, no connection).
        return {p.name: build_prober(p) for p in config.probes}

    @property
    def listen(self) -> str:
        return self.overrides.listen or self.config.agent.listen

    def probers(self) -> dict[str, Prober]:
        return dict(self._probers)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=FETCH_TIMEOUT)
        return self._session

    async def start(self) -> None:
        started = await asyncio.gather(*(w.start() for w in self.workers), return_exceptions=True)
        failed = [exc for exc in started if isinstance(exc, BaseException)]
        if failed:
            await self.stop()
            raise failed[0]
        self._watchers = [asyncio.create_task(self._watch(w)) for w in self.workers]
        self.ready = True

    async def _watch(self, worker: WorkerProcess) -> None:
        failures = 0
        while not self._stopping:
            code = await worker.wait()
            if self._stopping:
                return
            worker.url = None
            ran = time.monotonic() - worker.started_at
            failures = 0 if ran > STABLE_AFTER else failures + 1
            delay = RESTART_DELAYS[min(max(failures - 1, 0), len(RESTART_DELAYS) - 1)]
            log.warning("worker %d exited with code %s after %.0fs; starting it again in %gs",
                        worker.index, code, ran, delay)
            await asyncio.sleep(delay)
            while not self._stopping:
                try:
                    await worker.start()
                except CannotRun as exc:
                    log.error("%s; trying again", exc)
                    await asyncio.sleep(RESTART_DELAYS[-1])
                    continue
                self.metrics.restarts.inc()
                break

    async def stop(self) -> None:
        self._stopping = True
        self.ready = False
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # --------------------------------------------------------------------------------- fan-out

    async def _get(self, worker: WorkerProcess, path: str) -> bytes | None:
        """A worker's complete answer, or None if it is down or answered only in part."""
        url = worker.url
        if url is None:
            return None
        try:
            async with self.session.get(url + path) as resp:
                if resp.status != 200:
                    return None
                return await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.debug("worker %d: GET %s failed: %s", worker.index, path, exc)
            return None

    async def _all(self, path: str) -> list[bytes]:
        answers = await asyncio.gather(*(self._get(w, path) for w in self.workers))
        return [a for a in answers if a is not None]

    async def _metrics_of(self, worker: WorkerProcess) -> metrics_merge.Exposition | None:
        """A worker's complete /metrics, read piece by piece, or None if it is down or answered only in part."""
        if worker.url is None:
            return None
        exposition = metrics_merge.Exposition()
        try:
            async with self.session.get(worker.url + "/metrics") as resp:
                if resp.status != 200:
                    return None
                async for piece in resp.content.iter_any():
                    exposition.feed(piece)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.debug("worker %d: GET /metrics failed: %s", worker.index, exc)
            return None
        return exposition

    async def metrics_body(self) -> AsyncIterator[bytes | memoryview]:
        answers = await asyncio.gather(*(self._metrics_of(w) for w in self.workers))
        texts = [a for a in answers if a is not None]
        self.metrics.workers_up.set(len(texts))
        yield generate_latest(self.metrics.registry)
        # A reload this process refused (agent.processes changed) fails the reload gauge like the workers' do.
        caps = {} if self.last_reload_error is None else {"probe_agent_config_reload_success": 0.0}
        for piece in metrics_merge.merge(texts, caps):
            await asyncio.sleep(0)
            yield piece

    async def results_body(self) -> bytes:
        parts = [inner for text in await self._all("/api/results") if (inner := text.strip()[1:-1].strip())]
        return b"[" + b",".join(parts) + b"]"

    def probe_history(self, name: str) -> ProbeHistory | None:
        # The workers keep the full histories; here, each run the page has seen (enough for the state,
        # time in state and a ratio over what was seen).
        return self._seen.get(name)

    async def run_probe_now(self, name: str) -> None:
        # "Run now" needs the worker that owns the probe; in multi-process mode it is not offered.
        return None

    async def refresh_latest(self) -> None:
        self.latest = {r["probe"]: result_from_dict(r) for r in json.loads(await self.results_body())}
        for result in self.latest.values():
            history = self._seen.setdefault(result.probe, ProbeHistory(self.config.agent.history))
            if history.last is None or history.last.started_at != result.started_at:
                history.add(result)

    async def reload(self) -> tuple[bool, str]:
        """Check the file here (for this process's view), then have every worker load it."""
        async with self._reload_lock:
            problems: list[str] = []
            try:
                # In a thread: 10,000 probes take a second or more to load, and scrapes go on meanwhile.
                config = await asyncio.to_thread(load_config, self.config_path)
            except ConfigError as exc:
                # The workers load the same file and keep their running config, saying so in their metrics.
                problems.append(str(exc))
            else:
                if config.agent.processes != self.count and not self.count_from_flag:
                    doc = await asyncio.to_thread(yamlfile.read, self.config_path)
                    problems.append(doc.error(("agent", "processes"), f"changed from {self.count} to "
                                              f"{config.agent.processes}; restart the agent to apply it"))
                self.config = config
                self._probers = self._build_probers(config)
            answers = await asyncio.gather(*(self._reload_worker(w) for w in self.workers))
            problems += [message for ok, message in answers if not ok and message not in problems]
            self.last_reload_error = "\n".join(problems) or None
            if problems:
                log.error("reload failed:\n%s", self.last_reload_error)
                return False, self.last_reload_error or ""
            log.info("reloaded %s: %d probes in %d workers", self.config_path, len(self._probers), self.count)
            return True, f"reloaded: {len(self._probers)} probes in {self.count} workers"

    async def _reload_worker(self, worker: WorkerProcess) -> tuple[bool, str]:
        if worker.url is None:
            return True, ""  # restarting: it reads the current file as it starts
        try:
            async with self.session.post(worker.url + "/-/reload") as resp:
                answer = await resp.json(content_type=None)
                return resp.status == 200, str(answer.get("message", ""))
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return False, f"worker {worker.index} did not answer the reload: {exc}"

    async def forward(self, request: Request, name: str) -> Response:
        """A probe's own page or action, answered by the worker that runs the probe."""
        worker = self.workers[worker_index(name, self.count)]
        if worker.url is None:
            return PlainTextResponse(f"the worker running {name} is restarting; try again\n", status_code=503)
        target = worker.url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            async with self.session.request(request.method, target, data=await request.body(),
                                            headers={"Accept": request.headers.get("accept", "*/*")}) as resp:
                body = await resp.read()
                return Response(body, status_code=resp.status, media_type=resp.headers.get("Content-Type"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return PlainTextResponse(f"the worker running {name} did not answer: {exc}\n", status_code=502)


def create_supervisor_app(sup: Supervisor) -> Starlette:
    async def metrics(request: Request) -> Response:
        return StreamingResponse(sup.metrics_body(), media_type=CONTENT_TYPE)

    async def results(request: Request) -> Response:
        return Response(await sup.results_body(), media_type="application/json")

    async def index(request: Request) -> Response:
        await sup.refresh_latest()
        return HTMLResponse(render_status_page(sup))

    async def probe_page(request: Request) -> Response:
        return await sup.forward(request, request.path_params["name"])

    return Starlette(routes=[
        Route("/", index),
        Route("/metrics", metrics),
        *lifecycle_routes(sup),
        Route("/api/results", results),
        Route("/probes/{name}", probe_page, methods=["GET", "POST"]),
        Route("/probes/{name}/{rest:path}", probe_page, methods=["GET", "POST"]),
    ])


async def supervise(sup: Supervisor) -> int:
    """Serve the one web endpoint and keep the workers running until SIGINT or SIGTERM."""
    split_host_port(sup.listen)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[tuple[bool, str]]] = set()

    def on_sighup() -> None:
        task = loop.create_task(sup.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    # Listen first: a taken port is an error before N interpreters load the config.
    server = await start_server(create_supervisor_app(sup), sup.listen)
    try:
        await sup.start()
        print(f"probe-agent: agent listening on {server.url}", flush=True)
        log.info("probing %d probes in %d worker processes as region=%s agent=%s", len(sup.probers()), sup.count,
                 sup.identity.region, sup.identity.agent)
        await stop.wait()
    finally:
        await server.stop()
        await sup.stop()
    return 0
