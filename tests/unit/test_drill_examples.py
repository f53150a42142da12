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
