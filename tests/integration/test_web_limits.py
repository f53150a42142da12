"""A slow or greedy client cannot hold the agent's port: headers have a deadline, connections a cap,
bodies a size limit; /metrics keeps answering while 200 clients trickle their headers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from probes.asgi_server import AsgiServer, Limits
from tests.support.processes import cli, started, wait_until


class Trickle:
    """`count` connections that send a request line and then one header byte every `every` seconds."""

    def __init__(self, host: str, port: int, count: int, every: float = 0.5) -> None:
        self.sockets = [socket.create_connection((host, port), timeout=5) for _ in range(count)]
        for sock in self.sockets:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, args=(every,), daemon=True)
        self._thread.start()

    def _drip(self, every: float) -> None:
        while not self._stop.wait(every):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.send(b"X")

    def closed_by_server(self) -> int:
        closed = 0
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                closed += sock.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return closed

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.sockets:
            sock.close()


def _timed_get(url: str) -> tuple[int, float]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
            return resp.status, time.monotonic() - start
    except urllib.error.HTTPError as exc:
        return exc.code, time.monotonic() - start


@pytest.fixture
def agent_url(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "agent.yaml").write_text("probes: []\n")
    with started(cli("run", "--config", str(tmp_path / "agent.yaml"), "--listen", "127.0.0.1:0"),
                 expect=["agent"]) as agent:
        yield agent.urls["agent"]


def test_metrics_answers_within_a_second_while_200_clients_trickle_headers(agent_url: str) -> None:
    host, port = agent_url.removeprefix("http://").split(":")
    slow = Trickle(host, int(port), 200)
    try:
        for _ in range(5):
            status, took = _timed_get(agent_url + "/metrics")
            assert status == 200
            assert took < 1.0, f"/metrics took {took:.2f}s with 200 slow clients"
            time.sleep(0.5)
        # The agent's deadline for headers (10 s) closes every one of them; uvicorn alone never would.
        wait_until(lambda: slow.closed_by_server() == 200, 20, what="the server to close 200 slow clients")
    finally:
        slow.close()


def _app() -> Starlette:
    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{len(await request.body())} bytes")

    return Starlette(routes=[Route("/", echo, methods=["GET", "POST"])])


def test_connection_cap_header_deadline_and_body_limit() -> None:
    async def scenario() -> None:
        server = AsgiServer(_app(), "127.0.0.1", 0,
                            limits=Limits(max_connections=5, header_timeout=1.0, max_body_bytes=1000))
        await server.start()
        try:
            loop = asyncio.get_running_loop()
            idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(6)]
            await asyncio.sleep(0.3)
            status, _ = await loop.run_in_executor(None, _timed_get, server.url + "/")
            assert status == 503  # over the cap: refused at once, not queued
            await asyncio.sleep(1.5)  # the idle ones miss their header deadline and are closed
            status, _ = await loop.run_in_executor(None, _timed_get, server.url + "/")
            assert status == 200
            for sock in idle:
                sock.close()

            def post(size: int) -> int:
                request = urllib.request.Request(server.url + "/", data=b"x" * size, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=5) as resp:
                        return int(resp.status)
                except urllib.error.HTTPError as exc:
                    return exc.code

            assert await loop.run_in_executor(None, post, 1000) == 200
            assert await loop.run_in_executor(None, post, 1001) == 413
            # A header block over the size limit is refused too.
            big = urllib.request.Request(server.url + "/", headers={"X-Big": "a" * 20_000})
            status = await loop.run_in_executor(None, _status_or_error, big)
            assert status in (400, 431)  # 431 from us; 400 from h11 if the block came in pieces
        finally:
            await server.stop()

    asyncio.run(scenario())


def _status_or_error(request: urllib.request.Request) -> int | str:
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError):
        return "closed"
