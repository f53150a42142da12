"""`probe-agent load`: a Locust load run as a CI stage.

Cheap to import and never imports Locust: the run happens in child processes (`launcher`), the
verdict and reports are computed here from the stats file the Locust master leaves behind.
Exit codes: 0 every threshold held, 1 one breached, 2 bad invocation, 3 no requests were made
(or Locust could not run at all).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from probes.durations import parse_duration
from probes.errors import CannotRun, UsageError
from probes.load import report as reports
from probes.load.launcher import LocustRun, Outcome, Role, launch
from probes.load.plugin_config import PluginConfig
from probes.load.scenario_files import resolve
from probes.load.thresholds import HELP as THRESHOLD_HELP
from probes.load.thresholds import Threshold, ThresholdError, parse_thresholds

# Far beyond one machine (Locust runs about 1,000 users per core), low enough that a typo cannot fork
# a process per worker until the machine falls over.
MAX_USERS = 1_000_000
MAX_WORKERS = 256

DEFAULT_THRESHOLDS = ["error_rate<1%"]
"""Without any --threshold a dead host would pass; Locust itself fails a run on any error."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "load",
        help="run a Locust load test as a CI stage with pass/fail thresholds",
        description="Run a Locust scenario headless against --host and judge it on thresholds. Exit codes: "
        "0 every threshold held, 1 one breached, 2 bad invocation, 3 no requests were made.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Thresholds: {THRESHOLD_HELP}. Without --threshold, {DEFAULT_THRESHOLDS[0]} applies. "
        "Arguments after `--` go to Locust unchanged (e.g. `-- --think-time 0.5` for the search scenario).",
    )
    run = parser.add_argument_group("the run")
    run.add_argument("--scenario", help="bundled scenario name (search, health) or a locustfile path")
    run.add_argument("--host", help="base URL of the API under load, e.g. http://127.0.0.1:8000")
    run.add_argument("--users", type=int, default=10, help="peak concurrent users (default 10)")
    run.add_argument("--spawn-rate", type=float, help="users started per second (default: all within 1s)")
    run.add_argument("--run-time", default="1m", help="how long to run, e.g. 30s, 5m (default 1m)")
    run.add_argument("--rate", type=float, help="target requests/s across all users (constant pacing)")
    run.add_argument("--workers", type=int, help="N local worker processes under a master (one per core)")
    run.add_argument("--region", default=os.environ.get("PROBE_AGENT_REGION"), help="label for metrics")
    run.add_argument("--stop-timeout", default="0s", help="let running tasks finish this long at the end")
    verdict = parser.add_argument_group("verdict and reports")
    verdict.add_argument("--threshold", action="append", default=[], metavar="EXPR", help="repeatable")
    verdict.add_argument("--abort-on-fail", action="store_true", help="stop on a sustained error_rate breach")
    verdict.add_argument("--abort-grace", default="5s", help="how long a breach must last (default 5s)")
    verdict.add_argument("--report-json", type=Path, metavar="FILE")
    verdict.add_argument("--junit", type=Path, metavar="FILE")
    verdict.add_argument("--report-html", type=Path, metavar="FILE",
                         help="the verdict as one HTML page (thresholds, stats per request name)")
    verdict.add_argument("--html", type=Path, metavar="FILE", help="Locust's own HTML report (charts)")
    verdict.add_argument("--metrics-listen", metavar="HOST:PORT", help="serve live Prometheus metrics")
    dist = parser.add_argument_group("several machines")
    dist.add_argument("--master", action="store_true", help="run the master; workers join from elsewhere")
    dist.add_argument("--expect-workers", type=int, help="with --master: wait for this many workers")
    dist.add_argument("--expect-workers-max-wait", default="60s", help="with --master: give up after (60s)")
    dist.add_argument("--master-bind-host", default="127.0.0.1",
                      help="with --master: interface workers connect to (default 127.0.0.1; "
                      "give 0.0.0.0 or an address for workers on other machines)")
    dist.add_argument("--master-bind-port", type=int, default=5557)
    dist.add_argument("--worker", action="store_true", help="join a master running elsewhere")
    dist.add_argument("--master-host", help="with --worker: the master's address")
    dist.add_argument("--master-port", type=int, default=5557)
    parser.add_argument("locust_args", nargs="*", metavar="-- LOCUST_ARGS", help=argparse.SUPPRESS)
    parser.set_defaults(handler=handle)


def _duration(value: Any, *, allow_zero: bool = False) -> float:
    seconds = parse_duration(str(value))
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"must be positive, got {value!r}")
    return seconds


class LoadOptions(BaseModel):
    """The command line, checked; every message names the flag it is about."""

    model_config = ConfigDict(extra="forbid")

    scenario: str | None
    host: str | None
    users: int
    spawn_rate: float | None
    run_time: float
    rate: float | None
    workers: int | None
    region: str | None
    stop_timeout: float
    threshold: list[str]
    abort_on_fail: bool
    abort_grace: float
    report_json: Path | None
    junit: Path | None
    report_html: Path | None
    html: Path | None
    metrics_listen: tuple[str, int] | None
    master: bool
    expect_workers: int | None
    expect_workers_max_wait: float
    master_bind_host: str
    master_bind_port: int
    worker: bool
    master_host: str | None
    master_port: int
    locust_args: list[str]

    @field_validator("run_time", "abort_grace", "expect_workers_max_wait", mode="before")
    @classmethod
    def _positive_duration(cls, value: Any) -> float:
        return _duration(value)

    @field_validator("stop_timeout", mode="before")
    @classmethod
    def _duration_or_zero(cls, value: Any) -> float:
        return _duration(value, allow_zero=True)

    @field_validator("host")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. http://127.0.0.1:8000")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError(f"{value!r} has an invalid port") from None
        return value.rstrip("/")

    @field_validator("users")
    @classmethod
    def _users(cls, value: int) -> int:
        if not 1 <= value <= MAX_USERS:
            raise ValueError(f"must be between 1 and {MAX_USERS}")
        return value

    @field_validator("spawn_rate", "rate")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"must be a positive number, got {value!r}")
        return value

    @field_validator("workers", "expect_workers")
    @classmethod
    def _count(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_WORKERS:
            raise ValueError(f"must be between 1 and {MAX_WORKERS}")
        return value

    @field_validator("master_bind_port", "master_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be a port number, 1-65535")
        return value

    @field_validator("metrics_listen", mode="before")
    @classmethod
    def _listen(cls, value: Any) -> tuple[str, int] | None:
        if value is None:
            return None
        host, sep, port_text = str(value).rpartition(":")
        if not sep or not port_text.isdigit() or int(port_text) > 65535:
            raise ValueError(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:9646 (port 0 picks a free one)")
        return host.strip("[]") or "127.0.0.1", int(port_text)

    @model_validator(mode="after")
    def _roles(self) -> LoadOptions:
        if self.master and self.worker:
            raise ValueError("--master and --worker exclude each other")
        if self.workers is not None and (self.master or self.worker):
            raise ValueError("--workers starts local workers; for several machines use --master or --worker")
        if self.master and self.expect_workers is None:
            raise ValueError("--master needs --expect-workers N")
        if self.expect_workers is not None and not self.master:
            raise ValueError("--expect-workers only goes with --master")
        if self.worker:
            if not self.master_host:
                raise ValueError("--worker needs --master-host")
            if self.metrics_listen is not None:
                raise ValueError("--metrics-listen is served by the master, not by a worker")
        elif self.master_host:
            raise ValueError("--master-host only goes with --worker")
        if self.scenario is None:
            raise ValueError("--scenario is required (a bundled name such as search, or a locustfile path)")
        if not self.worker and self.host is None:
            raise ValueError("--host is required, e.g. --host http://127.0.0.1:8000")
        return self

    @property
    def role(self) -> Role:
        if self.worker:
            return "worker"
        if self.master:
            return "master"
        return "local" if self.workers else "standalone"


def _options(args: argparse.Namespace) -> LoadOptions:
    fields = {name: getattr(args, name) for name in LoadOptions.model_fields}
    try:
        return LoadOptions.model_validate(fields)
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            where = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else ""
            text = str(error["msg"]).removeprefix("Value error, ")
            messages.append(f"{where}: {text}" if where else text)
        raise UsageError("load: " + "; ".join(messages)) from None


def _thresholds(options: LoadOptions) -> list[Threshold]:
    try:
        thresholds = parse_thresholds(options.threshold or DEFAULT_THRESHOLDS)
    except ThresholdError as exc:
        raise UsageError(f"load: --threshold: {exc}") from None
    if options.abort_on_fail and not any(t.is_error_rate for t in thresholds):
        raise UsageError("load: --abort-on-fail needs an error_rate threshold, e.g. 'error_rate<1%'")
    return thresholds


def handle(args: argparse.Namespace) -> int:
    options = _options(args)
    thresholds = _thresholds(options)
    assert options.scenario is not None
    scenario_name, scenario_path = resolve(options.scenario)
    if options.metrics_listen is not None and options.metrics_listen[1] != 0:
        from probes.asgi_server import bind_socket

        # Locust binds it seconds later, inside a child, where a taken port is a traceback.
        bind_socket(*options.metrics_listen).close()
    with tempfile.TemporaryDirectory(prefix="probe-agent-load-") as tmp:
        stats_path = Path(tmp) / "stats.json"
        plugin = PluginConfig(
            scenario=scenario_name,
            host=options.host,
            region=options.region,
            users=options.users,
            stats_path=str(stats_path),
            metrics_host=options.metrics_listen[0] if options.metrics_listen else None,
            metrics_port=options.metrics_listen[1] if options.metrics_listen else None,
            abort_thresholds=[t.expr for t in thresholds if t.is_error_rate] if options.abort_on_fail else [],
            abort_grace_seconds=options.abort_grace,
        )
        run = LocustRun(
            role=options.role,
            scenario=scenario_path,
            host=options.host,
            users=options.users,
            spawn_rate=options.spawn_rate or float(options.users),
            run_time=options.run_time,
            rate=options.rate,
            workers=options.workers or 0,
            expect_workers=options.expect_workers or 0,
            expect_workers_max_wait=max(1, round(options.expect_workers_max_wait)),
            master_bind_host=options.master_bind_host,
            master_bind_port=options.master_bind_port,
            master_host=options.master_host or "127.0.0.1",
            master_port=options.master_port,
            html=options.html,
            stop_timeout=options.stop_timeout,
            extra_args=options.locust_args,
            plugin=plugin,
        )
        outcome = launch(run)
        if run.role == "worker":
            return _worker_exit(outcome)
        if not stats_path.exists():
            raise CannotRun(_no_stats_message(outcome))
        raw = reports.load_raw(stats_path)
    if outcome.interrupted:
        print("probe-agent load: interrupted; reporting the run so far", file=sys.stderr, flush=True)
    code = _judge(raw, thresholds, options, interrupted=outcome.interrupted)
    # As a shell reports a command killed by a signal: 130 for Ctrl-C, 143 for SIGTERM.
    return 128 + (outcome.signal or signal.SIGINT) if outcome.interrupted else code


def _worker_exit(outcome: Outcome) -> int:
    # A worker's stats belong to its master's verdict; Locust exits 1 when its requests had failures.
    if outcome.master_returncode in (0, 1):
        return 0
    code = outcome.master_returncode
    raise CannotRun(f"load: the Locust worker exited with code {code} (see its output above)")


def _no_stats_message(outcome: Outcome) -> str:
    if outcome.timed_out:
        return "load: Locust did not finish within its bound and left no stats"
    if outcome.interrupted:
        return "load: interrupted before Locust reported any stats"
    return (
        f"load: Locust exited with code {outcome.master_returncode} before reporting any stats "
        "(see its output above: a broken scenario, a busy port, workers that never connected)"
    )


def _judge(raw: reports.RawRun, thresholds: list[Threshold], options: LoadOptions, *,
           interrupted: bool = False) -> int:
    report = reports.build_report(raw, thresholds, interrupted=interrupted)
    if options.report_json is not None:
        reports.write_json(report, options.report_json)
    if options.junit is not None:
        reports.write_junit(report, options.junit)
    if options.report_html is not None:
        reports.write_html(report, options.report_html)
    # Locust expands {u}/{r}/{t} in the HTML file name itself, so only a literal name can be checked.
    if options.html is not None and "{" not in options.html.name and not options.html.exists():
        print(f"probe-agent load: warning: Locust wrote no HTML report to {options.html}", file=sys.stderr)
    lines = reports.console_lines(report)
    if raw.worker_requests:
        shares = ", ".join(f"{count}" for count in sorted(raw.worker_requests.values(), reverse=True))
        lines.insert(1, f"probe-agent load: {len(raw.worker_requests)} workers reported requests: {shares}")
    print("\n".join(lines), flush=True)
    if report.requests == 0:
        raise CannotRun("load: no requests were made (is the scenario right for this host?)")
    return 0 if report.passed else 1
