"""`drill --sweep probability=0.05,0.1,0.25,0.5,1.0` (or `latency=200ms,500ms,1s`): the same drill at each
intensity, one after the other, and per step whether and when each expected alert fired: the smallest
fault each alert catches, next to what the computed bound predicted (a ratio rule cannot fire on a
fault rarer than its threshold).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any, TextIO

from probes.drills.results import Report
from probes.drills.spec import CommandFault, FaultApiFault, LoadedDrills, ToxiproxyFault
from probes.durations import parse_duration
from probes.errors import UsageError

PARAMETERS = ("probability", "latency")


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """`probability=0.05,0.1` -> ("probability", [0.05, 0.1]); `latency=300ms,1s` -> seconds."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in PARAMETERS:
        raise UsageError(f"--sweep {text!r}: use probability=0.05,0.1,... or latency=300ms,1s,...")
    out = []
    for raw in values.split(","):
        raw = raw.strip()
        try:
            value = float(raw) if name == "probability" else parse_duration(raw)
        except ValueError as exc:
            raise UsageError(f"--sweep {text!r}: {raw!r}: {exc}") from None
        if name == "probability" and not 0 < value <= 1:
            raise UsageError(f"--sweep {text!r}: a probability is in (0, 1], not {raw}")
        if name == "latency" and value <= 0:
            raise UsageError(f"--sweep {text!r}: a latency is positive, not {raw}")
        out.append(value)
    if len(out) < 2:
        raise UsageError(f"--sweep {text!r}: give at least two values")
    return name, out


def _label(parameter: str, value: float) -> str:
    return f"{value:g}" if parameter == "probability" else f"{value * 1000:g}ms"


def step(loaded: LoadedDrills, names: list[str] | None, parameter: str, value: float) -> LoadedDrills:
    """The drill file with each selected drill's fault set to this intensity."""
    spec = loaded.spec.model_copy(deep=True)
    for index, drill in enumerate(spec.drills):
        if names and drill.name not in names:
            continue
        fault = drill.fault
        where = loaded.error(("drills", index, "fault"), "")[:-2]
        if isinstance(fault, CommandFault):
            raise UsageError(f"{where}: a command fault has no intensity to sweep")
        if isinstance(fault, FaultApiFault):
            if parameter == "probability":
                fault.spec.probability = value
            elif fault.spec.type != "latency":
                raise UsageError(f"{where}: --sweep latency needs a latency fault (spec.type: latency)")
            else:
                fault.spec.latency = value
        elif isinstance(fault, ToxiproxyFault):
            if parameter == "probability":
                fault.spec.toxicity = value
            elif fault.spec.type != "latency":
                raise UsageError(f"{where}: --sweep latency needs a latency toxic")
            else:
                fault.spec.attributes["latency"] = round(value * 1000)
    return LoadedDrills(spec, loaded.doc)


@dataclass
class Sweep:
    parameter: str
    values: list[float]
    steps: list[tuple[float, Report]] = field(default_factory=list)
    interrupted: str | None = None

    def outcomes(self) -> list[dict[str, Any]]:
        """Per drill and alert: each step's firing time (None: did not fire) and the bound's prediction."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for value, report in self.steps:
            for drill in report.drills:
                for alert in drill.alerts:
                    row = rows.setdefault((drill.name, alert.alert), {
                        "drill": drill.name, "alert": alert.alert, "labels": alert.labels, "steps": []})
                    row["steps"].append({
                        "value": value,
                        "fired": alert.firing is not None,
                        "time_to_firing_seconds": None if alert.firing is None else round(alert.firing, 3),
                        "predicted_to_fire": None if alert.bound is None else alert.bound.reachable,
                        "error": drill.error,
                    })
        for row in rows.values():
            fired = [s["value"] for s in row["steps"] if s["fired"]]
            row["smallest_caught"] = min(fired) if fired else None
        return list(rows.values())

    @property
    def passed(self) -> bool:
        """Every expected alert caught the fault at one intensity at least."""
        outcomes = self.outcomes()
        return self.interrupted is None and bool(outcomes) and all(
            o["smallest_caught"] is not None for o in outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "sweep": {"parameter": self.parameter, "values": self.values},
            "steps": [{"value": v, **r.to_json()} for v, r in self.steps],
            "alerts": self.outcomes(),
            "passed": self.passed,
            "interrupted": self.interrupted,
        }


def summary(sweep: Sweep) -> str:
    header = f"{'DRILL':<24} {'ALERT':<24} " + " ".join(
        f"{_label(sweep.parameter, v):>9}" for v in sweep.values)
    lines = [f"sweep over {sweep.parameter}: time to firing per step (- did not fire, * bound said it cannot)",
             header]
    for row in sweep.outcomes():
        cells = []
        for s in row["steps"]:
            cell = f"{s['time_to_firing_seconds']:.1f}s" if s["fired"] else "-"
            cells.append(f"{cell + ('*' if s['predicted_to_fire'] is False else ''):>9}")
        lines.append(f"{row['drill'][:24]:<24} {row['alert'][:24]:<24} " + " ".join(cells))
    for row in sweep.outcomes():
        smallest = row["smallest_caught"]
        caught = "caught nothing" if smallest is None else \
            f"smallest fault caught: {sweep.parameter}={_label(sweep.parameter, smallest)}"
        lines.append(f"{row['alert']}: {caught}")
    return "\n".join(lines)


def to_html(sweep: Sweep) -> str:
    from probes.drills import html_report

    head = "".join(f"<th>{escape(_label(sweep.parameter, v))}</th>" for v in sweep.values)
    rows = []
    for row in sweep.outcomes():
        cells = []
        for s in row["steps"]:
            if s["fired"]:
                cells.append(f'<td class="fail">fired {s["time_to_firing_seconds"]:.1f} s</td>')
            else:
                note = " (bound: cannot fire)" if s["predicted_to_fire"] is False else ""
                cells.append(f"<td>did not fire{note}</td>")
        rows.append(f"<tr><td>{escape(row['drill'])}</td><td>{escape(row['alert'])}</td>{''.join(cells)}</tr>")
    table = (f"<table><tr><th>drill</th><th>alert</th>{head}</tr>{''.join(rows)}</table>")
    steps = "".join(
        f"<h2>{escape(sweep.parameter)} = {escape(_label(sweep.parameter, v))}</h2>"
        + "".join(html_report.drill_section(d) for d in report.drills)
        for v, report in sweep.steps
    )
    title = f"Sensitivity sweep over {sweep.parameter}"
    return html_report.page(title, f"<p>{escape(json.dumps(sweep.values))}</p>{table}{steps}")


async def run_sweep(loaded: LoadedDrills, names: list[str] | None, parameter: str, values: list[float],
                    out: TextIO | None = None, wait_for_series: float | None = None) -> Sweep:
    from probes.drills.conduct import Runner

    variants = [step(loaded, names, parameter, v) for v in values]
    sweep = Sweep(parameter, values)
    for index, (value, variant) in enumerate(zip(values, variants, strict=True)):
        runner = Runner(variant, out, wait_for_series=wait_for_series,
                        also_check=variants if index == 0 else [], intensity={parameter: value})
        if index:
            await _drain(sweep.steps[-1][1], runner)
        runner.say(f"sweep: {parameter} = {_label(parameter, value)}")
        report = await runner.run(names)
        sweep.steps.append((value, report))
        if report.interrupted:
            sweep.interrupted = report.interrupted
            break
    return sweep


async def _drain(previous: Report, runner: Any) -> None:
    """Until the previous step's fault has left the rules' range windows: a step must not start with the
    last one's errors still counted (it would fire sooner, or at all)."""
    wait = 0.0
    for drill in previous.drills:
        if drill.injected_at is None or drill.reverted is None:
            continue
        window = max((a.bound.window for a in drill.alerts if a.bound is not None), default=0.0)
        wait = max(wait, drill.injected_at + drill.reverted + window - time.time())
    if wait > 0:
        runner.say(f"sweep: waiting {wait:.0f}s for the last step's fault to leave the rules' range windows")
        await asyncio.sleep(wait)
