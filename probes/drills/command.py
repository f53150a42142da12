"""`probe-agent drill`: run fire drills from a drill file. Exit 0 all passed, 1 one failed,
2 invalid file or invocation (also: a `within` shorter than the computed bound), 3 could not run
(Prometheus, Alertmanager or an injector unreachable, or a rule's input series not scraped in time).

`probe-agent drill ledger --rules DIR --reports DIR`: every alert in the rule files with its last drill."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


def _duration(text: str) -> float:
    from probes.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "drill",
        help="alert-rule fire drills: inject a fault, prove the alert fires, notifies and resolves",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="the drill file (YAML); required unless `ledger`")
    parser.add_argument(
        "--drill",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this drill (repeatable); default: all. ${VAR}s of other drills need not be set",
    )
    parser.add_argument("--report-json", metavar="FILE", help="write the JSON report here ('-' for stdout)")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (a testcase per alert)")
    parser.add_argument(
        "--report-html", metavar="FILE", help="write an HTML report with a timeline per drill"
    )
    parser.add_argument(
        "--wait-for-series", type=_duration, metavar="DURATION",
        help="wait this long for fresh samples of each rule's input series before injecting, then exit 3 "
             "naming the missing ones (default: the file's wait_for_series, 30s)",
    )
    parser.add_argument(
        "--metrics-file", metavar="FILE",
        help="merge the drill ledger metrics (probe_drill_last_run_timestamp_seconds{alert}, ...) into "
             "this node_exporter textfile, atomically",
    )
    parser.add_argument(
        "--metrics-push", metavar="URL",
        help="push the drill ledger metrics to this Pushgateway (PUT /metrics/job/probe_agent_drill)",
    )
    parser.add_argument(
        "--sweep", metavar="PARAM=V1,V2,...",
        help="run the drills once per intensity, e.g. probability=0.05,0.1,0.25,0.5,1.0 or "
             "latency=300ms,1s,2s; reports when each alert fired per step (exit 1: an alert caught none)",
    )
    parser.add_argument(
        "--export-promtool", metavar="DIR",
        help="write a promtool rule unit test per drill reproducing what Prometheus saw "
             "(check it with `promtool test rules DIR/*.test.yml`)",
    )
    parser.set_defaults(handler=handle, drill_command=None)

    commands = parser.add_subparsers(dest="drill_command", metavar="ledger", parser_class=type(parser))
    ledger = commands.add_parser(
        "ledger",
        help="every alert in the rule files with its last drill (exit 1: one never drilled or stale)",
        description="List every alert in the rule files with its last drill, read from drill JSON reports "
                    "(drill --report-json, sweeps too). Exit 0 when every alert was drilled within "
                    "--max-age; exit 1 when any alert was never drilled or not within --max-age; "
                    "exit 2 on a bad directory or rule file.",
    )
    ledger.add_argument("--rules", required=True, metavar="DIR", help="directory of Prometheus rule files")
    ledger.add_argument("--reports", required=True, metavar="DIR", help="directory of drill JSON reports")
    ledger.add_argument("--max-age", type=_duration, default=90 * 86400.0, metavar="DURATION",
                        help="a drill older than this is stale (default: 90d)")
    ledger.add_argument("--format", choices=("table", "json"), default="table")
    ledger.set_defaults(handler=handle_ledger)


def handle_ledger(args: argparse.Namespace) -> int:
    from probes.drills import ledger

    return ledger.run(args.rules, args.reports, args.max_age, args.format)


def handle(args: argparse.Namespace) -> int:
    from probes.drills import spec
    from probes.errors import UsageError

    if not args.config:
        raise UsageError("drill: --config FILE is required (or: drill ledger --rules DIR --reports DIR)")
    sweep = None
    if getattr(args, "sweep", None):
        from probes.drills.sweep import parse_sweep

        sweep = parse_sweep(args.sweep)
        if args.junit:
            raise UsageError("--junit does not combine with --sweep (a sweep's steps fail by design); "
                             "use --report-json or --report-html")
    loaded = spec.load(args.config, select=args.drill or None)
    known = [d.name for d in loaded.spec.drills]
    unknown = [name for name in args.drill if name not in known]
    if unknown:
        raise UsageError(f"unknown drill {', '.join(unknown)}; the file has: {', '.join(known)}")
    return asyncio.run(run_and_report(
        loaded, args.drill, args.report_json, args.junit, args.report_html,
        wait_for_series=getattr(args, "wait_for_series", None),
        metrics_file=getattr(args, "metrics_file", None),
        metrics_push=getattr(args, "metrics_push", None),
        export_promtool=getattr(args, "export_promtool", None),
        sweep=sweep,
    ))


async def _after(loaded: Any, reports: list[Any], metrics_file: str | None, metrics_push: str | None,
                 export_promtool: str | None, subdirs: list[str] | None = None) -> None:
    """The ledger metrics and promtool exports of the run's reports (a sweep has one per step)."""
    from probes.drills import ledger_metrics

    for report in reports:
        if metrics_file:
            ledger_metrics.write_textfile(metrics_file, report)
        if metrics_push:
            await ledger_metrics.push(metrics_push, report)
    if export_promtool:
        import httpx

        from probes.drills.prometheus import PrometheusClient, WatchError
        from probes.drills.promtool_export import export
        from probes.errors import CannotRun

        async with httpx.AsyncClient(timeout=30) as client:
            prometheus = PrometheusClient(loaded.spec.prometheus, client)
            for index, report in enumerate(reports):
                directory = Path(export_promtool) / (subdirs[index] if subdirs else "")
                try:
                    written = await export(prometheus, report, directory)
                except WatchError as exc:
                    raise CannotRun(f"export: Prometheus: {exc}") from None
                for path in written:
                    print(f"drill: wrote {path}", file=sys.stderr, flush=True)


async def run_and_report(
    loaded: Any,
    names: list[str],
    report_json: str | None = None,
    junit: str | None = None,
    report_html: str | None = None,
    *,
    wait_for_series: float | None = None,
    metrics_file: str | None = None,
    metrics_push: str | None = None,
    export_promtool: str | None = None,
    sweep: tuple[str, list[float]] | None = None,
) -> int:
    """Run, print the summary, write the requested reports; returns the exit code."""
    from probes.drills import html_report, report
    from probes.drills.conduct import Runner

    if sweep is not None:
        return await _run_sweep(loaded, names, sweep, report_json, report_html, wait_for_series=wait_for_series,
                                metrics_file=metrics_file, metrics_push=metrics_push,
                                export_promtool=export_promtool)
    result = await Runner(loaded, wait_for_series=wait_for_series).run(names or None)
    print(report.summary(result), flush=True)
    if report_json == "-":
        sys.stdout.write(report.to_json(result))
    elif report_json:
        report.write(report_json, report.to_json(result))
    if junit:
        report.write(junit, report.to_junit(result))
    if report_html:
        report.write(report_html, html_report.to_html(result))
    await _after(loaded, [result], metrics_file, metrics_push, export_promtool)
    if result.interrupted:
        return EXIT_SIGNAL.get(result.interrupted, 1)
    return 0 if result.passed else 1


async def _run_sweep(loaded: Any, names: list[str], sweep_arg: tuple[str, list[float]], report_json: str | None,
                     report_html: str | None, *, wait_for_series: float | None, metrics_file: str | None,
                     metrics_push: str | None, export_promtool: str | None) -> int:
    import json

    from probes.drills import report
    from probes.drills.sweep import run_sweep, summary, to_html

    parameter, values = sweep_arg
    result = await run_sweep(loaded, names or None, parameter, values, wait_for_series=wait_for_series)
    for value, step in result.steps:
        print(f"--- {parameter} = {value:g}", flush=True)
        print(report.summary(step), flush=True)
    print(summary(result), flush=True)
    text = json.dumps(result.to_json(), indent=2) + "\n"
    if report_json == "-":
        sys.stdout.write(text)
    elif report_json:
        report.write(report_json, text)
    if report_html:
        report.write(report_html, to_html(result))
    await _after(loaded, [r for _, r in result.steps], metrics_file, metrics_push, export_promtool,
                 [f"{parameter}-{v:g}" for v, _ in result.steps])
    if result.interrupted:
        return EXIT_SIGNAL.get(result.interrupted, 1)
    return 0 if result.passed else 1
