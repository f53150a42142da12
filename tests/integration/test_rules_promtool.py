"""The shipped rules, dashboard, Prometheus and Alertmanager configs: promtool/amtool, unit tests, real binaries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from probes.drills.local_stack import LocalStack, alertmanager_bin, prometheus_bin
from probes.errors import CannotRun

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))


def _tool(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(path).exists():
        pytest.skip(f"{name} is not installed")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)


def test_there_are_rules_and_tests_for_each() -> None:
    assert RULES and RULE_TESTS
    tested = {
        line.strip().removeprefix("- ../rules/")
        for t in RULE_TESTS
        for line in t.read_text().splitlines()
        if line.strip().startswith("- ../rules/")
    }
    assert tested == {r.name for r in RULES}


def test_every_alert_has_a_unit_test() -> None:
    import yaml

    alerts = {
        rule["alert"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert alerts - tested == set()
    assert {"ProbeFailing", "ProbeSlow", "HighErrorRate", "HighResponseTime", "ServiceDown"} <= alerts


def test_promtool_check_rules() -> None:
    result = _run(_tool("promtool"), "check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = _run(_tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_promtool_check_config() -> None:
    result = _run(_tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_check_config() -> None:
    result = _run(_tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


# --- the Grafana dashboard -----------------------------------------------------------------------------------

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "probe-agent.json"
# Series Prometheus makes itself rather than scraping them.
PROMETHEUS_SERIES = {"up", "ALERTS"}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _as_promql(expr: str) -> str:
    """A panel's query with Grafana's variables replaced, as Grafana sends it."""
    return re.sub(r"\$(__rate_interval|__interval)", "5m", re.sub(r"\$\w+", ".*", expr))


def _metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    words = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text)
    return {w for w in words if w not in {"and", "or", "unless", "offset", "bool", "inf", "nan"}}


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    import yaml

    exprs = _dashboard_exprs()
    assert exprs
    # promtool has no "check query"; a recording rule per query gets each one through Prometheus' parser.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": _as_promql(e)} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump(rules))
    result = _run(_tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


AGENT_CONFIG = """
agent: {{region: r1, id: a1}}
defaults: {{interval: 1s, timeout: 900ms}}
probes:
  - {{name: health, type: http, url: "{u}/health"}}
  - {{name: search, type: search, url: "{u}/api/search", params: {{q: laptop}},
     expect: {{min_hits: 1, top_k_contains: [sku-00042]}}}}
  - name: login-then-search
    type: scripted
    steps:
      - {{name: login, request: {{method: POST, url: "{u}/auth/token", json: {{user: p}}}}}}
  - {{name: missing, type: http, url: "{u}/no-such-page"}}
"""


def test_dashboard_queries_only_what_a_real_agent_exports_or_the_rules_record(tmp_path: Path) -> None:
    import yaml

    from tests.support.metrics import scrape
    from tests.support.processes import cli, started, wait_until

    recorded = {rule["record"] for path in RULES for group in yaml.safe_load(path.read_text())["groups"]
                for rule in group["rules"] if "record" in rule}
    used = {name for e in _dashboard_exprs() for name in _metric_names(e)}
    with started(cli("target", "--listen", "127.0.0.1:0"), expect=["target"]) as target:
        config = tmp_path / "agent.yaml"
        config.write_text(AGENT_CONFIG.format(u=target.urls["target"]))
        with started(cli("run", "--config", str(config), "--listen", "127.0.0.1:0"), expect=["agent"]) as agent:
            url = agent.urls["agent"] + "/metrics"
            # Every probe ran, one of them failed.
            wait_until(lambda: scrape(url).count("probe_last_run_timestamp_seconds{") >= 4
                       and "probe_failures_total{" in scrape(url), timeout=20, what="a run of every probe")
            text = scrape(url)
    exported = set()
    for family in text_string_to_metric_families(text):
        exported.add(family.name)
        exported |= {f"{family.name}_total"} if family.type == "counter" else set()
        exported |= {s.name for s in family.samples}
    assert used and used <= exported | recorded | PROMETHEUS_SERIES, used - exported - recorded


# --- Alertmanager ----------------------------------------------------------------------------------------------

class _ShippedAlertmanager(LocalStack):
    """The local stack with deploy/alertmanager/alertmanager.yml, its receivers pointed at `receiver_url`."""

    def alertmanager_config(self) -> dict[str, Any]:
        import yaml

        config: dict[str, Any] = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
        base = urlsplit(self.receiver_url or "")
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = urlunsplit(urlsplit(hook["url"])._replace(netloc=base.netloc))
        # Only the waits shrink: routes, matchers and inhibitions are as shipped.
        for route in [config["route"], *config["route"].get("routes", [])]:
            for key in ("group_wait", "group_interval"):
                if key in route:
                    route[key] = "1s"
        return config


def test_alertmanager_inhibits_regional_alerts_of_a_probe_failing_globally() -> None:
    try:
        alertmanager_bin(), prometheus_bin()
    except CannotRun as exc:
        pytest.skip(str(exc))
    from tests.support.processes import started, wait_until

    log = [sys.executable, str(DEPLOY / "alertmanager" / "webhook-log.py"), "--listen", "127.0.0.1:0"]
    with started(log, expect=["receiver"]) as receiver, \
            _ShippedAlertmanager(scrape={}, rule_files=[], receiver_url=receiver.urls["receiver"]) as stack:
        alerts = [
            {"alertname": "ProbeFailingMultiRegion", "probe": "search", "type": "search", "severity": "critical"},
            {"alertname": "ProbeFailing", "probe": "search", "type": "search", "region": "eu-west-1",
             "severity": "warning"},
            {"alertname": "ProbeFailing", "probe": "search", "type": "search", "region": "us-east-1",
             "severity": "warning"},
            {"alertname": "ProbeFailing", "probe": "health", "type": "http", "region": "us-east-1",
             "severity": "warning"},
        ]
        response = httpx.post(f"{stack.alertmanager_url}/api/v2/alerts", json=[{"labels": a} for a in alerts],
                              timeout=5)
        assert response.status_code == 200, response.text

        def notified() -> bool:
            text = receiver.text()
            return ("/oncall firing ProbeFailingMultiRegion probe=search" in text
                    and "/chat firing ProbeFailing probe=health region=us-east-1" in text
                    and "/alerts firing ProbeFailing probe=health" in text)

        wait_until(notified, timeout=20, what="the global alert on-call and the other probe's regional alert in chat")
        time.sleep(2)  # a few more group intervals: an inhibited notification would have come by now
        assert "ProbeFailing probe=search" not in receiver.text(), receiver.text()
        state = httpx.get(f"{stack.alertmanager_url}/api/v2/alerts", timeout=5).json()
        inhibited = {(a["labels"]["alertname"], a["labels"]["probe"], a["labels"].get("region"))
                     for a in state if a["status"]["inhibitedBy"]}
        assert inhibited == {("ProbeFailing", "search", "eu-west-1"), ("ProbeFailing", "search", "us-east-1")}
