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
from probes.agent.config_file import load_config
from probes.agent.serve import install_stop_signals, running_agent
from probes.asgi_server import WebSecurity, start_server

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


def _print_new_results(agent: Agent, seen: dict[str, float]) -> None:
    """Piped output (a log, CI): one plain line per new result, never the header again."""
    fresh = sorted((r for r in agent.latest.values() if seen.get(r.probe) != r.started_at),
                   key=lambda r: r.started_at)
    for result in fresh:
        seen[result.probe] = result.started_at
        when = time.strftime("%H:%M:%S", time.localtime(result.started_at))
        print(f"{when} {result.probe} {output.state_word(result)} {result.duration_seconds * 1000:.1f}ms "
              f"{result.reason or '-'} {result.message}", flush=True)


async def _live_table(agent: Agent, stop: asyncio.Event, header: str, deadline: float | None) -> None:
    tty = sys.stdout.isatty()
    seen: dict[str, float] = {}
    if not tty:
        print(header, flush=True)
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        if tty:
            _print_table(agent, header, clear=True)
        else:
            _print_new_results(agent, seen)
        wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
    if tty:
        _print_table(agent, header, clear=True)
    else:
        _print_new_results(agent, seen)
        results = [agent.latest[name] for name in agent.probers() if name in agent.latest]
        print("\n" + output.table(results), flush=True)


DEFAULT_LISTEN = "127.0.0.1:9464"


async def run_demo(listen: str | None, target_listen: str, duration: float | None, drill: bool,
                   security: WebSecurity | None = None) -> int:
    """`listen` None: the default port, or a free one when it is taken (a demo should just start); an
    address the user gave is used or the demo fails (exit 3)."""
    from probes.demo.app import create_app as create_target

    token = secrets.token_urlsafe(12)
    target = await start_server(create_target(admin_token=token), target_listen)
    print(f"probe-agent: target listening on {target.url}", flush=True)
    stop = asyncio.Event()
    install_stop_signals(stop)
    try:
        with tempfile.TemporaryDirectory(prefix="probe-agent-demo-") as directory:
            config_path = write_demo_config(target.url, directory)
            agent = Agent(config_path, load_config(config_path), Overrides(listen=listen or DEFAULT_LISTEN))
            async with running_agent(agent, fallback_to_free_port=listen is None, security=security) as server:
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
