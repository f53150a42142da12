"""How `once` prints results: a table for people, JSON for scripts, JUnit XML for CI."""

from __future__ import annotations

import json

from probes import junit as junit_xml
from probes.result import ProbeResult


def state_word(result: ProbeResult) -> str:
    if not result.success:
        return "FAIL"
    return "DEGRADED" if result.degraded else "OK"


def table(results: list[ProbeResult]) -> str:
    rows = [("PROBE", "TYPE", "RESULT", "DURATION", "REASON", "MESSAGE")]
    for r in results:
        rows.append((r.probe, r.type, state_word(r), f"{r.duration_seconds * 1000:.1f}ms", r.reason or "-", r.message))
        for s in r.steps or ():
            state = "OK" if s.success else ("SKIP" if s.reason == "skipped" else "FAIL")
            rows.append((f"  └ {s.step}", "", state, f"{s.duration_seconds * 1000:.1f}ms", s.reason or "-", s.message))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5] for row in rows
    )


def as_json(results: list[ProbeResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2)


def junit(results: list[ProbeResult], suite: str = "probe-agent") -> str:
    """One suite per run: a testcase per probe, and for a probe with steps a testcase per step."""
    cases = []
    for r in results:
        cases.append(junit_xml.Case(
            name=r.probe, classname=f"{suite}.{r.type}", time=r.duration_seconds,
            failure=None if r.success else r.message, failure_type=r.reason or "error",
            output=r.message if r.success and r.degraded else None))
        for s in r.steps or ():
            skipped = s.reason == "skipped"
            cases.append(junit_xml.Case(
                name=s.step, classname=f"{suite}.{r.probe}", time=s.duration_seconds,
                skipped=s.message if skipped else None,
                failure=None if s.success or skipped else s.message, failure_type=s.reason or "error"))
    return junit_xml.render([junit_xml.Suite(suite, cases)], "probe-agent")
