"""The theoretical bound per alert, and the Prometheus/Alertmanager settings it is computed from."""

from __future__ import annotations

import math

import pytest

from probes.drills import promql
from probes.drills.alertmanager import route_timing
from probes.drills.bounds import Bound, Inputs, Intensity, ProbeTiming, compute
from probes.drills.prometheus import AlertRule, RecordingRule, ScrapeTiming, prom_duration


def _rule(query: str, for_seconds: float, group_interval: float = 0) -> AlertRule:
    return AlertRule("A", query, for_seconds, {}, "g", group_interval)


def test_prometheus_durations() -> None:
    assert prom_duration("1m30s", 0) == 90
    assert prom_duration("500ms", 0) == 0.5
    assert prom_duration("2w", 0) == 14 * 86400
    assert prom_duration(None, 7) == 7
    assert prom_duration("", 7) == 7


def _terms(bound: Bound) -> dict[str, float]:
    return {t.term: t.seconds for t in bound.terms}


def test_bound_is_scrape_plus_evaluation_plus_for() -> None:
    timing = ScrapeTiming(15, 30, {"api": 10})
    bound = compute(_rule('up{job="api"} == 0', 60), Inputs(timing), {}, group_wait=30)
    assert bound.kind == "white-box"
    assert _terms(bound) == {"scrape": 10, "evaluation": 30, "for": 60, "group_wait": 30}
    assert bound.firing == 10 + 30 + 60
    assert bound.firing_min == 60
    assert bound.notified == 100 + 30
    sources = {t.term: t.source for t in bound.terms}
    assert sources["scrape"] == "Prometheus config (scrape_interval)"
    assert sources["group_wait"] == "Alertmanager route"
    assert "for: 60s" in sources["for"]
    assert "= scrape 10s (Prometheus config" in bound.explain()


def test_rates_need_a_second_sample_and_for_rounds_up_to_evaluations() -> None:
    timing = ScrapeTiming(1, 1)
    bound = compute(_rule("rate(x[5m]) > 1", 2.5), Inputs(timing), {}, group_wait=None)
    assert bound.firing == 2 * 1 + 1 + 3
    assert bound.notified is None
    # Only a series the fault is known to create makes the second scrape part of the minimum too.
    assert bound.firing_min == 2.5
    created = compute(_rule("rate(x[5m]) > 1", 2.5), Inputs(timing, created={"x"}), {})
    assert created.firing_min == 2.5 + 1


def test_group_interval_overrides_global_evaluation_and_job_label_picks_scrape() -> None:
    timing = ScrapeTiming(15, 60, {"fast": 5, "slow": 120})
    bound = compute(_rule("x > 1", 0, group_interval=20), Inputs(timing), {"job": "fast"}, group_wait=None)
    assert bound.firing == 5 + 20
    assert "rule group g interval" in {t.term: t.source for t in bound.terms}["evaluation"]
    # Without a job to go by, the slowest scrape interval is the safe bound.
    assert _terms(compute(_rule("x > 1", 0), Inputs(timing), {}))["scrape"] == 120


PROBES = [ProbeTiming("search", interval=2, timeout=0.8), ProbeTiming("slow", interval=10, timeout=5),
          ProbeTiming("retrying", interval=1, timeout=0.8, retries=2, retry_delay=0.5)]


def test_black_box_adds_probe_interval_and_max_probe_duration() -> None:
    inputs = Inputs(ScrapeTiming(1, 1), probes=PROBES, probes_source="agent config agent.yaml", poll=0.2)
    bound = compute(_rule("probe_success == 0", 3), inputs, {"probe": "search"}, group_wait=1)
    assert bound.kind == "black-box"
    assert _terms(bound) == {"probe interval": 2, "probe duration": 0.8 + 0.5, "scrape": 1, "evaluation": 1,
                             "for": 3, "group_wait": 1, "poll": 0.2}
    assert bound.firing == 2 + 1.3 + 1 + 1 + 3
    assert bound.allowance == 0.2
    duration = next(t for t in bound.terms if t.term == "probe duration")
    assert duration.source.startswith("agent config agent.yaml (probe search)")
    assert "0.5s hard-deadline margin" in duration.source


def test_black_box_retries_multiply_attempts_and_add_delays() -> None:
    inputs = Inputs(ScrapeTiming(1, 1), probes=PROBES)
    bound = compute(_rule("probe_success == 0", 2), inputs, {"probe": "retrying"})
    assert _terms(bound)["probe duration"] == (0.8 + 0.5) * 3 + 2 * 0.5
    # Each failing run waits its retry delays before it reports: the earliest firing is later too.
    assert bound.firing_min == 2 + 2 * 0.5
    # No probe label: the slowest probe of the config is the safe bound.
    anyone = compute(_rule("probe_success == 0", 2), inputs, {})
    assert _terms(anyone)["probe interval"] == 10 and _terms(anyone)["probe duration"] == 5.5


def test_black_box_without_agent_config_says_what_is_missing() -> None:
    bound = compute(_rule("probe_success == 0", 2), Inputs(ScrapeTiming(1, 1)), {})
    assert "probe interval" not in _terms(bound)
    assert any("agent_config" in note for note in bound.notes)


RATIO = ('sum by (job) (rate(http_requests_total{status=~"5.."}[30s]))\n'
         '  / sum by (job) (rate(http_requests_total[30s])) > 0.05')


def test_ratio_rule_adds_the_time_to_fill_the_window_past_the_threshold() -> None:
    inputs = Inputs(ScrapeTiming(1, 1), request_gap=0.1)
    bound = compute(_rule(RATIO, 2), inputs, {"job": "api"})
    terms = _terms(bound)
    assert terms["ratio window fill"] == pytest.approx(0.05 * 30)
    assert terms["request gap"] == 0.1
    assert terms["second scrape for a range"] == 1
    assert bound.firing == pytest.approx(0.1 + 1 + 1 + 1.5 + 1 + 2)
    # A quarter of the requests failing: four times as long to cross 5%.
    quarter = compute(_rule(RATIO, 2), Inputs(ScrapeTiming(1, 1), intensity=Intensity(0.25)), {})
    assert _terms(quarter)["ratio window fill"] == pytest.approx(0.05 * 30 / 0.25)


def test_fault_below_the_threshold_can_never_fire() -> None:
    bound = compute(_rule(RATIO, 2), Inputs(ScrapeTiming(1, 1), intensity=Intensity(0.02)), {})
    assert not bound.reachable and bound.firing == math.inf
    assert "0.02 is not above the rule's ratio threshold 0.05" in (bound.unreachable or "")


def test_latency_quantile_rule() -> None:
    rule = _rule("histogram_quantile(0.95, sum by (job, le) (rate(http_request_duration_seconds_bucket[20s])))"
                 " > 0.5", 2)
    slow = compute(rule, Inputs(ScrapeTiming(1, 1), intensity=Intensity(1.0, "latency", 1.5)), {})
    assert _terms(slow)["quantile window fill"] == pytest.approx(0.05 * 20)
    quick = compute(rule, Inputs(ScrapeTiming(1, 1), intensity=Intensity(1.0, "latency", 0.3)), {})
    assert not quick.reachable


# The shape `probe-agent slo rules` generates: a multiwindow burn-rate alert on recorded error ratios.
BURN = ('(job:slo_errors_per_request:ratio_rate1h{slo="search-availability"} > (14.4*0.001))\n'
        'and\n(job:slo_errors_per_request:ratio_rate5m{slo="search-availability"} > (14.4*0.001))')
RECORDED = {
    f"job:slo_errors_per_request:ratio_rate{w}": RecordingRule(
        f"job:slo_errors_per_request:ratio_rate{w}",
        f'sum(rate(http_requests_total{{job="api",status=~"5.."}}[{w}]))'
        f' / sum(rate(http_requests_total{{job="api"}}[{w}]))',
        "slo-search-availability", 30)
    for w in ("5m", "1h")
}


def test_burn_rate_bound_knows_the_windows_and_the_recording_step() -> None:
    rule = AlertRule("SLOErrorBudgetBurn", BURN, 120, {"severity": "page", "slo": "search-availability"},
                     "slo-alerts", 30)
    bound = compute(rule, Inputs(ScrapeTiming(15, 30), recording=RECORDED, request_gap=0.5), {}, group_wait=30)
    assert bound.kind == "burn-rate"
    terms = _terms(bound)
    # A full outage: the 1h error ratio rises linearly and crosses 14.4 x 0.1% after 0.0144 x 3600 s.
    assert terms["ratio window fill"] == pytest.approx(14.4 * 0.001 * 3600)
    assert terms["recording rule evaluation"] == 30
    assert terms["second scrape for a range"] == 15
    assert bound.firing == pytest.approx(0.5 + 15 + 15 + 51.84 + 30 + 30 + 30 + 120)
    assert bound.firing_min == 120
    # Errors on 1% of requests stay below 14.4 x 0.1%: the alert never fires.
    small = compute(rule, Inputs(ScrapeTiming(15, 30), recording=RECORDED, intensity=Intensity(0.01)), {})
    assert not small.reachable


def test_promql_selectors_and_thresholds() -> None:
    found = promql.selectors(RATIO)
    assert [s.text() for s in found] == ['http_requests_total{status=~"5.."}', "http_requests_total"]
    assert all(s.range_seconds == 30 and s.function == "rate" and s.counter_range for s in found)
    [comparison] = promql.comparisons(RATIO)
    assert (comparison.op, comparison.threshold, comparison.ratio) == (">", 0.05, True)
    burn = promql.comparisons(BURN)
    assert [c.threshold for c in burn] == [pytest.approx(0.0144)] * 2
    assert [s.text() for s in promql.selectors('count by (probe) (probe_success{region!="x"} == 0) >= 2')] == [
        'probe_success{region!="x"}']
    assert [s.text() for s in promql.selectors('{__name__="up",job=~"a|b"} offset 5m == 0')] == ['up{job=~"a|b"}']
    assert [s.text() for s in promql.selectors("time() - probe_last_run_timestamp_seconds > 300")] == [
        "probe_last_run_timestamp_seconds"]
    narrowed = promql.selectors('probe_success{probe="a"}')[0].with_labels({"probe": "b", "region": "eu"})
    assert narrowed.text() == 'probe_success{probe="a",region="eu"}'


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


def test_preflight_waits_for_the_rule_inputs_narrowed_to_the_expected_labels() -> None:
    from probes.drills.preflight import _label_regex, needs

    rule = AlertRule("ProbeFailing", "probe_success == 0", 2, {"severity": "critical"}, "g", 0)
    labels = {"alertname": "ProbeFailing", "probe": "search", "severity": "critical"}
    assert [n.text for n in needs(rule, labels, {})] == ['probe_success{probe="search"}']
    # Through recording rules down to the raw counters; a recorded series' labels (slo) are not theirs.
    burn = AlertRule("SLOErrorBudgetBurn", BURN, 120, {"severity": "page"}, "g", 30)
    texts = [n.text for n in needs(burn, {"slo": "search-availability", "severity": "page"}, RECORDED)]
    assert texts == ['http_requests_total{job="api",status=~"5.."}', 'http_requests_total{job="api"}']
    assert all(n.selector.counter_range for n in needs(burn, {}, RECORDED))
    # A fault's searched path regex as an (anchored) label regex.
    assert _label_regex("^/api/search") == "/api/search.*"
    assert _label_regex("/items/[0-9]+$") == ".*/items/[0-9]+"
