"""`probe-agent slo rules|report`: SLOs from agent.yaml's `slos:` as Prometheus rules, and their budgets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

TIME_SCALE_HELP = ("divide every window by X (for tests and demos only: 60 turns 1h into 1m and 30d into 12h; "
                   "names and labels keep the nominal windows)")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "slo", help="SLOs and error budgets: burn-rate rules for Prometheus, promtool tests, a budget report",
        description=__doc__)
    commands = parser.add_subparsers(dest="slo_command", metavar="COMMAND")
    commands.required = True

    rules = commands.add_parser(
        "rules", help="write the Prometheus rule file: error ratios per SLO and region, SLOErrorBudgetBurn alerts",
        description="Write the recording rules (error ratio per SLO and region over 5m, 30m, 1h, 2h, 6h, 1d, 3d "
                    "and the SLO's window) and the multiwindow, multi-burn-rate alerts SLOErrorBudgetBurn "
                    "(page 14.4x over 1h and 5m or 6x over 6h and 30m; ticket 3x over 1d and 2h or 1x over 3d "
                    "and 6h).")
    rules.add_argument("--config", required=True, metavar="FILE", help="agent.yaml with a slos: section")
    rules.add_argument("--out", metavar="FILE", help="write the rule file here (default: stdout)")
    rules.add_argument("--tests", metavar="FILE",
                       help="also write promtool unit tests of the rules here (needs --out): "
                            "promtool test rules FILE")
    rules.add_argument("--time-scale", type=float, default=1.0, metavar="X", help=TIME_SCALE_HELP)
    rules.set_defaults(handler=handle_rules)

    report = commands.add_parser(
        "report", help="each SLO's error budget per region from Prometheus; exit 1 when one is spent",
        description="Per SLO and region: objective, SLI over the window, error budget remaining "
                    "(1 - (1 - SLI) / (1 - objective), negative when overspent) and burn rates over 1h and 6h. "
                    "Exit 0 every budget left, 1 one is spent, 3 Prometheus unreachable or no data.")
    report.add_argument("--config", required=True, metavar="FILE", help="agent.yaml with a slos: section")
    report.add_argument("--prometheus", required=True, metavar="URL", help="e.g. http://127.0.0.1:9090")
    report.add_argument("--format", choices=("table", "json", "html"), default="table")
    report.add_argument("--time-scale", type=float, default=1.0, metavar="X", help=TIME_SCALE_HELP)
    report.set_defaults(handler=handle_report)


def _slos(path: str) -> tuple[Any, list[Any]]:
    from probes.agent.config_file import load_config
    from probes.errors import UsageError

    config = load_config(path)
    if not config.slos:
        raise UsageError(f"{path} has no slos: section (see `probe-agent slo rules --help`)")
    return config, config.slos


def handle_rules(args: argparse.Namespace) -> int:
    from probes.errors import UsageError
    from probes.slo import rules, tests
    from probes.slo.windows import TimeScale

    scale = TimeScale(args.time_scale)
    config, slos = _slos(args.config)
    if args.tests and not args.out:
        raise UsageError("--tests needs --out: the tests load the rule file by its path")
    for warning in rules.unreachable_pages(slos):
        print(warning, file=sys.stderr)
    text = rules.rule_file(slos, scale, Path(args.config).name)
    if args.out:
        _write(args.out, text)
    else:
        sys.stdout.write(text)
    if args.tests:
        probe_names = [p.name for p in config.probes]
        _write(args.tests, tests.test_file(slos, probe_names, scale, args.out, args.tests))
    return 0


def _write(path: str, text: str) -> None:
    from probes.errors import UsageError

    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def handle_report(args: argparse.Namespace) -> int:
    from probes.errors import UsageError
    from probes.slo import report
    from probes.slo.windows import TimeScale

    scale = TimeScale(args.time_scale)
    if not args.prometheus.startswith(("http://", "https://")):
        raise UsageError(f"--prometheus {args.prometheus!r} is not an http:// or https:// URL")
    _, slos = _slos(args.config)
    rows = report.collect(slos, args.prometheus, scale)
    print(report.FORMATS[args.format](rows, args.prometheus))
    return 1 if any(row.budget_spent for row in rows) else 0
