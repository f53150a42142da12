"""Helpers for fault tests: in-process demo target and fault proxy on 127.0.0.1 port 0 (served from a
background event loop), a test upstream with streaming and gated endpoints, and a fault API client."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry

from tests.support.httpserver import BackgroundLoop

TOKEN = "s3cret-token"


class FaultClient:
    """The fault API as a drill uses it, with assertions on the status codes of the contract."""

    def __init__(self, control_url: str, token: str = TOKEN) -> None:
        self.url = f"{control_url}/-/faults"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(timeout=5)  # one client: building one per call costs ~50 ms

    def add(self, **spec: Any) -> str:
        response = self.http.post(self.url, json=spec, headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def list(self) -> list[dict[str, Any]]:
        response = self.http.get(self.url, headers=self.headers)
        assert response.status_code == 200, response.text
        faults: list[dict[str, Any]] = response.json()["faults"]
        return faults

    def delete(self, fault_id: str) -> int:
        return self.http.delete(f"{self.url}/{fault_id}", headers=self.headers).status_code

    def clear(self) -> None:
        assert self.http.delete(self.url, headers=self.headers).status_code == 200

    def close(self) -> None:
        self.http.close()


@dataclass
class Target:
    url: str
    faults: FaultClient
    http: httpx.Client  # base_url = url


@contextlib.contextmanager
def running_target(token: str | None = TOKEN) -> Iterator[Target]:
    """The demo search API in this process, served by uvicorn on a free port."""
    from probes.asgi_server import AsgiServer
    from probes.demo.app import create_app

    loop = BackgroundLoop()
    server = AsgiServer(create_app(admin_token=token), "127.0.0.1", 0)
    try:
        loop.call(server.start())
        with httpx.Client(base_url=server.url, timeout=5) as http:
            faults = FaultClient(server.url, token or "")
            try:
                yield Target(server.url, faults, http)
            finally:
                faults.close()
    finally:
        with contextlib.suppress(Exception):
            loop.call(server.stop())
        loop.close()


@dataclass
class Proxy:
    url: str
    control_url: str
    faults: FaultClient
    http: httpx.Client  # base_url = url


@contextlib.contextmanager
def running_proxy(upstream: str, token: str | None = TOKEN) -> Iterator[Proxy]:
    """The fault proxy and its control listener in this process, as `probe-agent proxy` wires them."""
    from probes.asgi_server import AsgiServer
    from probes.faults.proxy import FaultProxy, ProxyMetrics
    from probes.faults.proxy_control import create_control_app
    from probes.faults.store import FaultStore

    loop = BackgroundLoop()
    store = FaultStore()
    registry = CollectorRegistry()
    proxy = FaultProxy(upstream, store, metrics=ProxyMetrics(registry, store))
    control = AsgiServer(create_control_app(store, token, registry), "127.0.0.1", 0)
    try:
        loop.call(proxy.start())
        loop.call(control.start())
        with httpx.Client(base_url=proxy.url, timeout=5) as http:
            faults = FaultClient(control.url, token or "")
            try:
                yield Proxy(proxy.url, control.url, faults, http)
            finally:
                faults.close()
    finally:
        with contextlib.suppress(Exception):
            loop.call(control.stop())
        with contextlib.suppress(Exception):
            loop.call(proxy.stop())
        loop.close()


def big_body(size: int) -> bytes:
    """Deterministic, not compressible by accident of repetition at chunk boundaries."""
    block = hashlib.sha256(b"probe-agent").digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


@dataclass
class Upstream:
    """A test upstream. `gate` holds /gated after its first chunk; `upload_seen` is set when /upload-gated
    received its first request chunk (both let a test prove the proxy streams instead of buffering)."""

    url: str = ""
    gate: threading.Event = field(default_factory=threading.Event)
    upload_seen: threading.Event = field(default_factory=threading.Event)
    requests: list[dict[str, Any]] = field(default_factory=list)


def _upstream_app(state: Upstream) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        digest, length = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            length += len(chunk)
        record = {
            "method": request.method,
            "path_qs": request.raw_path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body_sha256": digest.hexdigest(),
            "body_length": length,
        }
        state.requests.append(record)
        response = web.json_response(record, status=int(request.query.get("status", "200")))
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        response.headers["X-Upstream"] = "yes"
        return response

    async def big(request: web.Request) -> web.StreamResponse:
        size = int(request.query["bytes"])
        response = web.StreamResponse()
        response.content_length = size
        await response.prepare(request)
        data = big_body(size)
        view = memoryview(data)
        for start in range(0, size, 256 * 1024):
            await response.write(view[start : start + 256 * 1024])
        await response.write_eof()
        return response

    async def gated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no length: chunked, as a streaming upstream would send
        await response.prepare(request)
        await response.write(b"first chunk\n")
        # The gate is a threading.Event set by the test thread; wait for it off the loop.
        await asyncio.to_thread(state.gate.wait, 30)
        await response.write(b"second chunk\n")
        await response.write_eof()
        return response

    async def upload_gated(request: web.Request) -> web.Response:
        first = await request.content.readany()
        state.upload_seen.set()
        rest = await request.read()
        return web.json_response({"first": first.decode(), "total": len(first) + len(rest)})

    async def broken(request: web.Request) -> web.StreamResponse:
        # Promise 1 MB, send 1 KB, then drop the connection.
        response = web.StreamResponse()
        response.content_length = 1024 * 1024
        await response.prepare(request)
        await response.write(b"x" * 1024)
        assert request.transport is not None
        request.transport.close()
        return response

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def live(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def search(request: web.Request) -> web.Response:
        return web.json_response({"total": 1, "hits": [{"id": "sku-00042"}]})

    app = web.Application()
    app.router.add_route("*", "/echo{tail:.*}", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/gated", gated)
    app.router.add_post("/upload-gated", upload_gated)
    app.router.add_get("/broken", broken)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/health/live", live)
    app.router.add_get("/api/search", search)
    return app


@contextlib.contextmanager
def running_upstream() -> Iterator[Upstream]:
    state = Upstream()
    loop = BackgroundLoop()
    runner = web.AppRunner(_upstream_app(state), access_log=None, handle_signals=False)

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    try:
        state.url = loop.call(start())
        yield state
    finally:
        state.gate.set()
        with contextlib.suppress(Exception):
            loop.call(runner.cleanup())
        loop.close()


def raw_get(url: str, path: str, timeout: float = 5) -> bytes:
    """One HTTP/1.1 request on a plain socket; returns what arrived before the server closed.

    Raises ConnectionResetError when the server resets the connection (an `abort` fault).
    """
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def timed_get(client: httpx.Client, url: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    response = client.get(url, **kwargs)
    return response, time.perf_counter() - start
