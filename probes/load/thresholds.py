"""k6-like pass/fail thresholds for a load run: parse `[NAME:]METRIC OP VALUE`, evaluate.

Pure: no Locust, no I/O, so the same code judges the final report in the `probe-agent` process and
the running totals for `--abort-on-fail` inside the Locust master.

Units follow the metric, and `observed` is reported in the same unit as the expression:
latency metrics (`p50`, `p90`, `p95`, `p99`, any `pNN`, `avg`, `min`, `max`) in milliseconds (a bare
number is milliseconds, as in k6; `1s`, `250ms` are accepted), `error_rate` in percent (the `%` is
required: `error_rate<1` would be ambiguous between 1% and 100%), `rps` in requests per second.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from probes.durations import parse_duration

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}

# The name is everything before the last colon that precedes the metric, so request names that
# contain colons themselves (`GET:/api`, `http://...`) still work.
_EXPR = re.compile(
    r"^(?:(?P<name>.*):)?\s*(?P<metric>p\d+(?:\.\d+)?|avg|min|max|error_rate|rps)\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<value>\S.*?)\s*$"
)
_LATENCY_METRICS = ("avg", "min", "max")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")

HELP = (
    "thresholds look like p95<500ms, p99<1s, avg<200ms, max<2s, error_rate<1%, rps>50, "
    "optionally per request name: search:p95<300ms"
)


def _shown(text: str) -> str:
    # Quoted in messages; a 400-digit limit should not fill the terminal.
    return text if len(text) <= 60 else text[:57] + "..."


class ThresholdError(ValueError):
    """A threshold expression that cannot be understood; the message is meant for the user."""


@dataclass(frozen=True)
class Threshold:
    expr: str
    name: str | None
    metric: str
    op: str
    limit: float
    """Milliseconds for latency metrics, a fraction 0..1 for error_rate, requests/s for rps."""

    @property
    def percentile(self) -> float | None:
        """0..1 for `pNN` metrics, None otherwise."""
        return float(self.metric[1:]) / 100 if self.metric.startswith("p") else None

    @property
    def is_error_rate(self) -> bool:
        return self.metric == "error_rate"

    def holds(self, observed: float) -> bool:
        return _OPERATORS[self.op](observed, self.limit)


@dataclass(frozen=True)
class ThresholdResult:
    expr: str
    observed: float | None
    """In the expression's unit (ms, percent, requests/s); None when there was no data to judge."""
    passed: bool

    def as_dict(self) -> dict[str, object]:
        return {"expr": self.expr, "observed": self.observed, "passed": self.passed}


def parse_threshold(text: str) -> Threshold:
    expr = text.strip()
    match = _EXPR.match(expr)
    if match is None:
        raise ThresholdError(f"invalid threshold {_shown(text)!r}: {HELP}")
    name = match.group("name")
    if name is not None:
        name = name.strip()
        if not name:
            raise ThresholdError(f"invalid threshold {_shown(text)!r}: empty request name before ':'")
    metric, op, value = match.group("metric"), match.group("op"), match.group("value")
    if metric.startswith("p"):
        pct = float(metric[1:])
        if not 0 < pct <= 100:
            raise ThresholdError(f"invalid threshold {_shown(text)!r}: percentile must be in (0, 100]")
    return Threshold(expr=expr, name=name, metric=metric, op=op, limit=_parse_limit(text, metric, value))


def parse_thresholds(texts: list[str]) -> list[Threshold]:
    return [parse_threshold(text) for text in texts]


def _parse_limit(text: str, metric: str, value: str) -> float:
    limit = _limit(text, metric, value)
    if not math.isfinite(limit):
        # float("9" * 400) is inf: a limit no run can breach would pass everything.
        raise ThresholdError(f"invalid threshold {_shown(text)!r}: the limit is too large")
    return limit


def _limit(text: str, metric: str, value: str) -> float:
    if metric == "error_rate":
        if not value.endswith("%") or not _NUMBER.match(value[:-1].strip()):
            raise ThresholdError(
                f"invalid threshold {_shown(text)!r}: error_rate takes a percentage, e.g. error_rate<1%"
            )
        percent = float(value[:-1])
        if percent > 100:
            raise ThresholdError(f"invalid threshold {_shown(text)!r}: error_rate cannot exceed 100%")
        return percent / 100
    if metric == "rps":
        if not _NUMBER.match(value):
            raise ThresholdError(f"invalid threshold {_shown(text)!r}: rps takes a number of requests/s, e.g. rps>50")
        return float(value)
    # latency: milliseconds
    if _NUMBER.match(value):
        return float(value)
    try:
        return parse_duration(value) * 1000
    except ValueError:
        raise ThresholdError(
            f"invalid threshold {_shown(text)!r}: {metric} takes a duration, e.g. {metric}<500ms or {metric}<1s"
        ) from None


@dataclass(frozen=True)
class Observation:
    """What a threshold can be judged on, for the whole run or for one request name."""

    requests: int
    failures: int
    rps: float
    avg_ms: float
    min_ms: float
    max_ms: float
    percentile_ms: Callable[[float], float]

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def observe(threshold: Threshold, data: Observation | None) -> float | None:
    """The observed value in the threshold's own unit; None when there is nothing to judge."""
    if data is None:
        return None
    if threshold.metric == "rps":
        return data.rps
    if threshold.metric == "error_rate":
        # An error rate of zero requests means nothing: the run (or that name) never happened.
        return data.error_rate if data.requests else None
    if data.requests <= 0:
        return None
    if threshold.metric == "avg":
        return data.avg_ms
    if threshold.metric == "min":
        return data.min_ms
    if threshold.metric == "max":
        return data.max_ms
    percentile = threshold.percentile
    assert percentile is not None
    return data.percentile_ms(percentile)


def evaluate(threshold: Threshold, data: Observation | None) -> ThresholdResult:
    """Judge one threshold; no data (unknown request name, no requests) fails it, so typos can't pass."""
    observed = observe(threshold, data)
    if observed is None or math.isnan(observed):
        return ThresholdResult(expr=threshold.expr, observed=None, passed=False)
    passed = threshold.holds(observed)
    shown = observed * 100 if threshold.is_error_rate else observed
    return ThresholdResult(expr=threshold.expr, observed=round(shown, 3), passed=passed)


def evaluate_all(
    thresholds: list[Threshold], total: Observation | None, by_name: dict[str, Observation]
) -> list[ThresholdResult]:
    return [evaluate(t, total if t.name is None else by_name.get(t.name)) for t in thresholds]
