"""Run ASGI apps (agent web, demo target, proxy control, webhook receiver) inside the caller's event loop.

uvicorn's own signal capture is disabled: the process owner decides what SIGINT, SIGTERM and SIGHUP
mean (a drill must revert its fault first, the agent reloads on SIGHUP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import uvicorn

from probes.errors import UsageError


def split_host_port(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `[::1]:PORT` -> (host, port); raises UsageError."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise UsageError(f"invalid listen address {text!r}: expected HOST:PORT")
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"invalid port in {text!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"port out of range in {text!r}")
    return host, port


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AsgiServer:
    """One uvicorn server on host:port (port 0 picks a free one); `url` is known after `start`."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop="none",
            timeout_graceful_shutdown=2,
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                exc = self._task.exception()
                raise UsageError(f"cannot listen on {self.host}:{self.port}: {exc or 'startup failed'}")
            await asyncio.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._task, timeout=5)
        self._task = None


async def start_server(app: Any, listen: str, *, fallback_to_free_port: bool = False) -> AsgiServer:
    """Serve `app` on `listen`; with the fallback, a taken port means a free one instead of an error."""
    host, port = split_host_port(listen)
    server = AsgiServer(app, host, port)
    try:
        await server.start()
    except UsageError:
        if not fallback_to_free_port or port == 0:
            raise
        logging.getLogger(__name__).warning("%s is in use, listening on a free port instead", listen)
        server = AsgiServer(app, host, 0)
        await server.start()
    return server
