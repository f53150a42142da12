from __future__ import annotations

from probes.agent.self_metrics import AgentMetrics
from probes.identity import AgentIdentity
from probes.result import ProbeResult, Sample, StepResult
from probes.sinks.prometheus import PrometheusSink
from tests.support.metrics import all_samples


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for name, labels, value in all_samples(text):
        out.setdefault(name, []).append((labels, value))
    return out


def _sink(identity: AgentIdentity) -> PrometheusSink:
    return PrometheusSink(None, identity, AgentMetrics(identity))


def _result(**kw: object) -> ProbeResult:
    base: dict[str, object] = {"probe": "p", "type": "search", "success": True, "duration_seconds": 0.03,
                               "status_code": 200, "phases": {"connect": 0.001, "processing": 0.02}}
    base.update(kw)
    return ProbeResult(**base)  # type: ignore[arg-type]


def test_series_carry_probe_type_region_agent_and_escape_values() -> None:
    sink = _sink(AgentIdentity(region='eu "west"', agent="a\\1"))
    sink.write(_result())
    fam = _families(sink.render())
    labels, value = fam["probe_success"][0]
    assert labels == {"probe": "p", "type": "search", "region": 'eu "west"', "agent": "a\\1"} and value == 1


def test_counters_and_histogram_accumulate_and_gauges_keep_the_last_run() -> None:
    sink = _sink(AgentIdentity("r", "a"))
    sink.write(_result(duration_seconds=0.003))
    sink.write(_result(success=False, reason="timeout", duration_seconds=2.0, status_code=0))
    sink.write(_result(success=False, reason="status", duration_seconds=0.2, status_code=503))
    fam = _families(sink.render())
    runs = {lab["result"]: v for lab, v in fam["probe_runs_total"]}
    assert runs == {"success": 1, "failure": 2}
    assert {lab["reason"]: v for lab, v in fam["probe_failures_total"]} == {"timeout": 1, "status": 1}
    assert fam["probe_http_status_code"][0][1] == 503
    buckets = {lab["le"]: v for lab, v in fam["probe_latency_seconds_bucket"]}
    assert buckets["0.005"] == 1 and buckets["0.25"] == 2 and buckets["2.5"] == 3 and buckets["+Inf"] == 3
    assert fam["probe_latency_seconds_count"][0][1] == 3
    assert abs(fam["probe_latency_seconds_sum"][0][1] - 2.203) < 1e-9


def test_samples_and_steps_are_exported_and_replaced_by_the_next_run() -> None:
    sink = _sink(AgentIdentity("r", "a"))
    sink.write(_result(samples=[Sample("probe_search_hits", 12, help="hits"),
                                Sample("probe_es_status", 1, (("color", "green"),))],
                       steps=[StepResult("login", True, 0.01), StepResult("search", False, 0.02, "status")]))
    fam = _families(sink.render())
    assert fam["probe_search_hits"][0][1] == 12
    assert fam["probe_es_status"][0][0]["color"] == "green"
    assert {lab["step"]: v for lab, v in fam["probe_step_success"]} == {"login": 1, "search": 0}
    sink.write(_result(samples=[Sample("probe_search_hits", 3)]))
    fam = _families(sink.render())
    assert fam["probe_search_hits"][0][1] == 3
    assert "probe_es_status" not in fam


def test_register_exports_zero_counters_and_forget_removes_a_probe() -> None:
    sink = _sink(AgentIdentity("r", "a"))
    sink.add_probe("new", "http")
    fam = _families(sink.render())
    assert {lab["result"]: v for lab, v in fam["probe_runs_total"]} == {"success": 0, "failure": 0}
    sink.forget("new")
    assert sink.render() == ""


def test_scrape_of_1000_probes_is_one_family_header_each() -> None:
    sink = _sink(AgentIdentity("r", "a"))
    for i in range(1000):
        sink.write(_result(probe=f"p{i}"))
    text = sink.render()
    assert text.count("# TYPE probe_success gauge") == 1
    assert len(_families(text)["probe_success"]) == 1000
