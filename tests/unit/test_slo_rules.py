"""SLO rule generation, time scaling, the latency bucket in the sink, and the report's formats (pure logic)."""

from __future__ import annotations

import json

import pytest

from probes.agent.self_metrics import AgentMetrics
from probes.config.slo import SloConfig
from probes.errors import UsageError
from probes.identity import AgentIdentity
from probes.result import ProbeResult
from probes.sinks.prometheus import LATENCY_BUCKETS, PrometheusSink
from probes.slo import report, rules
from probes.slo.windows import TimeScale
from tests.support.metrics import samples


def _slo(**kw: object) -> SloConfig:
    return SloConfig.model_validate({"name": "s", "probes": ["p.one", "p-two"], "objective": 99.9, **kw})


@pytest.mark.parametrize(("scale", "seconds", "expected"), [
    (1, 3600, "1h"), (720, 3600, "5s"), (720, 300, "417ms"), (60, 30 * 86400, "12h"), (1, 5400, "1h30m"),
])
def test_time_scale_divides_windows_into_promql_durations(scale: float, seconds: float, expected: str) -> None:
    assert TimeScale(scale).range(seconds) == expected


def test_time_scale_below_one_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        TimeScale(0.5)


def _rules(slo: SloConfig, scale: TimeScale | None = None) -> list[dict[str, object]]:
    return [rule for group in rules.groups(slo, scale or TimeScale()) for rule in group["rules"]]


def test_each_slo_gets_its_windows_budget_and_four_burn_alerts() -> None:
    burn, budget = rules.groups(_slo(window="3d"), TimeScale(60))
    assert (burn["name"], budget["name"], budget["interval"]) == ("slo:s", "slo:s:budget", "5s")
    records = [r["record"] for r in _rules(_slo(window="3d")) if "record" in r]
    assert len(records) == len(set(records))  # a 3d window is recorded once, not twice
    assert [r for r in records if r.startswith("slo:probe_error_ratio:")] == [
        f"slo:probe_error_ratio:rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")]
    alerts = [r for r in burn["rules"] if "alert" in r]
    assert [(a["labels"]["severity"], a["labels"]["long_window"], a["labels"]["short_window"]) for a in alerts] == [
        ("page", "1h", "5m"), ("page", "6h", "30m"), ("ticket", "1d", "2h"), ("ticket", "3d", "6h")]
    assert all(a["labels"]["slo"] == "s" and "for" not in a for a in alerts)
    assert "slo:probe_error_ratio:rate1h{slo=\"s\"} / 0.001 > 14.4" in alerts[0]["expr"]
    # Probe names are matched exactly: the dot is escaped (and the backslash doubled for PromQL).
    assert 'probe=~"p\\\\.one|p-two"' in burn["rules"][0]["expr"]


def test_latency_sli_counts_runs_above_the_threshold_bucket() -> None:
    expr = str(_rules(_slo(sli="latency", threshold="300ms"))[0]["expr"])
    assert 'probe_latency_seconds_bucket{probe=~"p\\\\.one|p-two",le="0.3"}[5m]' in expr
    assert "probe_latency_seconds_count" in expr


def test_the_sink_counts_runs_in_an_added_bucket() -> None:
    identity = AgentIdentity("r", "a")
    sink = PrometheusSink((*LATENCY_BUCKETS, 0.3), identity, AgentMetrics(identity))
    for duration in (0.2, 0.28, 0.4):
        sink.write(ProbeResult(probe="p", type="http", success=True, duration_seconds=duration))
    buckets = {lab["le"]: v for lab, v in samples(sink.render(), "probe_latency_seconds_bucket")}
    assert buckets["0.25"] == 1 and buckets["0.3"] == 2 and buckets["0.5"] == 3
    assert list(buckets) == sorted(buckets, key=lambda le: float(le))  # bounds stay in order


def _row(region: str | None, remaining: float | None) -> report.Row:
    return report.Row(slo="s", sli="availability", objective=99.9, window="30d", region=region,
                      actual=None if remaining is None else 100 - (1 - remaining) * 0.1,
                      budget_remaining=remaining, burn_rate_1h=0.5, burn_rate_6h=None)


def test_report_formats_mark_spent_budgets() -> None:
    rows = [_row("eu", 0.25), _row("us", -1.5), _row(None, None)]
    text = report.table(rows)
    assert "-150.0% SPENT" in text and "25.0%" in text and "no data" in text
    assert text.splitlines()[-1] == "1 of 2 error budgets spent"
    data = json.loads(report.as_json(rows))
    assert data["budget_spent"] is True
    assert [r["budget_spent"] for r in data["slos"]] == [False, True, False]
    assert set(data["slos"][0]) == {"slo", "sli", "objective", "window", "region", "actual", "budget_remaining",
                                    "burn_rate_1h", "burn_rate_6h", "budget_spent"}
    page = report.html(rows, "http://prom")
    assert '<tr class="fail" data-slo="s" data-region="us">' in page and "<script" not in page


def test_slo_dashboard_repeats_a_row_per_slo_and_queries_only_recorded_series() -> None:
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/probe-agent-slos.json"
    dashboard = json.loads(path.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "slo" in variables and "slo:objective:ratio" in variables["slo"]["query"]
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert [r.get("repeat") for r in rows] == ["slo"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for e in exprs for name in re.findall(r"\bslo:[a-z_0-9:]+", e)}
    recorded = {r["record"] for r in _rules(_slo()) if "record" in r}
    assert used and used <= recorded, used - recorded
    assert any("rate1h" in e for e in exprs) and any("rate6h" in e for e in exprs)
    assert all('slo="$slo"' in e for e in exprs)
