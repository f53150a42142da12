"""Subcommands of the probing agent itself: run, once, check-config, schema."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
from typing import Any


def _command(subparsers: Any, name: str, summary: str, description: str, examples: str) -> Any:
    # Raw: the examples keep their lines; so the description is wrapped here.
    return subparsers.add_parser(name, help=summary, description=textwrap.fill(description, 79),
                                 epilog="examples:\n" + examples,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def add_parser(subparsers: Any) -> None:
    run = _command(
        subparsers, "run", "run the agent: scheduled probes, /metrics, status page",
        "Run the probes of FILE on their schedules and serve /metrics (Prometheus), the status page at /, "
        "/probes/NAME (history and debug view), /api/results, /-/healthy, /-/ready and POST /-/reload. "
        "Every probe runs once within a few seconds of the start, then every `interval`. SIGHUP or "
        "POST /-/reload reloads FILE; a bad edit keeps the running config. SIGINT/SIGTERM stop it.",
        "  probe-agent run --config agent.yaml\n"
        "  probe-agent run --config agent.yaml --region eu-west-1 --listen 0.0.0.0:9464\n"
        "  curl -s localhost:9464/metrics | grep probe_success")
    run.add_argument("--config", required=True, metavar="FILE")
    run.add_argument("--region", help="region label (overrides agent.region and PROBE_AGENT_REGION)")
    run.add_argument("--agent-id", help="agent label (overrides agent.id)")
    run.add_argument("--listen", metavar="HOST:PORT", help="overrides agent.listen")
    run.set_defaults(handler=_run)

    once = _command(
        subparsers, "once", "run each (selected) probe once and print the results",
        "Run every probe of FILE (or those named with --probe) once, print the results and exit: 0 if "
        "all succeeded, 1 if one failed, 2 for an invalid config. For CI jobs and for trying a config.",
        "  probe-agent once --config agent.yaml\n"
        "  probe-agent once --config agent.yaml --probe api-health --format json\n"
        "  probe-agent once --config agent.yaml --format junit > probes.xml")
    once.add_argument("--config", required=True, metavar="FILE")
    once.add_argument("--probe", action="append", metavar="NAME", help="only this probe (repeatable)")
    once.add_argument("--format", choices=["table", "json", "junit"], default="table")
    once.add_argument("--region")
    once.set_defaults(handler=_once)

    check = _command(
        subparsers, "check-config", "validate an agent.yaml",
        "Validate FILE without running anything: exit 0, or 2 with every error as FILE:LINE: field.path: "
        "message (sorted by line, the form editors jump to).",
        "  probe-agent check-config agent.yaml\n"
        "  API_TOKEN=x probe-agent check-config deploy/examples/agent.yaml")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(handler=_check_config)

    schema = _command(
        subparsers, "schema", "print the JSON Schema of agent.yaml",
        "Print the JSON Schema of agent.yaml, for editors (completion and checks while typing) and CI.",
        "  probe-agent schema > agent.schema.json\n"
        "  # VS Code (YAML extension): first line of agent.yaml\n"
        "  # yaml-language-server: $schema=./agent.schema.json")
    schema.set_defaults(handler=_schema)


def _run(args: argparse.Namespace) -> int:
    from probes.agent.agent import Agent, Overrides
    from probes.agent.serve import serve, setup_logging

    setup_logging()
    agent = Agent.from_file(args.config, Overrides(args.region, args.agent_id, args.listen))
    return asyncio.run(serve(agent))


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
    from probes.plural import count

    config = load_config(args.file)
    print(f"{args.file}: OK ({count(len(config.probes), 'probe')})")
    if not config.probes:
        print(f"{args.file}: warning: no probes configured; the agent would serve only its own metrics",
              file=sys.stderr)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from probes.agent.config_file import json_schema

    json.dump(json_schema(), sys.stdout, indent=2)
    print()
    return 0
