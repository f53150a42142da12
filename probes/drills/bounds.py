"""The theoretical time from injection to firing (and to notification) of one alert, term by term.

Each term names where its value comes from (Prometheus config, the rule, the agent config, the
Alertmanager route, what Prometheus observed, the drill file), so a late alert points at the setting
that made it late. The terms, in the order they happen after the fault starts:

- black-box rules (on probe_* metrics): the changed value exists only once the next probe run has
  finished: up to one probe interval until it starts, plus its longest duration,
  (timeout + hard-deadline margin) x (retries + 1) + retries x retry_delay;
- white-box rules over counters: the next request after the fault (the observed request gap);
- the next scrape (<= one scrape interval); a rate()/range over a series the fault may create (a new
  status label) needs a second sample, one more interval;
- a windowed ratio (an error ratio over `rate(...[W])`, a burn rate) crosses its threshold T only after
  the window has filled enough: T x W / intensity for a fault on every request at that intensity (the
  ratio rises linearly); an intensity at or below T can never fire;
- one evaluation per recording rule the alert reads, then the alerting rule's evaluation (pending);
- `for`, in whole evaluations (firing); Alertmanager's group_wait (notified).

`bound_min` is the same sum with each term at its smallest: `for`, the retry delays of a probe run,
group_wait. The drill polls Prometheus; its poll interval is a measurement allowance, listed as a term
but not part of the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from probes.agent.attempts import HARD_DEADLINE_MARGIN
from probes.drills import promql
from probes.drills.prometheus import AlertRule, RecordingRule, ScrapeTiming

Stage = Literal["firing", "notified", "allowance"]


@dataclass(frozen=True)
class Term:
    term: str
    seconds: float
    source: str
    min_seconds: float = 0.0
    stage: Stage = "firing"

    def to_json(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "seconds": round(self.seconds, 3),
            "min_seconds": round(self.min_seconds, 3),
            "source": self.source,
            "stage": self.stage,
        }


@dataclass(frozen=True)
class ProbeTiming:
    """A probe's schedule as the agent config gives it."""

    name: str
    interval: float
    timeout: float
    retries: int = 0
    retry_delay: float = 1.0

    @property
    def max_duration(self) -> float:
        return (self.timeout + HARD_DEADLINE_MARGIN) * (self.retries + 1) + self.retries * self.retry_delay

    @property
    def min_failing_duration(self) -> float:
        return self.retries * self.retry_delay


@dataclass(frozen=True)
class Intensity:
    """How much of the traffic the fault hits: probability, and for latency faults the added latency."""

    probability: float = 1.0
    fault_type: str | None = None
    latency: float | None = None


@dataclass
class Inputs:
    timing: ScrapeTiming
    recording: dict[str, RecordingRule] = field(default_factory=dict)
    group_wait: float | None = None
    probes: list[ProbeTiming] | None = None
    probes_source: str = "agent config"
    intensity: Intensity = field(default_factory=Intensity)
    created: set[str] = field(default_factory=set)
    """Selectors that had no series before the injection: the fault creates them."""
    request_gap: float | None = None
    fault_share: float | None = None
    """The observed share of counted requests on the fault's paths (None: assume all)."""
    poll: float = 0.0
    poll_source: str = "drill file (poll_interval)"
    query_rtt: float = 0.0
    """The slowest answer to the runner's alert queries during the drill."""
    inject_rtt: float = 0.0
    """How long the injection call took (the clock starts before it)."""


@dataclass
class Bound:
    kind: str  # black-box | white-box | burn-rate
    terms: list[Term]
    unreachable: str | None = None
    """Why the alert cannot fire at this intensity (then there is no finite bound)."""
    notes: list[str] = field(default_factory=list)
    window: float = 0.0
    """The longest range the rule reads (through recording rules): how long a fault's traces stay in it."""

    def _sum(self, stages: tuple[str, ...], attr: str) -> float:
        return sum(getattr(t, attr) for t in self.terms if t.stage in stages)

    @property
    def reachable(self) -> bool:
        return self.unreachable is None

    @property
    def firing(self) -> float:
        return math.inf if self.unreachable else self._sum(("firing",), "seconds")

    @property
    def firing_min(self) -> float:
        return math.inf if self.unreachable else self._sum(("firing",), "min_seconds")

    @property
    def notified(self) -> float | None:
        if not any(t.stage == "notified" for t in self.terms):
            return None
        return math.inf if self.unreachable else self._sum(("firing", "notified"), "seconds")

    @property
    def notified_min(self) -> float | None:
        if not any(t.stage == "notified" for t in self.terms):
            return None
        return math.inf if self.unreachable else self._sum(("firing", "notified"), "min_seconds")

    @property
    def allowance(self) -> float:
        return self._sum(("allowance",), "seconds")

    def explain(self) -> str:
        """`12.5s = probe interval 1s (agent config ...) + ...` for messages."""
        if self.unreachable:
            return f"cannot fire: {self.unreachable}"
        parts = " + ".join(f"{t.term} {t.seconds:g}s ({t.source})" for t in self.terms if t.stage == "firing")
        return f"{self.firing:g}s = {parts}"


def _leaves(selector: promql.Selector, recording: dict[str, RecordingRule], depth: int = 0
            ) -> tuple[list[promql.Selector], list[RecordingRule]]:
    """The raw series behind a selector, through recording rules; and the recording rules passed."""
    rule = recording.get(selector.name)
    if rule is None or depth > 5:
        return [selector], []
    leaves: list[promql.Selector] = []
    rules = [rule]
    for inner in promql.selectors(rule.query):
        more, more_rules = _leaves(inner, recording, depth + 1)
        leaves += more
        rules += more_rules
    return leaves, rules


def _is_ratio(comparison: promql.Comparison, recording: dict[str, RecordingRule]) -> bool:
    if comparison.ratio:
        return True
    return any("/" in recording[s.name].query for s in comparison.selectors if s.name in recording)


def _window(comparison: promql.Comparison, recording: dict[str, RecordingRule]) -> float:
    ranges = [
        leaf.range_seconds
        for s in comparison.selectors
        for leaf in _leaves(s, recording)[0]
        if leaf.range_seconds
    ]
    return max(ranges, default=0.0)


def _ramp(rule: AlertRule, inputs: Inputs) -> tuple[Term | None, str | None]:
    """The time for a windowed ratio or quantile to cross its threshold, or why it never does."""
    worst: Term | None = None
    p = inputs.intensity.probability
    share = 1.0 if inputs.fault_share is None else inputs.fault_share
    hits = f"fault probability {p:g}" if inputs.fault_share is None else \
        f"fault probability {p:g} x {share:.2f} of requests on its paths (observed)"
    try:
        found = promql.comparisons(rule.query)
    except promql.PromQLError:
        return None, None
    for comparison in found:
        if comparison.op not in (">", ">="):
            continue
        window = _window(comparison, inputs.recording)
        if not window:
            continue
        threshold = comparison.threshold
        if comparison.quantile is not None:
            latency = inputs.intensity.latency
            if inputs.intensity.fault_type != "latency" or latency is None:
                continue
            if latency <= threshold:
                return None, f"the fault's latency {latency:g}s is not above the rule's threshold {threshold:g}s"
            share = 1.0 - comparison.quantile
            if p <= share:
                return None, (f"a latency fault on {p:g} of requests cannot move the {comparison.quantile:g} "
                              f"quantile (needs more than {share:g})")
            seconds = share * window / p
            term = Term("quantile window fill", seconds,
                        f"rule ({1 - comparison.quantile:g} of {window:g}s window / fault probability {p:g})",
                        seconds)
        elif _is_ratio(comparison, inputs.recording) and 0 < threshold < 1:
            if p * share <= threshold:
                return None, f"{hits} is not above the rule's ratio threshold {threshold:g}"
            seconds = threshold * window / (p * share)
            term = Term("ratio window fill", seconds,
                        f"rule (threshold {threshold:g} x {window:g}s window / {hits})")
        else:
            continue
        if worst is None or term.seconds > worst.seconds:
            worst = term  # `a and b`: both windows must have crossed
    return worst, None


def _scrape_source(timing: ScrapeTiming, labels: dict[str, str]) -> str:
    job = labels.get("job")
    if job and job in timing.jobs:
        return f"Prometheus config (job {job} scrape_interval)"
    if job is None and len(timing.jobs) > 1:
        return "Prometheus config (slowest scrape_interval: no job label to go by)"
    return "Prometheus config (scrape_interval)"


def compute(rule: AlertRule, inputs: Inputs, labels: dict[str, str], group_wait: float | None = None
            ) -> Bound:
    """The bound for `rule` producing an alert with `labels`."""
    timing = inputs.timing
    wait = group_wait if group_wait is not None else inputs.group_wait
    try:
        top = promql.selectors(rule.query)
    except promql.PromQLError as exc:
        top = []
        parse_note = f"could not read the rule expression ({exc}); scrape terms assume a range"
    else:
        parse_note = ""
    leaves: list[promql.Selector] = []
    recorded: list[RecordingRule] = []
    for selector in top:
        more, rules = _leaves(selector, inputs.recording)
        leaves += more
        recorded += rules
    black_box = any(s.name.startswith("probe_") for s in leaves)
    kind = "black-box" if black_box else ("burn-rate" if recorded else "white-box")
    bound = Bound(kind, [], window=max((s.range_seconds or 0.0 for s in leaves), default=0.0))
    if parse_note:
        bound.notes.append(parse_note)
    terms = bound.terms

    if black_box:
        probes = inputs.probes
        if probes:
            wanted = labels.get("probe")
            chosen = [p for p in probes if wanted is None or p.name == wanted] or probes
            slowest = max(chosen, key=lambda p: p.interval + p.max_duration)
            quickest = min(chosen, key=lambda p: p.min_failing_duration)
            src = f"{inputs.probes_source} (probe {slowest.name})"
            terms.append(Term("probe interval", slowest.interval, f"{src}: interval"))
            terms.append(Term(
                "probe duration", slowest.max_duration,
                f"{src}: (timeout {slowest.timeout:g}s + {HARD_DEADLINE_MARGIN:g}s hard-deadline margin) x "
                f"{slowest.retries + 1} attempts + {slowest.retries} x retry_delay {slowest.retry_delay:g}s",
                quickest.min_failing_duration,
            ))
        else:
            bound.notes.append("probe interval and duration unknown (no agent_config): the bound leaves them out")
    elif any(s.counter_range for s in leaves):
        if inputs.request_gap is not None:
            terms.append(Term("request gap", inputs.request_gap, "Prometheus (observed request rate)"))
        else:
            bound.notes.append("no request rate observed: a counter-based rule needs traffic to fire")

    scrape = timing.for_alert(labels, rule.query)
    scrape_src = _scrape_source(timing, labels)
    ranged = [s for s in leaves if s.is_range] or ([] if top else [promql.Selector("?", range_seconds=1)])
    terms.append(Term("scrape", scrape, scrape_src))
    if ranged:
        created = any(s.text() in inputs.created or s.only({"job"}).text() in inputs.created for s in ranged)
        why = "the fault created this series" if created else "the fault may create a new series (label value)"
        terms.append(Term("second scrape for a range", scrape, f"{scrape_src}: {why}",
                          scrape if created else 0.0))

    ramp, unreachable = _ramp(rule, inputs)
    if unreachable:
        bound.unreachable = unreachable
    if ramp is not None:
        terms.append(ramp)

    counted: set[str] = set()
    for recording in recorded:
        if recording.name in counted:
            continue
        counted.add(recording.name)
        interval = recording.group_interval or timing.evaluation_interval
        terms.append(Term("recording rule evaluation", interval,
                          f"rule group {recording.group} interval (records {recording.name})"))

    evaluation = rule.group_interval or timing.evaluation_interval
    eval_src = (f"rule group {rule.group} interval" if rule.group_interval
                else "Prometheus config (evaluation_interval)")
    terms.append(Term("evaluation", evaluation, eval_src))
    evaluations = math.ceil(rule.for_seconds / evaluation - 1e-9) if rule.for_seconds else 0
    terms.append(Term("for", evaluations * evaluation,
                      f"rule {rule.name} (for: {rule.for_seconds:g}s, in whole evaluations of {evaluation:g}s)",
                      rule.for_seconds))
    if wait is not None:
        terms.append(Term("group_wait", wait, "Alertmanager route", wait, "notified"))
    if inputs.poll:
        terms.append(Term("poll", inputs.poll, inputs.poll_source, 0.0, "allowance"))
    if inputs.query_rtt:
        terms.append(Term("alerts query round trip", inputs.query_rtt, "measured (slowest during the drill)",
                          0.0, "allowance"))
    if inputs.inject_rtt:
        terms.append(Term("injection round trip", inputs.inject_rtt, "measured", 0.0, "allowance"))
    return bound
