"""From the Locust master's raw stats to the verdict and the reports: JSON, JUnit, console.

The Locust side (`locust_plugin`) dumps its aggregated stats, response-time histogram included, as
`RawRun`; everything here is pure Python so the `probe-agent` process never imports Locust. Percentiles
use Locust's own algorithm over its rounded response-time buckets, so our numbers match Locust's
console and HTML report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from probes import junit
from probes.load.thresholds import Observation, Threshold, ThresholdResult, evaluate_all
from probes.page_style import style_tag


class RawEntry(BaseModel):
    """One Locust StatsEntry (a request name + method, or the total), as the plugin dumps it."""

    model_config = ConfigDict(extra="ignore")

    name: str
    method: str = ""
    num_requests: int = 0
    num_none_requests: int = 0
    num_failures: int = 0
    total_response_time: float = 0.0
    min_response_time: float | None = None
    max_response_time: float = 0.0
    response_times: dict[float, int] = {}


class RawError(BaseModel):
    name: str
    method: str = ""
    error: str
    occurrences: int


class RawRun(BaseModel):
    """The file the Locust master (or standalone process) writes when it quits."""

    model_config = ConfigDict(extra="ignore")

    scenario: str
    host: str | None = None
    region: str | None = None
    users: int = 0
    workers: int = 0
    worker_requests: dict[str, int] = {}
    test_start: float | None = None
    test_stop: float | None = None
    start_time: float | None = None
    last_request_timestamp: float | None = None
    aborted: str | None = None
    entries: list[RawEntry] = []
    total: RawEntry
    errors: list[RawError] = []

    @property
    def duration_seconds(self) -> float:
        if self.test_start is None:
            return 0.0
        end = self.test_stop if self.test_stop is not None else self.last_request_timestamp or self.test_start
        return max(0.0, end - self.test_start)

    @property
    def elapsed_for_rps(self) -> float:
        # Locust's own definition (StatsEntry.total_rps): first stats reset to the last request.
        if self.start_time is None or self.last_request_timestamp is None:
            return 0.0
        return max(0.0, self.last_request_timestamp - self.start_time)


def response_time_percentile(entry: RawEntry, percent: float) -> float:
    """Locust's calculate_response_time_percentile, clamped to the exact min/max like its median."""
    counted = entry.num_requests - entry.num_none_requests
    if counted <= 0 or not entry.response_times:
        return 0.0
    wanted = int(counted * percent)
    processed = 0
    value = 0.0
    for bucket in sorted(entry.response_times, reverse=True):
        processed += entry.response_times[bucket]
        if counted - processed <= wanted:
            value = bucket
            break
    if value > entry.max_response_time:
        value = entry.max_response_time
    if entry.min_response_time is not None and value < entry.min_response_time:
        value = entry.min_response_time
    return float(value)


def merge_entries(name: str, entries: Iterable[RawEntry]) -> RawEntry:
    """One request name may be logged under several methods; thresholds and by_name judge the name."""
    merged = RawEntry(name=name)
    histogram: dict[float, int] = {}
    for entry in entries:
        merged.num_requests += entry.num_requests
        merged.num_none_requests += entry.num_none_requests
        merged.num_failures += entry.num_failures
        merged.total_response_time += entry.total_response_time
        merged.max_response_time = max(merged.max_response_time, entry.max_response_time)
        if entry.min_response_time is not None:
            merged.min_response_time = (
                entry.min_response_time
                if merged.min_response_time is None
                else min(merged.min_response_time, entry.min_response_time)
            )
        for bucket, count in entry.response_times.items():
            histogram[bucket] = histogram.get(bucket, 0) + count
    merged.response_times = histogram
    return merged


def observation(entry: RawEntry, elapsed: float) -> Observation:
    counted = entry.num_requests - entry.num_none_requests
    return Observation(
        requests=entry.num_requests,
        failures=entry.num_failures,
        rps=entry.num_requests / elapsed if elapsed > 0 else 0.0,
        avg_ms=entry.total_response_time / counted if counted > 0 else 0.0,
        min_ms=entry.min_response_time or 0.0,
        max_ms=entry.max_response_time,
        percentile_ms=lambda percent: response_time_percentile(entry, percent),
    )


def summary(data: Observation) -> dict[str, float | int]:
    """The `stats` block of the JSON report (and each `by_name` value)."""
    has_times = data.requests > 0
    return {
        "requests": data.requests,
        "failures": data.failures,
        "rps": round(data.rps, 3),
        "error_rate": round(data.error_rate, 6),
        "avg_ms": round(data.avg_ms, 3),
        "p50_ms": round(data.percentile_ms(0.50), 3) if has_times else 0.0,
        "p95_ms": round(data.percentile_ms(0.95), 3) if has_times else 0.0,
        "p99_ms": round(data.percentile_ms(0.99), 3) if has_times else 0.0,
    }


@dataclass
class LoadReport:
    raw: RawRun
    results: list[ThresholdResult]
    total: Observation
    by_name: dict[str, Observation]
    interrupted: bool = False
    """Stopped by a signal before its run time: judged on what ran, but never a pass."""

    @property
    def requests(self) -> int:
        return self.total.requests

    @property
    def passed(self) -> bool:
        return self.requests > 0 and not self.interrupted and all(result.passed for result in self.results)

    def as_dict(self) -> dict[str, object]:
        """The JSON report contract: exactly these keys."""
        return {
            "passed": self.passed,
            "interrupted": self.interrupted,
            "thresholds": [result.as_dict() for result in self.results],
            "stats": summary(self.total),
            "by_name": {name: summary(data) for name, data in sorted(self.by_name.items())},
            "scenario": self.raw.scenario,
            "host": self.raw.host,
            "region": self.raw.region,
            "users": self.raw.users,
            "duration_seconds": round(self.raw.duration_seconds, 3),
        }


def build_report(raw: RawRun, thresholds: list[Threshold], *, interrupted: bool = False) -> LoadReport:
    elapsed = raw.elapsed_for_rps
    groups: dict[str, list[RawEntry]] = {}
    for entry in raw.entries:
        groups.setdefault(entry.name, []).append(entry)
    merged = {name: merge_entries(name, entries) for name, entries in groups.items()}
    by_name = {name: observation(entry, elapsed) for name, entry in merged.items()}
    total = observation(raw.total, elapsed)
    return LoadReport(raw=raw, results=evaluate_all(thresholds, total, by_name), total=total, by_name=by_name,
                      interrupted=interrupted)


def load_raw(path: Path) -> RawRun:
    return RawRun.model_validate_json(path.read_text(encoding="utf-8"))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_json(report: LoadReport, path: Path) -> None:
    _write(path, json.dumps(report.as_dict(), indent=2) + "\n")


def _unit(expr: str) -> str:
    metric = expr.rpartition(":")[2]
    if metric.startswith("error_rate"):
        return "%"
    if metric.startswith("rps"):
        return " req/s"
    return " ms"


def describe(result: ThresholdResult) -> str:
    if result.observed is None:
        return "no data (no requests of that name were made)"
    return f"observed {result.observed:g}{_unit(result.expr)}"


def junit_xml(report: LoadReport) -> str:
    """One testcase per threshold, as CI servers expect; plus a testcase for 'requests were made'."""
    raw = report.raw
    classname = f"load.{raw.scenario}"
    stats = summary(report.total)
    properties = {str(k): str(v) for k, v in [
        ("scenario", raw.scenario), ("host", raw.host or ""), ("region", raw.region or ""), ("users", raw.users),
        ("workers", raw.workers), ("aborted", raw.aborted or ""), *stats.items()]}
    cases = [junit.Case(name="requests were made", classname=classname,
                        failure=None if report.requests else "no requests were made", failure_type="no_requests")]
    if report.interrupted:
        cases.append(junit.Case(name="ran to the end", classname=classname, failure_type="interrupted",
                                failure=f"interrupted after {raw.duration_seconds:.1f}s"))
    for result in report.results:
        cases.append(junit.Case(
            name=result.expr, classname=classname, failure_type="threshold",
            failure=None if result.passed else f"threshold {result.expr} breached: {describe(result)}"))
    suite = junit.Suite(
        name=f"probe-agent load {raw.scenario}", cases=cases, time=raw.duration_seconds, properties=properties,
        timestamp=datetime.fromtimestamp(raw.test_start or 0, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return junit.render([suite], "probe-agent load")


def write_junit(report: LoadReport, path: Path) -> None:
    _write(path, junit_xml(report))


def console_lines(report: LoadReport) -> list[str]:
    """The verdict as a CI log shows it, after Locust's own tables."""
    stats = summary(report.total)
    lines = [
        f"probe-agent load: {report.raw.scenario} against {report.raw.host}: "
        f"{stats['requests']} requests, {stats['failures']} failures "
        f"({float(stats['error_rate']) * 100:.2f}%), "
        f"{stats['rps']:.1f} req/s, avg {stats['avg_ms']:.1f} ms, p95 {stats['p95_ms']:.0f} ms, "
        f"p99 {stats['p99_ms']:.0f} ms over {report.raw.duration_seconds:.1f}s",
    ]
    if report.raw.aborted:
        lines.append(f"probe-agent load: aborted early: {report.raw.aborted}")
    for result in report.results:
        verdict = "PASS" if result.passed else "FAIL"
        lines.append(f"  {verdict}  {result.expr:<28} {describe(result)}")
    if not report.requests:
        lines.append("  FAIL  no requests were made")
    if report.interrupted:
        lines.append(f"probe-agent load: INTERRUPTED after {report.raw.duration_seconds:.1f}s "
                     "(the thresholds above describe the part that ran; an interrupted run never passes)")
    else:
        lines.append(f"probe-agent load: {'PASSED' if report.passed else 'FAILED'}")
    return lines


def to_html(report: LoadReport) -> str:
    """The verdict as one self-contained page in the look of the status page and the drill report."""
    raw = report.raw
    verdict = ("interrupted", "fail") if report.interrupted else (("passed", "pass") if report.passed
                                                                  else ("failed", "fail"))
    title = f"Load {raw.scenario} against {raw.host or '-'}: {verdict[0].upper()}"
    rows = "".join(
        f"<tr><td><code>{escape(r.expr)}</code></td><td><span class='badge {'pass' if r.passed else 'fail'}'>"
        f"{'PASS' if r.passed else 'FAIL'}</span></td><td>{escape(describe(r))}</td></tr>"
        for r in report.results)
    columns = ("requests", "failures", "error_rate", "rps", "avg_ms", "p50_ms", "p95_ms", "p99_ms")

    def stats_row(name: str, data: Observation) -> str:
        values = summary(data)
        cells = "".join(f"<td class='num'>{_cell(values[c], c)}</td>" for c in columns)
        return f"<tr><td>{escape(name)}</td>{cells}</tr>"

    stats = stats_row("all requests", report.total) + "".join(
        stats_row(name, data) for name, data in sorted(report.by_name.items()))
    head = "".join(f"<th class='num'>{c.replace('_', ' ')}</th>" for c in columns)
    facts = (f"{raw.users} users · {raw.duration_seconds:.1f}s · region {escape(raw.region or '-')}"
             + (f" · aborted early: {escape(raw.aborted)}" if raw.aborted else ""))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"{style_tag()}</head><body><h1>{escape(title)}</h1>"
            f"<p><span class='badge {verdict[1]}'>{verdict[0].upper()}</span> <span class='muted'>{facts}</span></p>"
            "<h2>Thresholds</h2>"
            f"<table><tr><th>threshold</th><th>result</th><th>observed</th></tr>{rows}</table>"
            f"<h2>Requests</h2><table><tr><th>name</th>{head}</tr>{stats}</table></body></html>\n")


def _cell(value: float | int, column: str) -> str:
    if column == "error_rate":
        return f"{float(value) * 100:.2f}%"
    return f"{value}" if isinstance(value, int) else f"{value:.1f}"


def write_html(report: LoadReport, path: Path) -> None:
    _write(path, to_html(report))
