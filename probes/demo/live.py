"""`probe-agent demo`: the bundled search API and an agent probing it, with a live table of results."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
from importlib import resources

from probes.agent import once_output as output
from probes.agent.agent import Agent, Overrides
from probes.agent.serve import install_stop_signals, running_agent, setup_logging
from probes.asgi_server import start_server
from probes.config.agent_file import load_config

CLEAR = "\x1b[H\x1b[2J"


def write_demo_config(target_url: str, directory: str) -> str:
    """The bundled demo.yaml with the target URL filled in, as a file (so /-/reload works on it)."""
    text = resources.files("probes.demo").joinpath("demo.yaml").read_text(encoding="utf-8")
    path = os.path.join(directory, "demo.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.replace("${DEMO_TARGET}", target_url))
    return path


def _print_table(agent: Agent, header: str, clear: bool) -> None:
    results = [agent.latest[name] for name in agent.probers() if name in agent.latest]
    body = output.table(results) if results else "(waiting for the first results...)"
    print((CLEAR if clear else "") + header + "\n" + body + "\n", flush=True)


async def _live_table(agent: Agent, stop: asyncio.Event, header: str, deadline: float | None) -> None:
    tty = sys.stdout.isatty()
    every = 1.0 if tty else 5.0
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        _print_table(agent, header, tty)
        wait = every if deadline is None else max(0.0, min(every, deadline - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
    _print_table(agent, header, tty)


async def run_demo(listen: str, target_listen: str, duration: float | None, drill: bool) -> int:
    from probes.demo.app import create_app as create_target

    setup_logging(level=30)
    token = secrets.token_urlsafe(12)
    target = await start_server(create_target(admin_token=token), target_listen, fallback_to_free_port=True)
    print(f"probe-agent: target listening on {target.url}", flush=True)
    stop = asyncio.Event()
    install_stop_signals(stop)
    try:
        with tempfile.TemporaryDirectory(prefix="probe-agent-demo-") as directory:
            config_path = write_demo_config(target.url, directory)
            agent = Agent(config_path, load_config(config_path), Overrides(listen=listen))
            async with running_agent(agent, fallback_to_free_port=True) as server:
                header = (f"probe-agent demo: status page {server.url}/  metrics {server.url}/metrics\n"
                          f"demo search API {target.url}/api/search?q=laptop  fault API token: {token}\n"
                          f"config {config_path} (edit it and POST {server.url}/-/reload)  Ctrl-C stops.\n")
                if drill:
                    from probes.drills.demo_drill import run_demo_drill

                    print(header, flush=True)
                    return await run_demo_drill(target.url, server.url, token, agent_config=config_path)
                deadline = time.monotonic() + duration if duration else None
                await _live_table(agent, stop, header, deadline)
    finally:
        await target.stop()
    return 0
