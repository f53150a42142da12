"""The drill ledger as Prometheus metrics: when each alert was last drilled, last drilled successfully,
and what the last drill measured. Written as a node_exporter textfile (`--metrics-file`) or pushed to a
Pushgateway (`--metrics-push`), so "an alert nobody has drilled for 90 days" can itself be an alert.

Both keep the alerts this run did not drill, and an alert's last success when this run failed: the
previous values are read back (the file, or the Pushgateway's /metrics) and merged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from probes.drills.results import Report
from probes.errors import CannotRun

JOB = "probe_agent_drill"
HELP = {
    "probe_drill_last_run_timestamp_seconds": "Unix time of the last fire drill of this alert.",
    "probe_drill_last_success_timestamp_seconds": "Unix time of the last fire drill of this alert that passed.",
    "probe_drill_last_passed": "1 if the last fire drill of this alert passed, else 0.",
    "probe_drill_time_to_firing_seconds": "Injection to firing in the last drill (absent: it did not fire).",
    "probe_drill_time_to_notified_seconds": "Injection to the firing notification in the last drill.",
    "probe_drill_time_to_resolved_seconds": "Revert to resolution in the last drill.",
    "probe_drill_bound_seconds": "The computed bound from injection to firing in the last drill.",
}
# Replaced as a whole by a new drill of the alert (a stage that did not happen this time disappears).
_PER_RUN = [name for name in HELP if name != "probe_drill_last_success_timestamp_seconds"]

Samples = dict[tuple[str, str], float]  # (metric, alert) -> value


def from_report(report: Report) -> Samples:
    samples: Samples = {}
    for drill in report.drills:
        if not drill.injected or drill.injected_at is None:
            continue  # nothing was tried: not a drill of the alert
        for alert in drill.alerts:
            passed = drill.error is None and alert.passed
            key = alert.alert
            for name in _PER_RUN:
                samples.pop((name, key), None)
            samples[("probe_drill_last_run_timestamp_seconds", key)] = drill.injected_at
            samples[("probe_drill_last_passed", key)] = 1.0 if passed else 0.0
            if passed:
                samples[("probe_drill_last_success_timestamp_seconds", key)] = drill.injected_at
            for name, value in (
                ("probe_drill_time_to_firing_seconds", alert.firing),
                ("probe_drill_time_to_notified_seconds", alert.notified),
                ("probe_drill_time_to_resolved_seconds", alert.resolved),
                ("probe_drill_bound_seconds", alert.bound.firing if alert.bound and alert.bound.reachable
                 else None),
            ):
                if value is not None:
                    samples[(name, key)] = value
    return samples


def parse(text: str, job: str | None = None) -> Samples:
    """Our metrics from exposition text (a previous textfile, or a Pushgateway's /metrics for `job`)."""
    samples: Samples = {}
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:
        return samples  # unreadable: start over rather than refuse to record this drill
    for family in families:
        for sample in family.samples:
            if sample.name not in HELP or "alert" not in sample.labels:
                continue
            if job is not None and sample.labels.get("job") != job:
                continue
            samples[(sample.name, sample.labels["alert"])] = float(sample.value)
    return samples


def merge(previous: Samples, current: Samples) -> Samples:
    drilled = {alert for _, alert in current}
    kept = {k: v for k, v in previous.items()
            if k[1] not in drilled or k[0] == "probe_drill_last_success_timestamp_seconds"}
    return {**kept, **current}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(samples: Samples) -> str:
    lines = []
    for name, help_text in HELP.items():
        rows = sorted((alert, value) for (metric, alert), value in samples.items() if metric == name)
        if not rows:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f'{name}{{alert="{_escape(alert)}"}} {value!r}' for alert, value in rows]
    return "\n".join(lines) + "\n"


def write_textfile(path: str, report: Report) -> None:
    """Merge into `path` and replace it atomically (node_exporter must never read half a file)."""
    target = Path(path)
    previous: Samples = {}
    if target.exists():
        previous = parse(target.read_text(encoding="utf-8", errors="replace"))
    text = render(merge(previous, from_report(report)))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def push(url: str, report: Report) -> None:
    """PUT the merged ledger to a Pushgateway's group `job="probe_agent_drill"`."""
    base = url.rstrip("/")
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            current = await client.get(f"{base}/metrics")
            previous = parse(current.text, JOB) if current.status_code == 200 else {}
            text = render(merge(previous, from_report(report)))
            response = await client.put(f"{base}/metrics/job/{JOB}", content=text.encode(),
                                        headers={"Content-Type": "text/plain; version=0.0.4"})
        except httpx.HTTPError as exc:
            raise CannotRun(f"Pushgateway at {base} is unreachable: {exc}") from None
    if response.status_code >= 300:
        raise CannotRun(f"Pushgateway at {base} refused the drill metrics: {response.status_code} "
                        f"{response.text[:200]}")
