"""From the Locust master's raw stats to the JSON report, JUnit and the console verdict."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from probes.load.report import (
    RawEntry,
    RawRun,
    build_report,
    console_lines,
    junit_xml,
    load_raw,
    response_time_percentile,
    write_json,
    write_junit,
)
from probes.load.thresholds import parse_thresholds

STATS_KEYS = {"requests", "failures", "rps", "error_rate", "avg_ms", "p50_ms", "p95_ms", "p99_ms"}


def entry(name: str, method: str = "GET", times: dict[float, int] | None = None, failures: int = 0,
          none: int = 0) -> dict[str, Any]:
    times = times or {}
    count = sum(times.values()) + none
    return {
        "name": name, "method": method, "num_requests": count, "num_none_requests": none,
        "num_failures": failures, "total_response_time": sum(k * v for k, v in times.items()),
        "min_response_time": min(times) if times else None, "max_response_time": max(times) if times else 0,
        "response_times": {str(k): v for k, v in times.items()},
    }


def raw_run(entries: list[dict[str, Any]], total: dict[str, Any] | None = None) -> RawRun:
    if total is None:
        merged: dict[float, int] = {}
        for e in entries:
            for k, v in e["response_times"].items():
                merged[float(k)] = merged.get(float(k), 0) + v
        total = entry("Aggregated", "", merged, failures=sum(e["num_failures"] for e in entries))
    return RawRun.model_validate({
        "scenario": "search", "host": "http://127.0.0.1:8000", "region": "eu-west-1", "users": 5,
        "test_start": 1000.0, "test_stop": 1010.0, "start_time": 1000.0, "last_request_timestamp": 1010.0,
        "entries": entries, "total": total,
    })


def test_percentiles_follow_locust_buckets_and_clamp_to_max() -> None:
    data = RawEntry(name="x", num_requests=100, response_times={10: 90, 20: 9, 150: 1},
                    min_response_time=9.5, max_response_time=147.0, total_response_time=1200)
    assert response_time_percentile(data, 0.5) == 10
    assert response_time_percentile(data, 0.95) == 20
    assert response_time_percentile(data, 0.98) == 20
    # Locust counts the slowest 1% from the top: p99 is the 150 bucket, above the exact max, so it is
    # clamped the way Locust clamps its median.
    assert response_time_percentile(data, 0.99) == 147.0
    assert response_time_percentile(data, 1.0) == 147.0
    assert response_time_percentile(RawEntry(name="empty"), 0.95) == 0.0


def test_report_shape_and_numbers() -> None:
    raw = raw_run([
        entry("search", "GET", {5: 80, 10: 15, 50: 5}, failures=2),
        entry("item", "GET", {3: 50}),
    ])
    report = build_report(raw, parse_thresholds(["p95<100ms", "error_rate<1%", "search:p99<20ms", "rps>10"]))
    doc = report.as_dict()
    assert set(doc) == {"passed", "interrupted", "thresholds", "stats", "by_name", "scenario", "host", "region",
                        "users", "duration_seconds"}
    assert set(doc["stats"]) == STATS_KEYS and set(doc["by_name"]) == {"search", "item"}
    assert all(set(v) == STATS_KEYS for v in doc["by_name"].values())
    stats = doc["stats"]
    assert stats["requests"] == 150 and stats["failures"] == 2
    assert stats["rps"] == pytest.approx(15.0)
    assert stats["error_rate"] == pytest.approx(2 / 150, abs=1e-6)
    assert doc["by_name"]["item"]["p95_ms"] == 3
    assert doc["by_name"]["search"]["p99_ms"] == 50
    assert [t["passed"] for t in doc["thresholds"]] == [True, False, False, True]
    assert doc["thresholds"][1]["observed"] == pytest.approx(1.333, abs=1e-3)
    assert doc["passed"] is False
    assert doc["duration_seconds"] == 10.0 and doc["users"] == 5 and doc["region"] == "eu-west-1"


def test_same_name_several_methods_is_one_name() -> None:
    raw = raw_run([entry("token", "POST", {10: 10}), entry("token", "GET", {30: 10}, failures=1)])
    doc = build_report(raw, parse_thresholds(["token:error_rate<10%"])).as_dict()
    assert doc["by_name"]["token"]["requests"] == 20
    assert doc["by_name"]["token"]["failures"] == 1
    assert doc["thresholds"][0]["observed"] == 5.0


def test_no_requests_never_passes() -> None:
    report = build_report(raw_run([]), parse_thresholds(["p95<1s"]))
    assert report.requests == 0 and not report.passed
    assert report.as_dict()["stats"]["requests"] == 0
    assert "no requests were made" in "\n".join(console_lines(report))


def test_files_roundtrip(tmp_path: Path) -> None:
    raw = raw_run([entry("search", "GET", {5: 10})])
    path = tmp_path / "raw.json"
    path.write_text(raw.model_dump_json())
    report = build_report(load_raw(path), parse_thresholds(["p95<1ms", "error_rate<1%"]))
    write_json(report, tmp_path / "out" / "report.json")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["passed"] is False
    write_junit(report, tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"requests were made", "p95<1ms", "error_rate<1%"}
    failure = cases["p95<1ms"].find("failure")
    assert failure is not None and "observed 5 ms" in (failure.get("message") or "")
    assert cases["error_rate<1%"].find("failure") is None


def test_junit_escapes_and_console() -> None:
    report = build_report(raw_run([entry("a&b", "GET", {5: 10})]), parse_thresholds(["a&b:p95<1s"]))
    assert "a&amp;b:p95&lt;1s" in junit_xml(report)
    lines = console_lines(report)
    assert lines[-1] == "probe-agent load: PASSED"
    assert any("PASS  a&b:p95<1s" in line for line in lines)


def test_html_report_shows_the_verdict_in_the_shared_look() -> None:
    from probes.load.report import to_html
    from probes.page_style import CSS

    raw = raw_run([entry("search", "GET", {5: 80, 50: 20}, failures=3)])
    page = to_html(build_report(raw, parse_thresholds(["p95<20ms", "error_rate<10%"])))
    assert CSS in page and "<link" not in page
    assert "FAILED" in page and "<code>p95&lt;20ms</code>" in page and "badge fail" in page
    assert "<td>search</td>" in page and "3.00%" in page
    interrupted = to_html(build_report(raw, parse_thresholds(["error_rate<10%"]), interrupted=True))
    assert "INTERRUPTED" in interrupted and "PASSED" not in interrupted
    lines = console_lines(build_report(raw, parse_thresholds(["error_rate<10%"]), interrupted=True))
    assert lines[-1].startswith("probe-agent load: INTERRUPTED")
