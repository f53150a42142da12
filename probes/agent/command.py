"""Subcommands of the probing agent itself: run, once, check-config, schema."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    run = subparsers.add_parser("run", help="run the agent: scheduled probes, /metrics, status page")
    run.add_argument("--config", required=True, metavar="FILE")
    run.add_argument("--region", help="region label (overrides agent.region and PROBE_AGENT_REGION)")
    run.add_argument("--agent-id", help="agent label (overrides agent.id)")
    run.add_argument("--listen", metavar="HOST:PORT", help="overrides agent.listen")
    run.add_argument("--processes", metavar="N|auto", type=_processes,
                     help="worker processes that run the probes, 1-64 or auto (one per CPU); overrides agent.processes")
    run.add_argument("--worker", metavar="I/N", help=argparse.SUPPRESS)  # set by the agent for its workers
    run.set_defaults(handler=_run)

    once = subparsers.add_parser("once", help="run each (selected) probe once and print the results")
    once.add_argument("--config", required=True, metavar="FILE")
    once.add_argument("--probe", action="append", metavar="NAME", help="only this probe (repeatable)")
    once.add_argument("--format", choices=["table", "json", "junit"], default="table")
    once.add_argument("--region")
    once.set_defaults(handler=_once)

    check = subparsers.add_parser("check-config", help="validate an agent.yaml")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(handler=_check_config)

    schema = subparsers.add_parser("schema", help="print the JSON Schema of agent.yaml")
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
    from probes.agent.serve import serve, setup_logging

    if args.worker:
        from probes.agent.workers import become_worker

        become_worker()
    setup_logging()
    overrides = Overrides(args.region, args.agent_id, args.listen)
    config = load_config(args.config)
    processes = args.processes or config.agent.processes
    if args.worker:
        from probes.agent import workers

        index, count = workers.parse_worker(args.worker)
        return asyncio.run(serve(workers.WorkerAgent(args.config, config, overrides, index, count)))
    if processes > 1:
        from probes.agent import supervisor

        # The workers get the user's own arguments (every flag of `run`, present and future).
        argv = sys.argv[1:] if sys.argv[1:2] == ["run"] else [
            "run", "--config", args.config, *(["--region", args.region] if args.region else []),
            *(["--agent-id", args.agent_id] if args.agent_id else [])]
        agent = supervisor.Supervisor(args.config, config, overrides, processes, argv,
                                      count_from_flag=args.processes is not None)
        return asyncio.run(supervisor.supervise(agent))
    return asyncio.run(serve(Agent(args.config, config, overrides)))


def _once(args: argparse.Namespace) -> int:
    from probes.agent import once_output as output
    from probes.agent.agent import Agent, Overrides
    from probes.errors import UsageError

    agent = Agent.from_file(args.config, Overrides(region=args.region))
    names = args.probe
    if names:
        unknown = sorted(set(names) - {p.name for p in agent.config.probes})
        if unknown:
            known = ", ".join(p.name for p in agent.config.probes)
            raise UsageError(f"unknown probe {', '.join(unknown)}; the config has: {known}")

    async def go() -> list[Any]:
        await agent.start(schedule=False)
        try:
            return await agent.run_once(names)
        finally:
            await agent.stop()

    results = asyncio.run(go())
    render = {"table": output.table, "json": output.as_json, "junit": output.junit}[args.format]
    print(render(results))
    return 0 if all(r.success for r in results) else 1


def _check_config(args: argparse.Namespace) -> int:
    from probes.agent.config_file import load_config

    config = load_config(args.file)
    print(f"{args.file}: OK ({len(config.probes)} probes)")
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
