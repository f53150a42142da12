"""The drill ledger: metrics that remember the last success across failed runs, and the ledger listing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from probes.drills import ledger, ledger_metrics
from probes.drills.results import AlertResult, DrillResult, Report
from probes.errors import UsageError
from tests.support.metrics import value


def _report(alert: str, passed: bool, at: float, firing: float | None = 4.2) -> Report:
    result = AlertResult(alert=alert, labels={}, within=20, notify=False, firing=firing if passed else None,
                         resolved=1.0 if passed else None)
    drill = DrillResult(name="d", fault={}, alerts=[result], injected=True, reverted=5.0, injected_at=at)
    drill.judge()
    assert drill.passed is passed
    return Report(drills=[drill])


def test_textfile_keeps_the_last_success_and_other_alerts(tmp_path: Path) -> None:
    path = tmp_path / "drills.prom"
    ledger_metrics.write_textfile(str(path), _report("ServiceDown", True, 1000.0))
    ledger_metrics.write_textfile(str(path), _report("HighErrorRate", True, 1500.0))
    ledger_metrics.write_textfile(str(path), _report("ServiceDown", False, 2000.0))
    text = path.read_text()
    assert "# TYPE probe_drill_last_run_timestamp_seconds gauge" in text
    assert value(text, "probe_drill_last_run_timestamp_seconds", alert="ServiceDown") == 2000.0
    assert value(text, "probe_drill_last_success_timestamp_seconds", alert="ServiceDown") == 1000.0
    assert value(text, "probe_drill_last_passed", alert="ServiceDown") == 0.0
    # The failed run did not fire: the earlier firing time is gone, not passed off as this run's.
    assert value(text, "probe_drill_time_to_firing_seconds", alert="ServiceDown") is None
    assert value(text, "probe_drill_last_run_timestamp_seconds", alert="HighErrorRate") == 1500.0
    assert [p.name for p in tmp_path.iterdir()] == ["drills.prom"]  # no temp file left behind


def test_a_drill_refused_before_injecting_is_not_recorded(tmp_path: Path) -> None:
    report = _report("ServiceDown", True, 1000.0)
    report.drills[0].injected, report.drills[0].injected_at = False, None
    assert ledger_metrics.from_report(report) == {}


def _write_rules(directory: Path) -> None:
    directory.mkdir()
    (directory / "a.yml").write_text("groups:\n  - name: g\n    rules:\n      - {alert: Old, expr: up == 0}\n"
                                     "      - {alert: Fresh, expr: up == 0}\n      - {alert: Never, expr: up == 0}\n"
                                     "      - {record: 'x:y', expr: up}\n")


def test_ledger_lists_fresh_stale_and_never_drilled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules, reports = tmp_path / "rules", tmp_path / "reports"
    _write_rules(rules)
    reports.mkdir()
    now = time.time()
    (reports / "old.json").write_text(json.dumps({"drills": [
        {"name": "o", "injected_at": now - 100 * 86400, "error": None, "alerts": [{"alert": "Old", "passed": True}]}]}))
    (reports / "sweep.json").write_text(json.dumps({"steps": [{"value": 0.1, "drills": [
        {"name": "f", "injected_at": now - 60, "error": None, "alerts": [{"alert": "Fresh", "passed": False}]}]}]}))
    (reports / "refused.json").write_text(json.dumps({"drills": [
        {"name": "r", "injected_at": None, "error": "x", "alerts": [{"alert": "Never", "passed": False}]}]}))
    (reports / "other.json").write_text("[1, 2")
    assert ledger.run(str(rules), str(reports), 90 * 86400, "table") == 1
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert lines["Old"].endswith("not drilled in 90d")
    assert lines["Fresh"].endswith("ok") and " failed " in lines["Fresh"]
    assert lines["Never"].endswith("never drilled")
    assert "1/3 alerts drilled within 90d" in out
    with pytest.raises(UsageError, match="not a directory"):
        ledger.run(str(rules), str(reports / "nope"), 90 * 86400, "table")
