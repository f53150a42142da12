"""Real local HTTP(S) servers for tests: an aiohttp app or an ASGI app served on 127.0.0.1, port 0, from an
event loop in a background thread, so both in-process probes and `probe-agent` subprocesses can reach it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class BackgroundLoop:
    """An event loop running in a daemon thread; `call` runs a coroutine there and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@contextlib.contextmanager
def serve_aiohttp(app: web.Application, *, ssl_context: ssl.SSLContext | None = None,
                  host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app`; yields its base URL (`https://` when given an SSL context)."""
    loop = BackgroundLoop()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    try:
        port = loop.call(start())
        yield f"{'https' if ssl_context else 'http'}://{host}:{port}"
    finally:
        with contextlib.suppress(Exception):
            loop.call(runner.cleanup())
        loop.close()


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app (e.g. the demo search API) with uvicorn; yields its base URL."""
    from probes.asgi_server import AsgiServer

    loop = BackgroundLoop()
    server = AsgiServer(app, "127.0.0.1", 0)
    try:
        loop.call(server.start())
        yield server.url
    finally:
        with contextlib.suppress(Exception):
            loop.call(server.stop())
        loop.close()


def run_agent(config_path: str, times: int = 1) -> tuple[list[list[Any]], str]:
    """Every probe of the config `times` times in this process, as `once` would, through the real Agent;
    returns each round's ProbeResults and the agent's /metrics text afterwards."""
    from probes.agent.agent import Agent, Overrides

    agent = Agent.from_file(config_path, Overrides())

    async def go() -> list[list[Any]]:
        await agent.start(schedule=False)
        try:
            return [await agent.run_once() for _ in range(times)]
        finally:
            await agent.stop()

    rounds = asyncio.run(go())
    return rounds, agent.prometheus.render()
