"""Drill reports for machines: the JSON, JUnit XML (one testcase per expected alert), and a
plain-text summary for the terminal."""

from __future__ import annotations

import json
import math
from pathlib import Path

from probes import junit
from probes.drills.results import AlertResult, Report


def to_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return "never" if math.isinf(value) else f"{value:.1f}s"


def to_junit(report: Report) -> str:
    """A suite per drill, a testcase per expected alert; a drill that could not run errs every case."""
    suites = []
    for drill in report.drills:
        cases = [junit.Case(name=alert.alert, classname=f"drill.{drill.name}", time=alert.firing or 0.0,
                            error=drill.error or None,
                            failure=None if alert.passed or drill.error else (alert.message or "failed"),
                            details=_details(alert), output=_details(alert))
                 for alert in drill.alerts]
        suites.append(junit.Suite(drill.name, cases, timestamp=drill.started_at))
    return junit.render(suites, "probe-agent drill")


def _details(alert: AlertResult) -> str:
    bound = alert.bound
    return (
        f"pending {_seconds(alert.pending)}, firing {_seconds(alert.firing)} "
        f"(bound {bound.explain() if bound else '-'}, within {alert.within:g}s, "
        f"inside the bound: {alert.within_bound}), "
        f"notified {_seconds(alert.notified)}, resolved {_seconds(alert.resolved)} after revert"
    )


def _bound_range(alert: AlertResult) -> str:
    """`2.0-5.5s`, with `!` when the measured firing time fell outside it."""
    bound = alert.bound
    if bound is None:
        return "-"
    if not bound.reachable:
        return "never"
    mark = "!" if alert.within_bound is False else ""
    return f"{mark}{bound.firing_min:.1f}-{bound.firing:.1f}s"


def summary(report: Report) -> str:
    lines = []
    header = (
        f"{'DRILL':<28} {'ALERT':<24} {'PENDING':>8} {'FIRING':>8} {'BOUND':>13} {'NOTIFIED':>9} "
        f"{'RESOLVED':>9}  RESULT"
    )
    lines.append(header)
    for drill in report.drills:
        for alert in drill.alerts:
            bound = _bound_range(alert)
            verdict = "ok" if alert.passed and drill.passed else "FAIL"
            lines.append(
                f"{drill.name[:28]:<28} {alert.alert[:24]:<24} {_seconds(alert.pending):>8} "
                f"{_seconds(alert.firing):>8} {bound:>13} {_seconds(alert.notified):>9} "
                f"{_seconds(alert.resolved):>9}  {verdict}"
            )
        if drill.error:
            lines.append(f"  {drill.name}: error: {drill.error}")
        for alert in drill.alerts:
            if alert.message:
                lines.append(f"  {drill.name}: {alert.alert}: {alert.message}")
            if alert.within_bound is False and alert.bound is not None and alert.firing is not None:
                lines.append(f"  {drill.name}: {alert.alert}: fired at {alert.firing:.1f}s, outside the "
                             f"computed bound {alert.bound.explain()}")
    passed = sum(1 for d in report.drills if d.passed)
    lines.append(
        f"{passed}/{len(report.drills)} drills passed"
        + (f" (interrupted by {report.interrupted})" if report.interrupted else "")
    )
    return "\n".join(lines)


def write(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")
