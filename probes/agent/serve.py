"""The agent as a long-running process: web server, signals (SIGHUP reloads), graceful shutdown.

SIGTERM or SIGINT stops scheduling and lets the probes already running finish for up to
`agent.shutdown_grace`, so their results reach the sinks, which then flush; the exit code is 0. A second
signal exits at once: an operator who presses Ctrl-C twice means it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence

from probes.agent.agent import Agent
from probes.asgi_server import AsgiServer, WebSecurity, split_host_port, start_server
from probes.log_format import setup_logging
from probes.plural import count
from probes.web.app import create_app
from probes.web.plugins import WebPlugin

log = logging.getLogger(__name__)

__all__ = ["install_stop_signals", "running_agent", "serve", "setup_logging"]


@contextlib.asynccontextmanager
async def running_agent(agent: Agent, *, fallback_to_free_port: bool = False,
                        security: WebSecurity | None = None,
                        plugins: Sequence[WebPlugin] = ()) -> AsyncIterator[AsgiServer]:
    """The agent probing on schedule and serving its web endpoints (and its plugins'), until the block ends;
    then probes in flight get `agent.shutdown_grace` to finish and the sinks flush."""
    split_host_port(agent.listen)  # a bad address is a usage error before anything starts
    await agent.start()
    server: AsgiServer | None = None
    try:
        routes = [route for plugin in plugins for route in plugin.routes()]
        server = await start_server(create_app(agent, routes), agent.listen,
                                    fallback_to_free_port=fallback_to_free_port, security=security)
        print(f"probe-agent: agent listening on {server.url}", flush=True)
        yield server
    finally:
        if server is not None:
            await server.stop()
        for plugin in plugins:
            await plugin.aclose()
        await agent.stop(agent.config.agent.shutdown_grace)


def install_stop_signals(stop: asyncio.Event) -> None:
    """The first SIGINT/SIGTERM sets `stop`; a second one ends the process at once."""
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            os._exit(128 + sig.value)
        log.info("received %s: stopping (again to exit at once)", sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


async def serve(agent: Agent, security: WebSecurity | None = None, plugins: Sequence[WebPlugin] = ()) -> int:
    stop = asyncio.Event()
    install_stop_signals(stop)
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[tuple[bool, str]]] = set()

    def on_sighup() -> None:
        task = loop.create_task(agent.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    async with running_agent(agent, security=security, plugins=plugins):
        log.info("probing %s as region=%s agent=%s", count(len(agent.probers()), "probe"),
                 agent.identity.region, agent.identity.agent)
        await stop.wait()
    log.info("stopped")
    return 0
