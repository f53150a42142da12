"""deploy/examples/drills.yaml stays valid and only expects alerts the shipped rules define."""

from __future__ import annotations

from pathlib import Path

import yaml

from probes.drills import spec
from probes.drills.conduct import check_rules
from probes.drills.prometheus import AlertRule

ROOT = Path(__file__).resolve().parents[2]


def _shipped_rules() -> list[AlertRule]:
    rules = []
    for path in sorted((ROOT / "deploy/prometheus/rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue  # a recording rule
                rules.append(AlertRule(rule["alert"], rule["expr"], 0, rule.get("labels", {}), group["name"], 0))
    return rules


def test_example_drills_load_and_match_the_shipped_rules() -> None:
    loaded = spec.load(ROOT / "deploy/examples/drills.yaml", env={"FAULT_TOKEN": "t", "PROXY_TOKEN": "p"})
    assert {d.fault.injector for d in loaded.spec.drills} == {"target", "proxy", "toxiproxy", "command"}
    check_rules(loaded, loaded.spec.drills, _shipped_rules())


def test_example_within_values_cover_the_bounds_of_the_shipped_configs() -> None:
    """Each `within` is at least the bound computed from the shipped Prometheus, Alertmanager and agent
    configs, as the drill itself would refuse it otherwise."""
    from probes.agent.config_file import load_config
    from probes.drills.alertmanager import route_timing
    from probes.drills.bounds import Inputs, ProbeTiming, compute
    from probes.drills.conduct import _candidate_rules, intensity
    from probes.drills.prometheus import RecordingRule, ScrapeTiming, prom_duration

    loaded = spec.load(ROOT / "deploy/examples/drills.yaml", env={"FAULT_TOKEN": "t", "PROXY_TOKEN": "p"})
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    glob = prometheus["global"]
    timing = ScrapeTiming(prom_duration(glob["scrape_interval"], 60), prom_duration(glob["evaluation_interval"], 60))
    alertmanager = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    rules = []
    recording: dict[str, RecordingRule] = {}
    for path in sorted((ROOT / "deploy/prometheus/rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            interval = prom_duration(group.get("interval"), 0)
            for rule in group["rules"]:
                if "record" in rule:
                    recording[rule["record"]] = RecordingRule(rule["record"], rule["expr"], group["name"], interval)
                    continue
                rules.append(AlertRule(rule["alert"], rule["expr"], prom_duration(rule.get("for"), 0),
                                       rule.get("labels", {}), group["name"], interval))
    agent_path = loaded.agent_config_path(loaded.spec.drills[0])
    assert agent_path is not None and agent_path.exists()
    probes = [ProbeTiming(p.name, p.interval, p.timeout, p.retries, p.retry_delay)
              for p in load_config(str(agent_path)).probes]
    for drill in loaded.spec.drills:
        for expected in drill.expect:
            labels = {"alertname": expected.alert, **expected.labels}
            [rule] = _candidate_rules(rules, expected)
            inputs = Inputs(timing, recording=recording, probes=probes, intensity=intensity(drill), request_gap=1.0)
            bound = compute(rule, inputs,
                            labels, route_timing(alertmanager, {**rule.labels, **labels}).group_wait)
            assert bound.reachable, (drill.name, expected.alert, bound.unreachable)
            assert bound.firing <= expected.within, (drill.name, expected.alert, bound.explain())
