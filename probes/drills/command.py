"""`probe-agent drill`: run fire drills from a drill file. Exit 0 all passed, 1 one failed,
2 invalid file or invocation, 3 could not run (Prometheus, Alertmanager or an injector unreachable)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "drill",
        help="alert-rule fire drills: inject a fault, prove the alert fires, notifies and resolves",
        description=__doc__,
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="the drill file (YAML)")
    parser.add_argument(
        "--drill",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this drill (repeatable); default: all",
    )
    parser.add_argument("--report-json", metavar="FILE", help="write the JSON report here ('-' for stdout)")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (a testcase per alert)")
    parser.add_argument(
        "--report-html", metavar="FILE", help="write an HTML report with a timeline per drill"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from probes.drills import spec
    from probes.errors import UsageError

    loaded = spec.load(args.config)
    known = [d.name for d in loaded.spec.drills]
    unknown = [name for name in args.drill if name not in known]
    if unknown:
        raise UsageError(f"unknown drill {', '.join(unknown)}; the file has: {', '.join(known)}")
    return asyncio.run(run_and_report(loaded, args.drill, args.report_json, args.junit, args.report_html))


async def run_and_report(
    loaded: Any,
    names: list[str],
    report_json: str | None = None,
    junit: str | None = None,
    report_html: str | None = None,
) -> int:
    """Run, print the summary, write the requested reports; returns the exit code."""
    from probes.drills import html_report, report
    from probes.drills.conduct import Runner

    result = await Runner(loaded).run(names or None)
    print(report.summary(result), flush=True)
    if report_json == "-":
        sys.stdout.write(report.to_json(result))
    elif report_json:
        report.write(report_json, report.to_json(result))
    if junit:
        report.write(junit, report.to_junit(result))
    if report_html:
        report.write(report_html, html_report.to_html(result))
    if result.interrupted:
        return EXIT_SIGNAL.get(result.interrupted, 1)
    return 0 if result.passed else 1
