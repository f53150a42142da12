"""`probe-agent demo` (the demo search API and an agent probing it, live) and `probe-agent target` (the
demo search API alone, with its fault API when given a token)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
from typing import Any

from probes.cli_flags import add_log_arguments, add_web_config_argument
from probes.faults.command import add_limit_arguments, store_options

TOKEN_ENV = "PROBE_AGENT_ADMIN_TOKEN"


def add_parser(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo", help="the bundled search API and an agent probing it, live",
        description=textwrap.fill(
            "Start the bundled demo search API and an agent probing it with the demo's probes, print a live "
            "table of results (plain lines when the output is not a terminal), and serve the status page "
            "and /metrics. Inject a fault with the printed token to watch probes fail. Ctrl-C stops.", 79),
        epilog="examples:\n"
               "  probe-agent demo\n"
               "  probe-agent demo --listen 127.0.0.1:9500 --duration 30s\n"
               "  probe-agent demo --drill    # also a fire drill with local Prometheus and Alertmanager",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--listen", metavar="HOST:PORT",
                      help="the agent's address (default 127.0.0.1:9464, or a free port when that is taken)")
    demo.add_argument("--target-listen", metavar="HOST:PORT", default="127.0.0.1:0",
                      help="the demo search API's address (default: a free port)")
    demo.add_argument("--duration", type=_duration, metavar="DURATION",
                      help="stop after this long (e.g. 30s, 5m; a bare number is seconds)")
    demo.add_argument("--drill", action="store_true",
                      help="also run a fire drill with local prometheus and alertmanager binaries")
    add_web_config_argument(demo)
    add_log_arguments(demo, default_level="warning")
    demo.set_defaults(handler=_demo)

    parser = subparsers.add_parser(
        "target",
        help="serve the bundled demo search API",
        description="Serve the demo search API (/api/search, /health, /auth/token, /metrics). "
        "With an admin token, its fault API /-/faults is on.",
    )
    parser.add_argument("--listen", default="127.0.0.1:8000", metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1:8000; port 0 picks a free one)")
    parser.add_argument("--admin-token", metavar="TOKEN",
                        help=f"bearer token of the fault API /-/faults (default: ${TOKEN_ENV}; none: API off)")
    add_web_config_argument(parser)
    add_limit_arguments(parser)
    parser.set_defaults(handler=run_target)


def _duration(text: str) -> float:
    from probes.durations import parse_duration

    try:
        seconds = float(text)  # a bare number is seconds, as it always was
    except ValueError:
        seconds = None
    try:
        seconds = parse_duration(text) if seconds is None else seconds
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than 0")
    return seconds


def run_target(args: argparse.Namespace) -> int:
    import asyncio

    from probes.asgi_server import split_host_port
    from probes.config.web_config import web_security

    host, port = split_host_port(args.listen)
    token = args.admin_token or os.environ.get(TOKEN_ENV) or None
    return asyncio.run(_serve(host, port, token, web_security(args), store_options(args)))


async def _serve(host: str, port: int, token: str | None, security: Any, limits: dict[str, float]) -> int:
    from probes.asgi_server import AsgiServer
    from probes.demo.app import create_app
    from probes.faults.store import FaultStore
    from probes.stop_signals import wait_for_stop_signal

    store = FaultStore(max_ttl=limits["max_ttl"], max_faults=int(limits["max_faults"]))
    server = AsgiServer(create_app(token, store=store), host, port, security=security)
    await server.start()
    try:
        print(f"probe-agent: target listening on {server.url}", flush=True)
        state = f"on at {server.url}/-/faults (bearer token)" if token else f"off (no --admin-token or ${TOKEN_ENV})"
        print(f"probe-agent: fault API {state}", file=sys.stderr, flush=True)
        await wait_for_stop_signal()
    finally:
        await server.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from probes.config.web_config import web_security
    from probes.demo.live import run_demo
    from probes.log_format import setup_logging

    setup_logging(args.log_level, args.log_format)
    return asyncio.run(run_demo(args.listen, args.target_listen, args.duration, args.drill,
                                security=web_security(args)))
