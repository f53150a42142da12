"""SLOs end to end: the agent, the demo target, the generated rules in a real Prometheus, a real Alertmanager
and a webhook receiver, with every window divided by 60 (`--time-scale 60`: 1h -> 1m, 5m -> 5s, 30d -> 12h).

With no fault nothing fires and `slo report` shows the whole budget; a fault that fails every run pages
(SLOErrorBudgetBurn, severity page, 1h/5m) through Alertmanager, and the report then shows the budget spent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from probes.drills.local_stack import LocalStack
from probes.drills.receiver import Inbox, create_app
from tests.support.faults import FaultClient
from tests.support.httpserver import serve_asgi
from tests.support.metrics import samples, scrape
from tests.support.processes import cli, run_cli, started, wait_until
from tests.support.prom import require_binaries

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "slo-e2e-token"
SCALE = "60"
REGION = "e2e-region"
AGENT = """
agent: {{region: {region}, id: slo-agent}}
defaults: {{interval: 1s, timeout: 1s}}
probes:
  - {{name: search-canary, type: http, url: "{target}/api/search?q=laptop"}}
slos:
  - {{name: search-availability, probes: [search-canary], objective: 99, window: 30d}}
  - {{name: search-latency, probes: [search-canary], sli: latency, threshold: 700ms, objective: 90, window: 28d}}
"""
PAGE = {"slo": "search-availability", "severity": "page", "long_window": "1h", "short_window": "5m"}


@dataclass
class Env:
    config: Path
    agent: str
    target: str
    stack: LocalStack
    inbox: Inbox


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_binaries()
    workdir = tmp_path_factory.mktemp("slo-e2e")
    with started(cli("target", "--listen", "127.0.0.1:0", "--admin-token", TOKEN), expect=["target"]) as target:
        config = workdir / "agent.yaml"
        config.write_text(AGENT.format(region=REGION, target=target.urls["target"]))
        rules = workdir / "slo-rules.yml"
        generated = run_cli("slo", "rules", "--config", str(config), "--out", str(rules), "--time-scale", SCALE)
        assert generated.returncode == 0, generated.stderr
        inbox = Inbox()
        with started(cli("run", "--config", str(config), "--listen", "127.0.0.1:0"), expect=["agent"]) as agent, \
                serve_asgi(create_app(inbox)) as receiver, \
                LocalStack(scrape={"probe-agent": f"{agent.urls['agent']}/metrics"}, rule_files=[rules],
                           receiver_url=f"{receiver}/alerts") as stack:
            yield Env(config, agent.urls["agent"], target.urls["target"], stack, inbox)


def _query(env: Env, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{env.stack.prometheus_url}/api/v1/query", params={"query": expr}, timeout=5).json()
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _burn_alerts(env: Env) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{env.stack.prometheus_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == "SLOErrorBudgetBurn"]


def _report(env: Env, fmt: str = "json") -> tuple[int, str]:
    proc = run_cli("slo", "report", "--config", str(env.config), "--prometheus", env.stack.prometheus_url,
                   "--format", fmt, "--time-scale", SCALE)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def _rows(stdout: str) -> dict[str, dict[str, Any]]:
    return {row["slo"]: row for row in json.loads(stdout)["slos"]}


def test_the_agent_adds_the_latency_threshold_as_a_bucket(env: Env) -> None:
    text = scrape(f"{env.agent}/metrics")
    bounds = {labels["le"] for labels, _ in samples(text, "probe_latency_seconds_bucket", probe="search-canary")}
    assert {"0.5", "0.7", "1.0"} <= bounds


def test_no_fault_nothing_fires_and_the_whole_budget_is_left(env: Env) -> None:
    # The rules have data over the short and the long page windows, so a wrong alert would fire now.
    wait_until(lambda: _query(env, 'slo:probe_error_ratio:rate5m{slo="search-availability"}')
               and _query(env, 'slo:probe_error_ratio:rate1h{slo="search-latency"}')
               and _query(env, 'slo:error_budget_remaining:ratio{slo="search-availability"}'), timeout=30,
               what="recorded error ratios")
    time.sleep(5)
    assert _burn_alerts(env) == []
    assert env.inbox.notifications == []
    [remaining] = _query(env, 'slo:error_budget_remaining:ratio{slo="search-availability"}')
    assert remaining["metric"]["region"] == REGION and float(remaining["value"][1]) == 1.0

    code, out = _report(env)
    assert code == 0, out
    rows = _rows(out)
    availability, latency = rows["search-availability"], rows["search-latency"]
    assert availability["region"] == REGION and availability["budget_spent"] is False
    assert availability["budget_remaining"] == 1.0 and availability["actual"] == 100.0
    assert availability["burn_rate_1h"] == 0.0
    assert latency["budget_remaining"] > 0.5  # 700ms on loopback: a rare slow run at most


def test_every_dashboard_query_has_data(env: Env) -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/probe-agent-slos.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for slo in ("search-availability", "search-latency"):
        for expr in exprs:
            concrete = expr.replace("$slo", slo).replace("$region", ".*")
            wait_until(lambda q=concrete: _query(env, q), timeout=30, what=f"data for {concrete}")


def test_a_fault_failing_every_run_pages_through_alertmanager_and_spends_the_budget(env: Env) -> None:
    faults = FaultClient(env.target, TOKEN)
    try:
        injected = time.monotonic()
        faults.add(type="error", status=503, probability=1.0, match={"path": "^/api/search"}, ttl="2m")
        wait_until(lambda: env.inbox.first("firing", "SLOErrorBudgetBurn", PAGE, injected) is not None,
                   timeout=45, interval=0.2, what="the SLOErrorBudgetBurn page at the receiver")
        notified = env.inbox.first("firing", "SLOErrorBudgetBurn", PAGE, injected)
        assert notified is not None
        print(f"timing: fault -> page notification {notified - injected:.1f}s (scale 1/{SCALE})")
        paging = [a for a in _burn_alerts(env) if a["labels"]["severity"] == "page"]
        assert {a["labels"]["slo"] for a in paging} == {"search-availability"}  # fast 503s are good latency
        assert {a["labels"]["region"] for a in paging} == {REGION}

        code, out = _report(env)
        assert code == 1, out
        rows = _rows(out)
        availability, latency = rows["search-availability"], rows["search-latency"]
        assert availability["budget_spent"] is True and availability["budget_remaining"] < 0
        assert availability["actual"] < 99 and availability["burn_rate_1h"] > 14.4
        assert latency["budget_spent"] is False
        code, table = _report(env, "table")
        assert code == 1 and "SPENT" in table and "1 of 2 error budgets spent" in table
    finally:
        faults.clear()
        faults.close()
