"""Subcommands of the probing agent itself: run, once, check-config, schema."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import textwrap
from typing import Any

from probes.cli_flags import add_log_arguments, add_web_config_argument


def _shard(text: str) -> Any:
    from probes.identity import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _command(subparsers: Any, name: str, summary: str, description: str, examples: str) -> Any:
    # Raw: the examples keep their lines; so the description is wrapped here.
    return subparsers.add_parser(name, help=summary, description=textwrap.fill(description, 79),
                                 epilog="examples:\n" + examples,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def add_parser(subparsers: Any) -> None:
    run = _command(
        subparsers, "run", "run the agent: scheduled probes, /metrics, status page",
        "Run the probes of FILE (or of an http(s):// URL, polled every agent.config_poll_interval) on their "
        "schedules and serve /metrics (Prometheus), the status page at /, "
        "/probes/NAME (history and debug view), /api/results, /-/healthy, /-/ready and POST /-/reload. "
        "Every probe runs once within a few seconds of the start, then every `interval`. SIGHUP or "
        "POST /-/reload reloads FILE; a bad edit keeps the running config. SIGINT/SIGTERM stop it.",
        "  probe-agent run --config agent.yaml\n"
        "  probe-agent run --config agent.yaml --region eu-west-1 --listen 0.0.0.0:9464\n"
        "  curl -s localhost:9464/metrics | grep probe_success")
    run.add_argument("--config", required=True, metavar="FILE|URL",
                     help="agent.yaml, or an http(s):// URL polled every agent.config_poll_interval")
    run.add_argument("--config-bearer-token-file", metavar="FILE",
                     help="send the token in this file as 'Authorization: Bearer' when fetching a --config URL")
    run.add_argument("--region", help="region label (overrides agent.region and PROBE_AGENT_REGION)")
    run.add_argument("--agent-id", help="agent label (overrides agent.id and PROBE_AGENT_ID; default: host name)")
    run.add_argument("--shard", type=_shard, metavar="I/N",
                     help="run only the probes whose name hash modulo N is I (overrides agent.shard and "
                          "PROBE_AGENT_SHARD)")
    run.add_argument("--listen", metavar="HOST:PORT", help="overrides agent.listen")
    add_web_config_argument(run)
    add_log_arguments(run)
    run.add_argument("--processes", metavar="N|auto", type=_processes,
                     help="worker processes that run the probes, 1-64 or auto (one per CPU); overrides agent.processes")
    run.add_argument("--worker", metavar="I/N", help=argparse.SUPPRESS)  # set by the agent for its workers
    run.set_defaults(handler=_run)

    once = _command(
        subparsers, "once", "run each (selected) probe once and print the results",
        "Run every probe of FILE (or those named with --probe) once, print the results and exit: 0 if "
        "all succeeded, 1 if one failed, 2 for an invalid config. For CI jobs and for trying a config.",
        "  probe-agent once --config agent.yaml\n"
        "  probe-agent once --config agent.yaml --probe api-health --format json\n"
        "  probe-agent once --config agent.yaml --format junit > probes.xml")
    once.add_argument("--config", required=True, metavar="FILE|URL")
    once.add_argument("--probe", action="append", metavar="NAME", help="only this probe (repeatable)")
    once.add_argument("--format", choices=["table", "json", "junit"], default="table")
    once.add_argument("--region")
    once.set_defaults(handler=_once)

    check = _command(
        subparsers, "check-config", "validate an agent.yaml (a file or an http(s):// URL)",
        "Validate FILE without running anything: exit 0, or 2 with every error as FILE:LINE: field.path: "
        "message (sorted by line, the form editors jump to).",
        "  probe-agent check-config agent.yaml\n"
        "  API_TOKEN=x probe-agent check-config deploy/examples/agent.yaml")
    check.add_argument("file", metavar="FILE|URL")
    check.set_defaults(handler=_check_config)

    schema = _command(
        subparsers, "schema", "print the JSON Schema of agent.yaml",
        "Print the JSON Schema of agent.yaml, for editors (completion and checks while typing) and CI.",
        "  probe-agent schema > agent.schema.json\n"
        "  # VS Code (YAML extension): first line of agent.yaml\n"
        "  # yaml-language-server: $schema=./agent.schema.json")
    schema.set_defaults(handler=_schema)

    types = subparsers.add_parser("types", help="list the probe types (a Markdown table)")
    types.set_defaults(handler=_types)


def _processes(text: str) -> int:
    from probes.config.models import parse_processes

    try:
        return parse_processes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    from probes.agent.agent import Agent, Overrides
    from probes.agent.config_file import load_config
    from probes.agent.serve import serve
    from probes.config.web_config import web_security
    from probes.log_format import setup_logging

    if args.worker:
        from probes.agent.workers import become_worker

        become_worker()
    setup_logging(args.log_level, args.log_format)
    # httpx logs every request at INFO: one line per config poll of every agent would drown the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    security = web_security(args)
    overrides = Overrides(args.region, args.agent_id, args.listen, args.shard)
    # Feature packages add flags to `run` and hand in their web routes (e.g. blackbox's /probe) this way.
    plugins = [plugin for factory in getattr(args, "web_plugins", []) if (plugin := factory(args)) is not None]
    # Worker processes need a config file; a config URL runs in one process.
    config = None if "://" in args.config else load_config(args.config)
    processes = args.processes or (config.agent.processes if config is not None else 1)
    if args.worker and config is not None:
        from probes.agent import workers

        index, count = workers.parse_worker(args.worker)
        return asyncio.run(serve(workers.WorkerAgent(args.config, config, overrides, index, count)))
    if processes > 1 and config is not None:
        from probes.agent import supervisor

        # The workers get the user's own arguments (every flag of `run`, present and future), except the
        # web config: they listen on loopback for this process only, which must not be locked out.
        argv = _without_web_config(sys.argv[1:]) if sys.argv[1:2] == ["run"] else [
            "run", "--config", args.config, *(["--region", args.region] if args.region else []),
            *(["--agent-id", args.agent_id] if args.agent_id else [])]
        agent = supervisor.Supervisor(args.config, config, overrides, processes, argv,
                                      count_from_flag=args.processes is not None)
        return asyncio.run(supervisor.supervise(agent))

    async def main() -> int:
        agent = await Agent.open(args.config, overrides, bearer_token_file=args.config_bearer_token_file)
        return await serve(agent, security, plugins)

    return asyncio.run(main())


def _once(args: argparse.Namespace) -> int:
    from probes.agent import once_output as output
    from probes.agent.agent import Agent, Overrides
    from probes.errors import UsageError

    names = args.probe

    async def go() -> list[Any]:
        agent = await Agent.open(args.config, Overrides(region=args.region))
        await agent.start(schedule=False)
        try:
            if names:
                # Only the probes this agent selected (its region, its shard) can run here.
                selected = agent.probers()
                unknown = sorted(set(names) - set(selected))
                if unknown:
                    raise UsageError(f"unknown probe {', '.join(unknown)}; this agent runs: {', '.join(selected)}")
            return await agent.run_once(names)
        finally:
            await agent.stop()

    results = asyncio.run(go())
    render = {"table": output.table, "json": output.as_json, "junit": output.junit}[args.format]
    print(render(results))
    return 0 if all(r.success for r in results) else 1


def _check_config(args: argparse.Namespace) -> int:
    from probes.agent.config_file import parse_config
    from probes.agent.config_source import FetchFailed, open_source
    from probes.errors import CannotRun
    from probes.plural import count

    async def fetch() -> tuple[str, str, str]:
        source = open_source(args.file)
        try:
            return (await source.fetch()).text, source.name, source.base_dir
        except FetchFailed as exc:
            raise CannotRun(exc.message) from None
        finally:
            await source.aclose()

    # A URL is checked as the agents would see it (the same fetch and limits).
    text, name, base_dir = asyncio.run(fetch())
    config = parse_config(text, name, base_dir=base_dir)
    print(f"{name}: OK ({count(len(config.probes), 'probe')})")
    if not config.probes:
        print(f"{name}: warning: no probes configured; the agent would serve only its own metrics",
              file=sys.stderr)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from probes.agent.config_file import json_schema

    json.dump(json_schema(), sys.stdout, indent=2)
    print()
    return 0


def _types(args: argparse.Namespace) -> int:
    from probes.probers import types_table

    print(types_table(), end="")
    return 0


def _without_web_config(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--web.config.file":
            skip = True
        elif not arg.startswith("--web.config.file="):
            out.append(arg)
    return out
