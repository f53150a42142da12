"""The fault-injecting reverse proxy: streams requests to one upstream, applying active faults.

aiohttp on both sides (its low-level server, one shared ClientSession with keep-alive to the upstream):
with no fault active the proxy must add well under a millisecond. Bodies are streamed chunk by chunk
in both directions, never buffered whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry, Counter, Gauge
from yarl import URL

from probes.faults.apply import FAULT_HEADER, fault_response, hold, reset_connection, rewritten
from probes.faults.store import NO_FAULT, ActiveFault, FaultStore

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
     "te", "trailer", "trailers", "transfer-encoding", "upgrade"}
)
SMALL_BODY = 64 * 1024  # answers up to this size are read whole; larger ones stream chunk by chunk
REWRITE_MAX_BODY = 4 * 1024 * 1024  # a `rewrite` fault edits answers up to this size; larger ones pass
OUTCOMES = ("forwarded", "latency", "error", "abort", "timeout", "unready", "rewrite", "upstream_error")


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry, store: FaultStore) -> None:
        requests = Counter(
            "probe_proxy_requests_total",
            "Requests through the fault proxy by outcome: forwarded, a fault type, or upstream_error.",
            ["outcome"],
            registry=registry,
        )
        # Bound once: a labels() lookup per request is measurable at proxy rates.
        self.by_outcome = {outcome: requests.labels(outcome) for outcome in OUTCOMES}
        active = Gauge("probe_proxy_active_faults", "Faults active in the proxy now.", registry=registry)
        active.set_function(lambda: len(store))

    def count(self, outcome: str) -> None:
        self.by_outcome[outcome].inc()


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        store: FaultStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        metrics: ProxyMetrics | None = None,
        connect_timeout: float = 10.0,
        max_connections: int = 1000,
    ) -> None:
        base = URL(upstream)
        self._base = str(base.with_query(None).with_fragment(None)).rstrip("/")
        self._upstream_host = base.raw_host or ""
        self.store = store
        self.host = host
        self.port = port
        self._metrics = metrics
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self._held: set[asyncio.Task[object]] = set()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            # Idle upstream connections are dropped before common servers drop them (uvicorn: 5 s), so a
            # request is rarely sent on a connection the upstream is closing (a spurious 502 for a POST).
            connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=60, keepalive_timeout=4.0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
            auto_decompress=False,  # pass bytes through exactly as the upstream encoded them
            cookie_jar=aiohttp.DummyCookieJar(),
            # Add nothing the client did not send: no User-Agent, and no Accept-Encoding that would
            # make the upstream compress for a client that cannot decode.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )
        # handler_cancellation: a client that gives up cancels its handler, and so the upstream call.
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        # Requests held by a `timeout` fault must not delay a shutdown by the default minute.
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            from probes.asgi_server import cannot_listen

            raise cannot_listen(self.host, self.port, exc) from None
        address = self._runner.addresses[0]
        self.port = int(address[1])

    async def stop(self) -> None:
        for task in list(self._held):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        decision = self.store.decide(request.method, request.path, request.headers)
        if decision is NO_FAULT:
            return await self._forward(request, "forwarded")
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)
        active = decision.terminal
        if active is None:
            outcome = "latency" if decision.latency_fault is not None else "rewrite"
            return await self._forward(request, outcome, decision.rewrites)
        kind = active.fault.type
        self._count(kind)
        if kind in ("error", "unready"):
            return _fault_answer(active)
        if kind == "abort":
            reset_connection(request.transport)
            # The connection is gone; aiohttp cancels this handler as it notices.
            raise asyncio.CancelledError
        client_gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Held until the fault goes away; a client that gives up cancels this handler meanwhile,
        # and so does a shutdown (see stop), which must not wait for a fault's TTL.
        task = asyncio.current_task()
        if task is not None:
            self._held.add(task)
        try:
            await hold(self.store, active, client_gone)
        finally:
            if task is not None:
                self._held.discard(task)
        return await self._forward(request, None, decision.rewrites)

    async def _forward(self, request: web.BaseRequest, outcome: str | None,
                       rewrites: tuple[ActiveFault, ...] = ()) -> web.StreamResponse:
        assert self._session is not None
        url = URL(self._base + request.raw_path, encoded=True)
        if request.body_exists and request.headers.get("Expect", "").lower() == "100-continue":
            # Answer it here, as aiohttp's router would: a client waiting for a 100 that the upstream
            # (which never sees the Expect) will not send would stall for a second before the body.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            upstream = await self._session.request(
                request.method,
                url,
                headers=_forward_headers(request.headers.items(), request),
                data=request.content if request.body_exists else None,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._count("upstream_error")
            return _bad_gateway(exc)
        self._count(outcome)
        try:
            headers: CIMultiDict[str] = CIMultiDict()
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    headers.add(name, value)
            _drop_connection_listed(headers, upstream.headers.getall("Connection", ()))
            length = upstream.content_length
            if rewrites and request.method != "HEAD" and (length is None or length <= REWRITE_MAX_BODY):
                return await self._rewrite(request, upstream, headers, rewrites)
            if length is not None and length <= SMALL_BODY and request.method != "HEAD":
                # Most API answers are small: one read and one write (status line, headers and body in
                # one send) cost noticeably less than the streaming path's several.
                body = await upstream.read()
                return web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=body)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
        except (TimeoutError, aiohttp.ClientError, OSError):
            # Mid-body failure: the status line is gone already, so cut the client off rather than
            # let a truncated body look complete.
            reset_connection(request.transport)
            raise asyncio.CancelledError from None
        finally:
            upstream.release()

    async def _rewrite(self, request: web.BaseRequest, upstream: aiohttp.ClientResponse,
                       headers: CIMultiDict[str], rewrites: tuple[ActiveFault, ...]) -> web.StreamResponse:
        try:
            body = await upstream.content.readexactly(REWRITE_MAX_BODY + 1)
        except asyncio.IncompleteReadError as end:
            body = end.partial  # the whole answer: it is within the limit
        else:  # too large to edit: send it on as it came
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
            await response.prepare(request)
            await response.write(body)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
        edited = rewritten(body, upstream.headers.get("Content-Encoding"), rewrites)
        if edited is not None:
            body = edited
            headers.popall("Content-Length", None)
            headers.popall("ETag", None)  # a validator of the original bytes
            headers[FAULT_HEADER] = ",".join(active.id for active in rewrites)
        return web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=body)

    def _count(self, outcome: str | None) -> None:
        if self._metrics is not None and outcome is not None:
            self._metrics.count(outcome)


def _forward_headers(items: Iterable[tuple[str, str]], request: web.BaseRequest) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    connection_listed: list[str] = []
    original_host = None
    for name, value in items:
        lower = name.lower()
        if lower == "host":
            original_host = value
        elif lower == "expect":
            continue  # answered by the proxy itself
        elif lower == "connection":
            connection_listed.append(value)
        elif lower not in HOP_BY_HOP:
            headers.add(name, value)
    _drop_connection_listed(headers, connection_listed)
    peer = request.remote
    if peer:
        prior = headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    if original_host and "X-Forwarded-Host" not in headers:
        headers["X-Forwarded-Host"] = original_host
    headers.setdefault("X-Forwarded-Proto", request.scheme)
    return headers


def _drop_connection_listed(headers: CIMultiDict[str], connection_values: Iterable[str]) -> None:
    # Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
    for value in connection_values:
        for name in value.split(","):
            with contextlib.suppress(KeyError):
                del headers[name.strip()]


def _fault_answer(active: ActiveFault) -> web.Response:
    status, body, content_type = fault_response(active)
    response = web.Response(status=status, body=body, headers={FAULT_HEADER: active.id})
    response.content_type = content_type.split(";")[0]
    if "charset=" in content_type:
        response.charset = content_type.split("charset=")[1]
    return response


def _bad_gateway(exc: BaseException) -> web.Response:
    status = 504 if isinstance(exc, TimeoutError) else 502
    detail = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
    body = json.dumps({"error": "upstream unreachable" if status == 502 else "upstream timed out",
                       "detail": detail})
    return web.Response(status=status, text=body, content_type="application/json")
