"""`drill --export-promtool DIR`: a promtool rule unit test reproducing what a drill observed.

For each drill whose alerts fired, two files: `<drill>.rules.yml` (the alerting rule as Prometheus ran it,
plus the recording rules it reads; annotations left out, since their rendered $value depends on the moment)
and `<drill>.test.yml`: the input series as Prometheus stored them around the drill (query_range of the
rule's selectors at the scrape interval, `_` where there was no sample), no alert just before the
injection, and the alert firing at the measured time rounded down to the evaluation interval (or one
evaluation later, within the span where Prometheus' own ALERTS series shows it firing). The grid is
aligned with the rule group's own evaluations, so promtool evaluates at the instants Prometheus did.
`promtool test rules DIR/<drill>.test.yml` then pins the rule's behaviour in CI, no live stack needed.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from probes.drills import preflight, promql
from probes.drills.prometheus import AlertRule, PrometheusClient, RecordingRule, RuleGroup, ScrapeTiming
from probes.drills.results import DrillResult, Report


def _unix(text: str | None) -> float | None:
    if not text or text.startswith("0001-"):
        return None
    # Prometheus gives nanoseconds; Python reads at most microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(trimmed).timestamp()
    except ValueError:
        return None


def _seconds(value: float) -> str:
    return f"{round(value, 3):g}s"


def _series_name(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    labels = ",".join(f'{k}="{promql.escape_value(v)}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{labels}}}"


def _value(text: str) -> str:
    return {"NaN": "NaN", "+Inf": "Inf", "-Inf": "-Inf"}.get(text, text)


def _needed_recordings(query: str, recording: dict[str, RecordingRule], out: dict[str, RecordingRule]) -> None:
    for selector in promql.selectors(query):
        rule = recording.get(selector.name)
        if rule is not None and rule.name not in out:
            out[rule.name] = rule
            _needed_recordings(rule.query, recording, out)


async def _firing_span(prometheus: PrometheusClient, name: str, labels: dict[str, str], start: float,
                       step: float, points: int) -> list[float]:
    """Offsets from `start` (on the grid) at which Prometheus recorded the alert as firing."""
    selector = promql.Selector("ALERTS", [("alertname", "=", name), ("alertstate", "=", "firing")])
    result = await prometheus.query_range(selector.with_labels(labels).text(), start,
                                          start + (points - 1) * step, step)
    offsets = sorted({round((float(ts) - start) / step) * step for item in result
                      for ts, _ in item.get("values") or []})
    return [o for o in offsets if o <= (points - 1) * step]


def _run_around(offsets: list[float], at: float, step: float) -> list[float]:
    """The consecutive offsets (one step apart) that contain `at`; [] when `at` is not among them."""
    index = next((i for i, o in enumerate(offsets) if abs(o - at) < step / 2), None)
    if index is None:
        return []
    first = last = index
    while first > 0 and abs(offsets[first] - offsets[first - 1] - step) < step / 2:
        first -= 1
    while last + 1 < len(offsets) and abs(offsets[last + 1] - offsets[last] - step) < step / 2:
        last += 1
    return offsets[first:last + 1]


async def export_drill(
    prometheus: PrometheusClient,
    drill: DrillResult,
    groups: list[RuleGroup],
    recording: dict[str, RecordingRule],
    timing: ScrapeTiming,
    directory: Path,
) -> list[Path]:
    """Write the rule file and the test for one drill; [] when nothing fired (nothing to pin)."""
    fired = [a for a in drill.alerts if a.firing is not None]
    if drill.injected_at is None or not fired:
        return []
    rules: dict[str, dict[str, Any]] = {}
    evaluation = 0.0
    phase: float | None = None
    needs: list[preflight.Need] = []
    records: dict[str, RecordingRule] = {}
    for alert in fired:
        for group in groups:
            entry = next((r for r in group.rules if r.get("type") == "alerting" and r.get("name") == alert.alert
                          and all(str((r.get("labels") or {}).get(k, v)) == v for k, v in alert.labels.items())),
                         None)
            if entry is None:
                continue
            evaluation = max(evaluation, group.interval or timing.evaluation_interval)
            phase = phase if phase is not None else _unix(group.last_evaluation)
            rules[alert.alert] = {
                "alert": alert.alert,
                "expr": str(entry.get("query")),
                **({"for": _seconds(float(entry.get("duration") or 0))} if entry.get("duration") else {}),
                **({"labels": dict(entry["labels"])} if entry.get("labels") else {}),
            }
            rule = AlertRule(alert.alert, str(entry.get("query")), float(entry.get("duration") or 0),
                             {str(k): str(v) for k, v in (entry.get("labels") or {}).items()}, group.name,
                             group.interval)
            needs += preflight.needs(rule, {"alertname": alert.alert, **alert.labels}, recording)
            _needed_recordings(rule.query, recording, records)
            break
    if not rules or not evaluation:
        return []
    step = min(timing.for_alert(a.seen_labels, rules[a.alert]["expr"]) for a in fired if a.alert in rules)
    windows = [n.selector.range_seconds or 0.0 for n in needs]
    windows += [s.range_seconds or 0.0 for r in records.values() for s in promql.selectors(r.query)]
    baseline = max(windows, default=0.0) + 3 * evaluation
    first = drill.injected_at - baseline
    if phase is None:
        phase = first
    start = phase - math.ceil((phase - first) / evaluation) * evaluation
    latest = max(a.firing or 0.0 for a in fired)
    end = drill.injected_at + latest + 3 * evaluation
    points = round((end - start) / step) + 1

    input_series = []
    seen: set[str] = set()
    for need in needs:
        for item in await prometheus.query_range(need.text, start, start + (points - 1) * step, step):
            metric = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            metric.setdefault("__name__", need.selector.name)
            name = _series_name(metric)
            if name in seen:
                continue
            seen.add(name)
            values = ["_"] * points
            for ts, raw in item.get("values") or []:
                index = round((float(ts) - start) / step)
                if 0 <= index < points:
                    values[index] = _value(str(raw))
            input_series.append({"series": name, "values": " ".join(values)})

    injected = drill.injected_at - start
    before = math.floor(injected / evaluation - 1e-9) * evaluation
    tests: list[dict[str, Any]] = []
    for alert in fired:
        if alert.alert not in rules:
            continue
        # The alert fired at an evaluation before the runner saw it (at most a poll later), on this grid:
        # round down. Rounding up can land after the revert, when the replay has already resolved it.
        at = math.floor((injected + (alert.firing or 0.0)) / evaluation + 1e-9) * evaluation
        span = _run_around(await _firing_span(prometheus, alert.alert, alert.labels, start, step, points),
                           at, step)
        if span:
            # Prometheus' own ALERTS series says when it fired. The replay reads the stored samples a
            # moment after Prometheus did (it can see a scrape one evaluation earlier: start and end of
            # firing earlier), and a resampled window can cross its threshold one evaluation later: the
            # span's first evaluation for a short span, its second for a longer one, is firing in both.
            at = span[min((len(span) - 1) // 2, 1)]
        expected = alert.firing_labels or [alert.seen_labels]
        tests.append({"eval_time": _seconds(before), "alertname": alert.alert, "exp_alerts": []})
        tests.append({
            "eval_time": _seconds(at),
            "alertname": alert.alert,
            "exp_alerts": [{"exp_labels": {k: v for k, v in sorted(labels.items()) if k != "alertname"}}
                           for labels in expected],
        })

    group_rules: list[dict[str, Any]] = [
        {"record": r.name, "expr": r.query} for r in records.values()
    ] + list(rules.values())
    return _write(directory, drill, group_rules, evaluation, step, injected, input_series, tests)


def _write(directory: Path, drill: DrillResult, group_rules: list[dict[str, Any]], evaluation: float,
           step: float, injected: float, input_series: list[dict[str, str]], tests: list[dict[str, Any]]
           ) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    rules_path = directory / f"{drill.name}.rules.yml"
    test_path = directory / f"{drill.name}.test.yml"
    rules_doc = {"groups": [{"name": f"drill-{drill.name}", "interval": _seconds(evaluation),
                             "rules": group_rules}]}
    rules_path.write_text(
        f"# Rules as Prometheus ran them during drill {drill.name} (annotations left out).\n"
        + yaml.safe_dump(rules_doc, sort_keys=False, width=1000), encoding="utf-8")
    test_doc = {
        "rule_files": [rules_path.name],
        "evaluation_interval": _seconds(evaluation),
        "tests": [{
            "name": f"drill {drill.name}: fault injected at {_seconds(injected)}",
            "interval": _seconds(step),
            "input_series": input_series,
            "alert_rule_test": tests,
        }],
    }
    test_path.write_text(
        f"# What Prometheus saw during drill {drill.name} ({drill.started_at}); "
        f"check with: promtool test rules {test_path.name}\n"
        + yaml.safe_dump(test_doc, sort_keys=False, width=1000), encoding="utf-8")
    return [rules_path, test_path]


async def export(prometheus: PrometheusClient, report: Report, directory: Path) -> list[Path]:
    groups = await prometheus.groups()
    recording = await prometheus.recording_rules()
    timing = await prometheus.timing()
    written: list[Path] = []
    for drill in report.drills:
        written += await export_drill(prometheus, drill, groups, recording, timing, directory)
    return written
