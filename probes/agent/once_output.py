"""How `once` prints results: a table for people, JSON for scripts, JUnit XML for CI."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from probes.result import ProbeResult


def _state(result: ProbeResult) -> str:
    if not result.success:
        return "FAIL"
    return "DEGRADED" if result.degraded else "OK"


def table(results: list[ProbeResult]) -> str:
    rows = [("PROBE", "TYPE", "RESULT", "DURATION", "REASON", "MESSAGE")]
    for r in results:
        rows.append((r.probe, r.type, _state(r), f"{r.duration_seconds * 1000:.1f}ms", r.reason or "-", r.message))
        for s in r.steps:
            state = "OK" if s.success else ("SKIP" if s.reason == "skipped" else "FAIL")
            rows.append((f"  └ {s.step}", "", state, f"{s.duration_seconds * 1000:.1f}ms", s.reason or "-", s.message))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5] for row in rows
    )


def as_json(results: list[ProbeResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2)


def junit(results: list[ProbeResult], suite: str = "probe-agent") -> str:
    root = ET.Element("testsuites")
    failures = sum(1 for r in results if not r.success)
    element = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)),
                            failures=str(failures), errors="0",
                            time=f"{sum(r.duration_seconds for r in results):.3f}")
    for r in results:
        case = ET.SubElement(element, "testcase", classname=f"{suite}.{r.type}", name=r.probe,
                             time=f"{r.duration_seconds:.3f}")
        if not r.success:
            failure = ET.SubElement(case, "failure", type=r.reason or "error", message=r.message)
            failure.text = r.message
        elif r.degraded:
            ET.SubElement(case, "system-out").text = r.message
        for s in r.steps:
            step = ET.SubElement(element, "testcase", classname=f"{suite}.{r.probe}", name=s.step,
                                 time=f"{s.duration_seconds:.3f}")
            if s.reason == "skipped":
                ET.SubElement(step, "skipped", message=s.message)
            elif not s.success:
                ET.SubElement(step, "failure", type=s.reason or "error", message=s.message).text = s.message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
