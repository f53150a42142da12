"""The agent as a long-running process: web server, signals (SIGHUP reloads), clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence

from probes.agent.agent import Agent
from probes.asgi_server import AsgiServer, split_host_port, start_server
from probes.web.app import create_app
from probes.web.plugins import WebPlugin

log = logging.getLogger(__name__)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@contextlib.asynccontextmanager
async def running_agent(agent: Agent, *, fallback_to_free_port: bool = False,
                        plugins: Sequence[WebPlugin] = ()) -> AsyncIterator[AsgiServer]:
    """The agent probing on schedule and serving its web endpoints (and its plugins'), until the block ends."""
    split_host_port(agent.listen)  # a bad address is a usage error before anything starts
    await agent.start()
    server: AsgiServer | None = None
    try:
        routes = [route for plugin in plugins for route in plugin.routes()]
        server = await start_server(create_app(agent, routes), agent.listen,
                                    fallback_to_free_port=fallback_to_free_port)
        print(f"probe-agent: agent listening on {server.url}", flush=True)
        yield server
    finally:
        if server is not None:
            await server.stop()
        for plugin in plugins:
            await plugin.aclose()
        await agent.stop()


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def serve(agent: Agent, plugins: Sequence[WebPlugin] = ()) -> int:
    stop = asyncio.Event()
    install_stop_signals(stop)
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[tuple[bool, str]]] = set()

    def on_sighup() -> None:
        task = loop.create_task(agent.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    async with running_agent(agent, plugins=plugins):
        log.info("probing %d probes as region=%s agent=%s", len(agent.probers()), agent.identity.region,
                 agent.identity.agent)
        await stop.wait()
    return 0
