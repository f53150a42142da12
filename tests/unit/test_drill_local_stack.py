"""The local stack's generated configs and the time-scaled copy of the shipped rules (no binaries needed)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from probes.drills.local_stack import RULES_DIR, LocalStack, shorten_rules


def test_shortened_rules_change_only_time_constants(tmp_path: Path) -> None:
    written = shorten_rules(RULES_DIR, tmp_path)
    assert {p.name for p in written} == {p.name for p in RULES_DIR.glob("*.yml")}
    for path in written:
        original = yaml.safe_load((RULES_DIR / path.name).read_text())
        short = yaml.safe_load(path.read_text())
        for group, short_group in zip(original["groups"], short["groups"], strict=True):
            for rule, short_rule in zip(group["rules"], short_group["rules"], strict=True):
                assert short_rule.get("for") == ("2s" if "for" in rule else None)
                assert not re.search(r"\[\d+[mh]\]", short_rule["expr"])
                assert short_rule["expr"] == re.sub(r"\[\d+[mh]\]", "[10s]", rule["expr"])
                assert {k: v for k, v in short_rule.items() if k not in ("for", "expr")} == \
                    {k: v for k, v in rule.items() if k not in ("for", "expr")}


def test_generated_configs() -> None:
    stack = LocalStack(scrape={"demo-api": "http://127.0.0.1:8000/metrics", "agent": "https://10.0.0.1:9464/m"},
                       rule_files=[Path("/r/a.yml")], receiver_url="http://127.0.0.1:9099/alerts")
    prom = stack.prometheus_config([Path("/r/a.yml")], 9093)
    assert prom["global"] == {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["agent"]["scheme"] == "https" and jobs["agent"]["metrics_path"] == "/m"
    assert jobs["demo-api"]["static_configs"] == [{"targets": ["127.0.0.1:8000"]}]
    am = stack.alertmanager_config()
    assert am["route"]["group_wait"] == "1s" and am["route"]["group_interval"] == "1s"
    assert am["receivers"][0]["webhook_configs"] == [{"url": "http://127.0.0.1:9099/alerts", "send_resolved": True}]
