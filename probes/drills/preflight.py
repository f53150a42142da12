"""Before injecting: the series each expected alert's rule reads must have fresh samples in Prometheus.

A Prometheus started seconds ago has scraped nothing yet (it hands new targets to its scrapers on a
5 s tick); a fault injected then is measured from a moment the rule could not see. So the drill waits,
up to `--wait-for-series`, until every selector of the rule has a sample from the last few scrape
intervals (two samples for a selector under rate()/a range: a rate needs a baseline), and exits 3
naming the series still missing.

A counter under rate() with a label the fault sets (`status=~"5.."`) often has no series before the
fault; it counts as present when the same metric of the same job is being scraped: the fault creates it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probes.drills import promql
from probes.drills.prometheus import AlertRule, PrometheusClient, RecordingRule, WatchError
from probes.errors import CannotRun


@dataclass
class Need:
    alert: str
    selector: promql.Selector

    @property
    def text(self) -> str:
        return self.selector.text()


@dataclass
class SeriesState:
    selector: str
    alert: str
    state: str = "missing"  # fresh | created-by-fault | missing

    def to_json(self) -> dict[str, Any]:
        return {"selector": self.selector, "alert": self.alert, "state": self.state}


@dataclass
class Preflight:
    waited: float = 0.0
    series: list[SeriesState] = field(default_factory=list)
    request_gap: float | None = None
    fault_share: float | None = None
    """The observed share of the counted requests whose path the fault matches (None: not measurable)."""

    @property
    def created(self) -> set[str]:
        return {s.selector for s in self.series if s.state == "created-by-fault"}

    def to_json(self) -> dict[str, Any]:
        return {
            "waited_seconds": round(self.waited, 3),
            "series": [s.to_json() for s in self.series],
            "request_gap_seconds": None if self.request_gap is None else round(self.request_gap, 3),
            "fault_share": None if self.fault_share is None else round(self.fault_share, 4),
        }


def needs(rule: AlertRule, labels: dict[str, str], recording: dict[str, RecordingRule]) -> list[Need]:
    """The raw selectors behind `rule`, narrowed to the labels the drill expects on the alert."""
    # Labels the rule sets itself (severity) or that name the alert are not labels of the input series.
    narrow = {k: v for k, v in labels.items() if k != "alertname" and k not in rule.labels}
    out: list[Need] = []
    seen: set[str] = set()

    def add(selector: promql.Selector, depth: int) -> None:
        record = recording.get(selector.name)
        if record is not None and depth < 5:
            for inner in promql.selectors(record.query):
                add(inner, depth + 1)
            return
        if depth == 0:
            selector = selector.with_labels(narrow)
        if selector.name and selector.text() not in seen:
            seen.add(selector.text())
            out.append(Need(rule.name, selector))

    try:
        for selector in promql.selectors(rule.query):
            add(selector, 0)
    except promql.PromQLError:
        pass  # an expression this reader does not follow: nothing to wait for, the drill still runs
    return out


def _fresh_query(selector: promql.Selector, freshness: float) -> str:
    text = selector.text()
    if selector.is_range:
        # A rate needs two samples; both within the last few scrapes.
        return f"count(count_over_time({text}[{round(freshness * 1000)}ms]) >= 2)"
    return f"count(timestamp({text}) > time() - {freshness:.3f})"


async def _count(prometheus: PrometheusClient, query: str) -> int:
    result = await prometheus.query(query)
    if not result:
        return 0
    try:
        return int(float(result[0]["value"][1]))
    except (KeyError, IndexError, TypeError, ValueError):
        return 0


async def _state(prometheus: PrometheusClient, need: Need, freshness: float) -> str:
    if await _count(prometheus, _fresh_query(need.selector, freshness)):
        return "fresh"
    if need.selector.counter_range:
        base = need.selector.only({"job", "instance"})
        if base.text() != need.text and await _count(prometheus, _fresh_query(base, freshness)):
            return "created-by-fault"
    return "missing"


async def _request_gap(prometheus: PrometheusClient, wanted: list[Need]) -> float | None:
    """Seconds between requests, from the observed rate of the counters a rule counts."""
    counters = {n.selector.only({"job", "instance"}).text() for n in wanted if n.selector.counter_range}
    gaps = []
    for text in sorted(counters):
        result = await prometheus.query(f"sum(rate({text}[1m]))")
        try:
            rate = float(result[0]["value"][1]) if result else 0.0
        except (KeyError, IndexError, TypeError, ValueError):
            rate = 0.0
        if rate > 0:
            gaps.append(1.0 / rate)
    return max(gaps) if gaps else None


PATH_LABELS = ("endpoint", "path", "handler", "route", "uri")


def _label_regex(search: str) -> str:
    """A fault's path regex (searched, like re.search) as a PromQL label regex (which is anchored)."""
    body = search[1:] if search.startswith("^") else ".*" + search
    return body[:-1] if body.endswith("$") and not body.endswith("\\$") else body + ".*"


async def _rate(prometheus: PrometheusClient, selector: promql.Selector) -> float | None:
    result = await prometheus.query(f"sum(rate({selector.text()}[1m]))")
    try:
        return float(result[0]["value"][1]) if result else None
    except (KeyError, IndexError, TypeError, ValueError):
        return None


async def _fault_share(prometheus: PrometheusClient, wanted: list[Need], path: str) -> float | None:
    """Of the requests a counter rule counts, the share on paths the fault matches.

    A fault on /api/search dilutes in an error ratio that also counts /metrics scrapes and health checks;
    where the counter has a path-like label, the observed rates give the share. None when it has none.
    """
    counters = {n.selector.only({"job", "instance"}).text(): n.selector.only({"job", "instance"})
                for n in wanted if n.selector.counter_range}
    for _, base in sorted(counters.items()):
        for label in PATH_LABELS:
            total = await _rate(prometheus, promql.Selector(base.name, [*base.matchers, (label, "!=", "")]))
            if not total:
                continue
            part = await _rate(prometheus, promql.Selector(
                base.name, [*base.matchers, (label, "=~", _label_regex(path))])) or 0.0
            return min(1.0, part / total)
    return None


async def wait_for_series(
    prometheus: PrometheusClient,
    wanted: list[Need],
    scrape_interval: float,
    limit: float,
    say: Callable[[str], None],
    poll: float = 0.5,
    fault_path: str | None = None,
) -> Preflight:
    """Until every needed selector has fresh samples; raises CannotRun naming the missing ones."""
    freshness = 2 * scrape_interval + 1.0
    started = time.monotonic()
    states = {n.text: SeriesState(n.text, n.alert) for n in wanted}
    announced = False
    while True:
        for need in wanted:
            state = states[need.text]
            if state.state != "fresh":
                try:
                    state.state = await _state(prometheus, need, freshness)
                except WatchError as exc:
                    raise CannotRun(f"Prometheus: {exc}") from None
        missing = [s for s in states.values() if s.state == "missing"]
        waited = time.monotonic() - started
        if not missing:
            break
        if waited >= limit:
            names = "; ".join(f"{s.selector} (for {s.alert})" for s in missing)
            raise CannotRun(
                f"no fresh samples in Prometheus after waiting {limit:g}s for: {names}. Is the target "
                f"scraped (Prometheus /targets), and do the drill's labels match its series?"
            )
        if not announced:
            announced = True
            say(f"drill: waiting up to {limit:g}s for fresh samples of "
                f"{', '.join(s.selector for s in missing)}")
        await asyncio.sleep(poll)
    if announced:
        say(f"drill: series present after {waited:.1f}s")
    try:
        gap = await _request_gap(prometheus, wanted)
        share = await _fault_share(prometheus, wanted, fault_path) if fault_path else None
    except WatchError:
        gap, share = None, None
    return Preflight(waited, list(states.values()), gap, share)
