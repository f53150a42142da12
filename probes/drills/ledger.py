"""`probe-agent drill ledger`: every alert in the rule files with its last drill, from the JSON reports.

An alert that was never drilled, or not within `--max-age`, is an alert nobody knows to work.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from probes.durations import format_duration
from probes.errors import UsageError


@dataclass
class Entry:
    alert: str
    rule_file: str
    last_run: float | None = None
    last_success: float | None = None
    last_passed: bool | None = None
    last_report: str | None = None

    def status(self, now: float, max_age: float) -> str:
        if self.last_run is None:
            return "never drilled"
        if now - self.last_run > max_age:
            return f"not drilled in {format_duration(max_age)}"
        return "ok"

    def to_json(self, now: float, max_age: float) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "rule_file": self.rule_file,
            "last_run": _iso(self.last_run),
            "last_success": _iso(self.last_success),
            "last_passed": self.last_passed,
            "last_report": self.last_report,
            "status": self.status(now, max_age),
        }


def _iso(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")


def rule_alerts(directory: Path) -> list[tuple[str, str]]:
    """(alert, file) for every alerting rule in the rule files under `directory`."""
    if not directory.is_dir():
        raise UsageError(f"--rules {directory}: not a directory")
    found: list[tuple[str, str]] = []
    for path in sorted([*directory.rglob("*.yml"), *directory.rglob("*.yaml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"{path}: not a readable rule file: {exc}") from None
        groups = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(groups, list):
            continue  # not a rule file (a promtool test, say)
        for group in groups:
            for rule in (group or {}).get("rules") or []:
                if isinstance(rule, dict) and "alert" in rule:
                    found.append((str(rule["alert"]), str(path.relative_to(directory))))
    return found


def _drills_of(report: Any) -> list[dict[str, Any]]:
    """The drills in a drill report, or in every step of a sweep report."""
    if not isinstance(report, dict):
        return []
    drills = [d for d in report.get("drills") or [] if isinstance(d, dict)]
    for step in report.get("steps") or []:
        if isinstance(step, dict):
            drills += [d for d in step.get("drills") or [] if isinstance(d, dict)]
    return drills


def _when(drill: dict[str, Any]) -> float | None:
    """When the drill injected its fault; None when it stopped before (then it drilled nothing)."""
    if "injected_at" in drill:
        value = drill["injected_at"]
        return float(value) if isinstance(value, int | float) else None
    started = drill.get("started_at")
    if isinstance(started, str) and started:
        try:
            return datetime.fromisoformat(started).timestamp()
        except ValueError:
            return None
    return None


def collect(rules: Path, reports: Path) -> list[Entry]:
    entries: dict[str, Entry] = {}
    for alert, rule_file in rule_alerts(rules):
        entries.setdefault(alert, Entry(alert, rule_file))
    if not reports.is_dir():
        raise UsageError(f"--reports {reports}: not a directory")
    for path in sorted(reports.rglob("*.json")):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # other JSON files may live there too
        for drill in _drills_of(report):
            when = _when(drill)
            if when is None:
                continue
            for alert in drill.get("alerts") or []:
                entry = entries.get(str(alert.get("alert")))
                if entry is None:
                    continue
                passed = bool(alert.get("passed")) and drill.get("error") is None
                if entry.last_run is None or when >= entry.last_run:
                    entry.last_run, entry.last_passed, entry.last_report = when, passed, str(path)
                if passed and (entry.last_success is None or when > entry.last_success):
                    entry.last_success = when
    return sorted(entries.values(), key=lambda e: e.alert)


def table(entries: list[Entry], now: float, max_age: float) -> str:
    lines = [f"{'ALERT':<32} {'LAST DRILL (UTC)':<20} {'RESULT':<7} {'LAST SUCCESS (UTC)':<20} STATUS"]
    for e in entries:
        last = _short(e.last_run)
        result = "-" if e.last_passed is None else ("passed" if e.last_passed else "failed")
        lines.append(f"{e.alert[:32]:<32} {last:<20} {result:<7} {_short(e.last_success):<20} "
                     f"{e.status(now, max_age)}")
    bad = [e for e in entries if e.status(now, max_age) != "ok"]
    lines.append(f"{len(entries) - len(bad)}/{len(entries)} alerts drilled within {format_duration(max_age)}")
    return "\n".join(lines)


def _short(value: float | None) -> str:
    return "-" if value is None else datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M")


def run(rules: str, reports: str, max_age: float, fmt: str) -> int:
    now = time.time()
    entries = collect(Path(rules), Path(reports))
    if fmt == "json":
        print(json.dumps({"max_age_seconds": max_age, "alerts": [e.to_json(now, max_age) for e in entries]},
                         indent=2))
    else:
        print(table(entries, now, max_age))
    return 1 if any(e.status(now, max_age) != "ok" for e in entries) else 0
