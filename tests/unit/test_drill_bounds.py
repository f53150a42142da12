"""The theoretical bound per alert, and the Prometheus/Alertmanager settings it is computed from."""

from __future__ import annotations

import pytest

from probes.drills.alertmanager import route_timing
from probes.drills.bounds import compute
from probes.drills.prometheus import AlertRule, ScrapeTiming, prom_duration


def _rule(query: str, for_seconds: float, group_interval: float = 0) -> AlertRule:
    return AlertRule("A", query, for_seconds, {}, "g", group_interval)


def test_prometheus_durations() -> None:
    assert prom_duration("1m30s", 0) == 90
    assert prom_duration("500ms", 0) == 0.5
    assert prom_duration("2w", 0) == 14 * 86400
    assert prom_duration(None, 7) == 7
    assert prom_duration("", 7) == 7


def test_bound_is_scrape_plus_evaluation_plus_for() -> None:
    timing = ScrapeTiming(15, 30, {"api": 10})
    bound = compute(_rule('up{job="api"} == 0', 60), timing, {}, group_wait=30)
    assert (bound.scrape_interval, bound.evaluation_interval, bound.for_seconds) == (10, 30, 60)
    assert bound.firing == 10 + 30 + 60
    assert bound.firing_min == 60
    assert bound.notified == 100 + 30


def test_rates_need_a_second_sample_and_for_rounds_up_to_evaluations() -> None:
    timing = ScrapeTiming(1, 1)
    bound = compute(_rule("rate(x[5m]) > 1", 2.5), timing, {}, group_wait=None)
    assert bound.needs_two_samples
    assert bound.firing == 2 * 1 + 1 + 3
    assert bound.notified is None


def test_group_interval_overrides_global_evaluation_and_job_label_picks_scrape() -> None:
    timing = ScrapeTiming(15, 60, {"fast": 5, "slow": 120})
    bound = compute(_rule("x > 1", 0, group_interval=20), timing, {"job": "fast"}, group_wait=None)
    assert bound.firing == 5 + 20
    # Without a job to go by, the slowest scrape interval is the safe bound.
    assert compute(_rule("x > 1", 0), timing, {}, group_wait=None).scrape_interval == 120


CONFIG = {
    "route": {
        "receiver": "default", "group_wait": "30s", "group_interval": "5m",
        "routes": [
            {"receiver": "page", "matchers": ['severity="critical"', 'team=~"search|api"'], "group_wait": "10s",
             "routes": [{"receiver": "deep", "match": {"alertname": "HighErrorRate"}, "group_interval": "1m"}]},
            {"receiver": "warn", "match_re": {"severity": "warn.*"}, "group_wait": "1m"},
        ],
    },
}


@pytest.mark.parametrize(("labels", "wait", "interval"), [
    ({"severity": "critical", "team": "search"}, 10, 300),
    ({"severity": "critical", "team": "search", "alertname": "HighErrorRate"}, 10, 60),
    ({"severity": "critical", "team": "other"}, 30, 300),
    ({"severity": "warning"}, 60, 300),
    ({}, 30, 300),
])
def test_route_timing_follows_the_first_matching_route(labels: dict[str, str], wait: float, interval: float) -> None:
    timing = route_timing(CONFIG, labels)
    assert (timing.group_wait, timing.group_interval) == (wait, interval)


def test_route_timing_defaults() -> None:
    assert route_timing({}, {}).group_wait == 30
    assert route_timing({"route": {"matchers": []}}, {}).group_interval == 300
