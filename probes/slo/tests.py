"""`probe-agent slo rules --tests`: promtool unit tests of the generated rules.

Three kinds of scenario, each after six hours of healthy runs:
- fast burn: each SLO's probe fails at 20x its budget (or every run, where the objective allows no more);
  the 1h/5m page must fire in about 14.4/20 of an hour and not before;
- slow burn: 2x its budget; the 1x/3d/6h ticket must open and no page may fire;
- healthy: every probe at half the smallest budget that counts it, for 6 hours: nothing may fire.
A second region stays healthy throughout and the burning region has two agents (replicas): alerts must
name the burning region only, and once.

Which alerts fire at each checked time is computed here from the workbook's definition (the error ratio
over each window against factor x budget), independently of the PromQL; promtool checks that the rules
agree. Checked times are chosen where every burn rate is clearly (5%) on one side of its threshold. SLOs
whose probes do not overlap share one scenario: promtool evaluates every rule group at every step, so
the number of scenarios is what a test run costs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from probes.config.slo import SloConfig
from probes.errors import UsageError
from probes.sinks.prometheus import bucket_label
from probes.slo.rules import ALERT, alert_annotations
from probes.slo.windows import BURN_ALERTS, MINUTE, BurnAlert, TimeScale

RUNS_PER_STEP = 1000.0  # runs per agent and minute: enough that a 0.01% budget is a fraction of a run
START = 1_000_000.0  # counters start high: rate() then extrapolates every series alike, ratios stay exact
HEALTHY_HISTORY = 360  # minutes of healthy runs before a burn starts
HEALTHY_LENGTH = 360
EVAL_EVERY = 10  # minutes between rule evaluations: promtool evaluates every rule group at each
MARGIN = 0.05
BURNING, CALM = "region-a", "region-b"
AGENTS = {BURNING: ("agent-1", "agent-2"), CALM: ("agent-3",)}
PAGE, TICKET = BURN_ALERTS[0], BURN_ALERTS[-1]

Key = tuple[str, str]  # (probe, sli): the series one scenario writes for a probe
Phases = list[tuple[int, float]]  # (minutes, error ratio)
Firing = tuple[str, str, BurnAlert]  # (slo, region, alert)


def key_of(slo: SloConfig, probe_names: Sequence[str]) -> Key:
    return slo.selected(probe_names)[0], slo.sli


@dataclass
class Scenario:
    name: str
    phases: dict[str, dict[Key, Phases]]  # region -> key -> phases
    thresholds: dict[Key, set[float]]  # latency keys: the bucket bounds written
    minutes_per_step: int = 1  # a sample a minute where the 5m window matters, else every 5 minutes
    checks: list[int] = field(default_factory=list)  # minutes

    @property
    def minutes(self) -> int:
        return max(sum(n for n, _ in p) for by_key in self.phases.values() for p in by_key.values())


def cumulative(phases: Phases, minutes_per_step: int) -> tuple[list[float], list[float]]:
    """Bad and all runs of one agent at every step (step 0 holds the start values)."""
    bad, total = [START], [2 * START]
    for minutes, ratio in phases:
        for _ in range(minutes // minutes_per_step):
            bad.append(bad[-1] + RUNS_PER_STEP * ratio)
            total.append(total[-1] + RUNS_PER_STEP)
    return bad, total


def sees(slo: SloConfig, key: Key, thresholds: set[float]) -> bool:
    probe, sli = key
    if slo.sli != sli or not slo.selected([probe]):
        return False
    return sli == "availability" or slo.threshold in thresholds


class Model:
    """The error ratio per SLO and region over a window as Prometheus computes it from the series."""

    def __init__(self, scenario: Scenario, slos: Sequence[SloConfig], scale: TimeScale) -> None:
        self.scenario = scenario
        self.scale = scale
        self.per_step = scenario.minutes_per_step
        self.step_ms = scale.ms(MINUTE) * self.per_step
        self.data = {(region, key): cumulative(p, self.per_step) for region, by_key in scenario.phases.items()
                     for key, p in by_key.items()}
        self.seen = {slo.name: [k for k in scenario.thresholds if sees(slo, k, scenario.thresholds[k])]
                     for slo in slos}
        self.slos = [slo for slo in slos if self.seen[slo.name]]

    def ratio(self, slo: SloConfig, region: str, window: float, minute: int) -> float | None:
        step = minute // self.per_step
        now = step * self.step_ms
        first = max(0, math.ceil((now - self.scale.ms(window)) / self.step_ms))  # ranges include their start
        bad = total = 0.0
        for key in self.seen[slo.name]:
            if (region, key) in self.data and first < step:
                b, t = self.data[(region, key)]
                bad += b[step] - b[first]
                total += t[step] - t[first]
        return bad / total if total else None

    def state(self, slo: SloConfig, region: str, alert: BurnAlert, minute: int) -> bool | None:
        """Firing (True), not (False), or too close to its threshold to test (None)."""
        burns = [self.ratio(slo, region, w, minute) for w in (alert.long, alert.short)]
        if None in burns:
            return False
        low = min(b for b in burns if b is not None) / slo.error_budget
        if low < alert.factor * (1 - MARGIN):
            return False
        return True if low > alert.factor * (1 + MARGIN) else None

    def firing(self, minute: int) -> list[Firing] | None:
        out = []
        for slo in self.slos:
            for region in self.scenario.phases:
                for alert in BURN_ALERTS:
                    state = self.state(slo, region, alert, minute)
                    if state is None:
                        return None
                    if state:
                        out.append((slo.name, region, alert))
        return out

    def clear_step(self, minute: int, direction: int) -> int | None:
        """The nearest evaluation from `minute` (moving by `direction`) where every alert is clearly on or off."""
        off_grid = minute % EVAL_EVERY
        minute = minute - off_grid + (EVAL_EVERY if direction > 0 and off_grid else 0)
        for candidate in range(minute, minute + direction * 60, direction * EVAL_EVERY):
            if 0 < candidate <= self.scenario.minutes and self.firing(candidate) is not None:
                return candidate
        return None


@dataclass(frozen=True)
class Burn:
    """One SLO's part in a burn scenario: its probe burns at `rate` x budget; checks before and after."""

    slo: SloConfig
    key: Key
    rate: float
    expected: float  # minutes after the start
    alert: BurnAlert

    def ratio(self) -> float:
        return self.rate * self.slo.error_budget

    def holds(self, model: Model) -> list[int] | None:
        """A check before and one after the expected time, if the expected alert fires after, not before,
        and a slow burn never pages; None when the scenario cannot show that."""
        start, target = HEALTHY_HISTORY, HEALTHY_HISTORY + self.expected
        wanted = (self.slo.name, BURNING, self.alert)
        grid = range(start + EVAL_EVERY, model.scenario.minutes + 1, EVAL_EVERY)
        states = {m: model.firing(m) for m in grid if start + self.expected * 0.5 <= m <= start + self.expected * 1.5}
        before = max((m for m, f in states.items() if m <= target and f is not None and wanted not in f), default=None)
        after = min((m for m, f in states.items() if m >= target and f is not None and wanted in f), default=None)
        if before is None or after is None:
            return None
        if any(f is not None and wanted in f for m, f in states.items() if m <= before):
            return None  # fired early, went quiet again: not the alert's timing
        if self.alert is TICKET and any(f[0] == self.slo.name and f[2].severity == "page"
                                        for m in (before, after) for f in states[m] or []):
            return None
        return [start, before, after] if model.firing(start) == [] else [before, after]


def fast(slo: SloConfig, key: Key) -> Burn | None:
    rate = min(20.0, 1 / slo.error_budget)
    if rate <= PAGE.factor * (1 + 2 * MARGIN):
        return None  # even a total outage cannot page: `slo rules` warns about it
    return Burn(slo, key, rate, PAGE.factor / rate * PAGE.long / MINUTE, PAGE)


def slow(slo: SloConfig, key: Key) -> Burn | None:
    rate = min(2.0, (1 + 1 / slo.error_budget) / 2)
    if rate <= 1 + 2 * MARGIN:
        return None
    # The 3d ratio over 6h healthy + t burning passes 1x at t = 6h / (rate - 1).
    return Burn(slo, key, rate, HEALTHY_HISTORY / (rate - 1), TICKET)


def burn_scenario(kind: str, burns: list[Burn], thresholds: dict[Key, set[float]]) -> Scenario:
    length = HEALTHY_HISTORY + max(math.ceil(b.expected * 1.5) + 30 for b in burns)
    length += -length % EVAL_EVERY
    burning = {b.key: [(HEALTHY_HISTORY, 0.0), (length - HEALTHY_HISTORY, b.ratio())] for b in burns}
    calm = {b.key: [(length, 0.0)] for b in burns}
    name = f"{kind}: " + ", ".join(
        f"{b.slo.name} at {b.rate:.3g}x {b.alert.severity}s ({b.alert.long_label}/{b.alert.short_label}) "
        f"after ~{b.expected:.0f}m" for b in burns)
    per_step = 1 if any(b.alert.short < 30 * MINUTE for b in burns) else 5
    return Scenario(name, {BURNING: burning, CALM: calm}, {b.key: thresholds[b.key] for b in burns}, per_step)


def burn_groups(kind: str, burns: list[Burn], slos: Sequence[SloConfig], scale: TimeScale,
                thresholds: dict[Key, set[float]]) -> list[tuple[Scenario, Model]]:
    """Pack the burns into as few scenarios as keep every check clear and every expectation separate."""
    rounds: list[tuple[list[Burn], Scenario, Model, list[int]]] = []
    for burn in burns:
        for index, (members, _, _, _) in enumerate(rounds):
            if any(m.key[0] == burn.key[0] for m in members):
                continue  # one probe's series cannot burn at two rates
            trial = _try([*members, burn], kind, slos, scale, thresholds)
            if trial is not None:
                rounds[index] = trial
                break
        else:
            trial = _try([burn], kind, slos, scale, thresholds)
            if trial is None:
                raise UsageError(f"slo tests: no clear {kind} scenario for {burn.slo.name}")
            rounds.append(trial)
    out = []
    for _, scenario, model, checks in rounds:
        scenario.checks = checks
        out.append((scenario, model))
    return out


def _try(members: list[Burn], kind: str, slos: Sequence[SloConfig], scale: TimeScale,
         thresholds: dict[Key, set[float]]) -> tuple[list[Burn], Scenario, Model, list[int]] | None:
    scenario = burn_scenario(kind, members, thresholds)
    model = Model(scenario, slos, scale)
    checks: set[int] = set()
    for member in members:
        steps = member.holds(model)
        if steps is None:
            return None
        checks.update(steps)
    return members, scenario, model, sorted(checks)


def healthy(slos: Sequence[SloConfig], keys: dict[str, Key], scale: TimeScale,
            thresholds: dict[Key, set[float]]) -> tuple[Scenario, Model]:
    ratio: dict[Key, float] = {}
    for slo in slos:
        for key, bounds in thresholds.items():
            if sees(slo, key, bounds):
                ratio[key] = min(ratio.get(key, 1.0), slo.error_budget / 2)
    scenario = Scenario(f"healthy: {len(ratio)} probe series at half their smallest budget fire nothing",
                        {CALM: {key: [(HEALTHY_LENGTH, r)] for key, r in ratio.items()}}, thresholds, 5)
    model = Model(scenario, slos, scale)
    for minute in (60, 180, HEALTHY_LENGTH):
        step = model.clear_step(minute, -1)
        if step is None or model.firing(step):
            raise UsageError("slo tests: the healthy scenario fires")
        scenario.checks.append(step)
    return scenario, model


def _num(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def _values(phases: Phases, start: float, increment: Callable[[float], float], per_step: int) -> str:
    """promtool's expanding notation, one `start+step x n` segment per phase."""
    parts, value = [], start
    for index, (length, ratio) in enumerate(phases):
        minutes = length // per_step  # steps, really
        inc = increment(ratio)
        if index == 0:
            parts.append(f"{_num(value)}+{_num(inc)}x{minutes}")
        else:
            parts.append(f"{_num(value + inc)}+{_num(inc)}x{minutes - 1}")
        value += inc * minutes
    return " ".join(parts)


def _series(scenario: Scenario) -> list[dict[str, str]]:
    def bad(r: float) -> float:
        return RUNS_PER_STEP * r

    def good(r: float) -> float:
        return RUNS_PER_STEP * (1 - r)

    def every(_: float) -> float:
        return RUNS_PER_STEP

    out = []
    for region, by_key in scenario.phases.items():
        for (probe, sli), phases in by_key.items():
            for agent in AGENTS[region]:
                base = f'probe="{probe}",type="http",region="{region}",agent="{agent}"'
                if sli == "availability":
                    out.append({"series": f'probe_runs_total{{{base},result="failure"}}',
                                "values": _values(phases, START, bad, scenario.minutes_per_step)})
                    out.append({"series": f'probe_runs_total{{{base},result="success"}}',
                                "values": _values(phases, START, good, scenario.minutes_per_step)})
                    continue
                for bound in sorted(scenario.thresholds[(probe, sli)]):
                    out.append({"series": f'probe_latency_seconds_bucket{{{base},le="{bucket_label(bound)}"}}',
                                "values": _values(phases, START, good, scenario.minutes_per_step)})
                out.append({"series": f"probe_latency_seconds_count{{{base}}}",
                            "values": _values(phases, 2 * START, every, scenario.minutes_per_step)})
    return out


def _group(scenario: Scenario, model: Model, by_name: dict[str, SloConfig]) -> dict[str, Any]:
    tests = []
    for step in scenario.checks:
        fired = model.firing(step)
        assert fired is not None, "checks are chosen at clear steps"
        tests.append({"eval_time": f"{step // model.per_step * model.step_ms}ms", "alertname": ALERT,
                      "exp_alerts": [_expected(by_name[name], region, alert)
                                     for name, region, alert in sorted(fired, key=lambda f: (f[0], f[1],
                                                                                           f[2].factor))]})
    return {"name": scenario.name, "interval": f"{model.step_ms}ms", "input_series": _series(scenario),
            "alert_rule_test": tests}


def _expected(slo: SloConfig, region: str, alert: BurnAlert) -> dict[str, Any]:
    notes = {k: v.replace("{{ $labels.region }}", region) for k, v in alert_annotations(slo, alert).items()}
    return {"exp_labels": {"slo": slo.name, "region": region, "severity": alert.severity,
                           "long_window": alert.long_label, "short_window": alert.short_label},
            "exp_annotations": notes}


def test_file(slos: Sequence[SloConfig], probe_names: Sequence[str], scale: TimeScale,
              rules_path: str, tests_path: str) -> str:
    keys = {slo.name: key_of(slo, probe_names) for slo in slos}
    thresholds: dict[Key, set[float]] = {}
    for slo in slos:
        bounds = thresholds.setdefault(keys[slo.name], set())
        if slo.threshold is not None:
            bounds.add(slo.threshold)
    skipped = []
    scenarios = [healthy(slos, keys, scale, thresholds)]
    for kind, build in (("fast burn", fast), ("slow burn", slow)):
        burns = []
        for slo in slos:
            burn = build(slo, keys[slo.name])
            if burn is None:
                skipped.append(f"# {slo.name}: no {kind} test: with objective {slo.objective:g}% no burn is "
                               f"fast enough to be one")
            else:
                burns.append(burn)
        if burns:
            scenarios += burn_groups(kind, burns, slos, scale, thresholds)
    by_name = {slo.name: slo for slo in slos}
    rel = os.path.relpath(os.path.abspath(rules_path), os.path.dirname(os.path.abspath(tests_path)))
    header = ("# Generated by `probe-agent slo rules --tests`: promtool unit tests of the generated SLO rules.\n"
              f"# Run: promtool test rules {os.path.basename(tests_path)}\n")
    header += "".join(line + "\n" for line in skipped)
    body = {"rule_files": [rel], "evaluation_interval": f"{scale.ms(MINUTE) * EVAL_EVERY}ms",
            "tests": [_group(s, m, by_name) for s, m in scenarios]}
    return header + yaml.safe_dump(body, sort_keys=False, width=1000)
