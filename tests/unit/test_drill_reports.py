"""Drill reports: the JSON contract, JUnit (a testcase per expected alert), HTML with SVG."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from probes.drills import html_report, report
from probes.drills.bounds import Bound, Term
from probes.drills.results import AlertResult, DrillResult, Report


def _report() -> Report:
    bound = Bound("white-box", [
        Term("scrape", 1, "Prometheus config (scrape_interval)"),
        Term("second scrape for a range", 1, "Prometheus config (scrape_interval)"),
        Term("evaluation", 1, "Prometheus config (evaluation_interval)"),
        Term("for", 2, "rule", 2),
        Term("group_wait", 1, "Alertmanager route", 1, "notified"),
        Term("poll", 0.2, "drill file (poll_interval)", 0, "allowance"),
    ])
    good = AlertResult(alert="HighErrorRate", labels={"job": "api"}, within=20, notify=True, notify_within=26,
                       resolve_within=30, pending=2.1, firing=4.2, alertmanager=4.3, notified=5.2, resolved=6.0,
                       resolved_notified=6.5, bound=bound)
    late = AlertResult(alert="ProbeFailing", labels={}, within=3, notify=False, resolve_within=30, pending=2.0,
                       firing=4.0, resolved=1.0, bound=bound)
    never = AlertResult(alert="Never<Fires>", labels={}, within=5, notify=False, resolve_within=30, bound=None)
    first = DrillResult(name="errors", fault={"injector": "target", "ttl": "1m"}, alerts=[good], injected=True,
                        reverted=5.5, started_at="2026-01-01T00:00:00+00:00", fault_ref="abc")
    second = DrillResult(name="mixed", fault={"injector": "command"}, alerts=[late, never], injected=True,
                         reverted=5.0)
    failed_inject = DrillResult(name="broken", fault={"injector": "proxy"},
                                alerts=[AlertResult(alert="X", labels={}, within=5, notify=False)],
                                injected=True, error="inject failed: 500")
    for drill in (first, second, failed_inject):
        drill.judge()
    return Report(drills=[first, second, failed_inject])


def test_verdicts() -> None:
    first, second, broken = _report().drills
    assert first.passed and first.alerts[0].passed and first.alerts[0].message is None
    assert not second.passed
    assert second.alerts[0].message == "fired after 4.0s, later than within=3s"
    assert second.alerts[1].message == "did not fire within 5s"
    assert not broken.passed and broken.error == "inject failed: 500"


def test_json_contract() -> None:
    data = json.loads(report.to_json(_report()))
    assert data["passed"] is False
    drill = data["drills"][0]
    assert {"name", "passed", "error", "fault", "alerts"} <= set(drill)
    assert drill["fault"] == {"injector": "target", "ttl": "1m", "ref": "abc"}
    alert = drill["alerts"][0]
    assert {k: alert[k] for k in ("alert", "passed", "time_to_pending_seconds", "time_to_firing_seconds",
                                  "time_to_notified_seconds", "time_to_resolved_seconds", "bound_seconds")} == {
        "alert": "HighErrorRate", "passed": True, "time_to_pending_seconds": 2.1, "time_to_firing_seconds": 4.2,
        "time_to_notified_seconds": 5.2, "time_to_resolved_seconds": 6.0, "bound_seconds": 5.0}
    assert alert["bound_notified_seconds"] == 6.0 and alert["bound_min_seconds"] == 2.0
    # Every term with where it came from, and whether the measured time lies inside the bound.
    assert [t["term"] for t in alert["bound_terms"]] == [
        "scrape", "second scrape for a range", "evaluation", "for", "group_wait", "poll"]
    assert alert["bound_terms"][4] == {"term": "group_wait", "seconds": 1, "min_seconds": 1,
                                       "source": "Alertmanager route", "stage": "notified"}
    assert alert["within_bound"] is True and alert["measurement_allowance_seconds"] == 0.2
    never = data["drills"][1]["alerts"][1]
    assert never["time_to_firing_seconds"] is None and never["bound_seconds"] is None
    assert never["within_bound"] is None


def test_junit_has_a_testcase_per_alert() -> None:
    root = ET.fromstring(report.to_junit(_report()).split("\n", 1)[1])
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["errors", "mixed", "broken"]
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["HighErrorRate", "ProbeFailing", "Never<Fires>", "X"]
    assert cases[0].find("failure") is None
    assert cases[1].find("failure").get("message") == "fired after 4.0s, later than within=3s"  # type: ignore[union-attr]
    assert cases[3].find("error") is not None
    assert suites[1].get("failures") == "2" and suites[2].get("errors") == "1"


def test_html_has_a_timeline_per_drill_and_escapes() -> None:
    page = html_report.to_html(_report())
    assert page.count("<svg") == 3
    assert "Never&lt;Fires&gt;" in page and "Never<Fires>" not in page
    for word in ("injected", "reverted", "bound", "pending", "firing", "notified", "resolved"):
        assert word in page
    assert "1/3 passed" in page


def test_summary_table() -> None:
    text = report.summary(_report())
    assert "HighErrorRate" in text and "1/3 drills passed" in text
    assert "broken: error: inject failed: 500" in text
