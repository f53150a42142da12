"""`probe-agent proxy`: the fault-injecting reverse proxy with its control listener."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from probes.cli_flags import add_web_config_argument

TOKEN_ENV = "PROBE_AGENT_ADMIN_TOKEN"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "proxy",
        help="fault-injecting reverse proxy in front of one upstream",
        description="Forward every request to --upstream, applying the faults posted to the control "
        "listener's /-/faults (bearer --token); the control listener also serves /metrics.",
    )
    parser.add_argument("--listen", required=True, metavar="HOST:PORT", help="address clients connect to")
    parser.add_argument("--upstream", required=True, metavar="URL", help="base URL to forward to, e.g. http://127.0.0.1:8000")
    parser.add_argument("--control", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="address of the fault API and /metrics (default 127.0.0.1:0, a free port)")
    parser.add_argument("--token", metavar="TOKEN",
                        help=f"bearer token of the fault API (default: ${TOKEN_ENV}; none: fault API off)")
    add_web_config_argument(parser)
    add_limit_arguments(parser)
    parser.set_defaults(handler=run_proxy)


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """Bounds of the fault API, shared by `proxy` and `target`."""
    parser.add_argument("--max-fault-ttl", default="1h", metavar="DURATION",
                        help="refuse faults that ask to live longer than this (default 1h)")
    parser.add_argument("--max-faults", type=int, default=100, metavar="N",
                        help="refuse a new fault while this many are active (default 100)")


def store_options(args: argparse.Namespace) -> dict[str, float]:
    """FaultStore keyword arguments from the flags of `add_limit_arguments`; UsageError when invalid."""
    from probes.durations import parse_duration
    from probes.errors import UsageError

    try:
        max_ttl = parse_duration(args.max_fault_ttl)
    except ValueError as exc:
        raise UsageError(f"--max-fault-ttl: {exc}") from None
    if max_ttl <= 0:
        raise UsageError("--max-fault-ttl: must be positive")
    if args.max_faults < 1:
        raise UsageError("--max-faults: must be at least 1")
    return {"max_ttl": max_ttl, "max_faults": args.max_faults}


def run_proxy(args: argparse.Namespace) -> int:
    import asyncio

    from probes.asgi_server import split_host_port
    from probes.config.web_config import web_security
    from probes.errors import UsageError

    listen = split_host_port(args.listen)
    control = split_host_port(args.control)
    upstream = _check_upstream(args.upstream, UsageError)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    return asyncio.run(_serve(listen, control, upstream, token, web_security(args), store_options(args)))


def _check_upstream(text: str, error: type[Exception]) -> str:
    from yarl import URL

    try:
        url = URL(text)
    except ValueError as exc:
        raise error(f"invalid --upstream {text!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise error(f"invalid --upstream {text!r}: expected http(s)://HOST[:PORT][/PREFIX]")
    if url.query_string or url.fragment:
        raise error(f"invalid --upstream {text!r}: no query or fragment, please")
    return text


async def _serve(listen: tuple[str, int], control: tuple[str, int], upstream: str, token: str | None,
                 security: Any, limits: dict[str, float]) -> int:
    from prometheus_client import CollectorRegistry

    from probes.asgi_server import AsgiServer
    from probes.faults.proxy import FaultProxy, ProxyMetrics
    from probes.faults.proxy_control import create_control_app
    from probes.faults.store import FaultStore
    from probes.stop_signals import wait_for_stop_signal

    store = FaultStore(max_ttl=limits["max_ttl"], max_faults=int(limits["max_faults"]))
    registry = CollectorRegistry()
    proxy = FaultProxy(upstream, store, host=listen[0], port=listen[1], metrics=ProxyMetrics(registry, store))
    control_server = AsgiServer(create_control_app(store, token, registry), *control, security=security)
    await proxy.start()
    try:
        await control_server.start()
        try:
            print(f"probe-agent: proxy listening on {proxy.url}", flush=True)
            print(f"probe-agent: control listening on {control_server.url}", flush=True)
            if not token:
                print(f"probe-agent: fault API off (no --token or ${TOKEN_ENV})", file=sys.stderr, flush=True)
            await wait_for_stop_signal()
        finally:
            await control_server.stop()
    finally:
        await proxy.stop()
    return 0
