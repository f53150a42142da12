"""Cross-region consistency end to end: three agents in three regions, each probing its own demo target,
scraped by a real Prometheus running the shipped divergence rule (with `for: 2s`); one target is given a
`rewrite` fault. The alert fires and `probe-agent diff` names the region and the changed ids; with no
fault nothing fires and `diff` reports agreement."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from probes.drills.local_stack import LocalStack, shorten_rules
from tests.support.faults import FaultClient
from tests.support.processes import cli, run_cli, started, wait_until
from tests.support.prom import RULES, active_alerts, require_binaries

TOKEN = "consistency-token"
ALERT = "SearchResultsDivergeAcrossRegions"
REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")
CONFIG = """
agent: {{id: agent-{region}}}
defaults: {{interval: 1s, timeout: 900ms}}
probes:
  - name: search-laptop
    type: search
    url: "{target}/api/search"
    params: {{q: laptop, limit: 10}}
    expect: {{min_hits: 1}}
"""


@dataclass
class Fleet:
    targets: dict[str, str]  # region -> demo target URL
    agents: dict[str, str]  # region -> agent URL
    prometheus: str


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    require_binaries()
    workdir = tmp_path_factory.mktemp("consistency")
    only = workdir / "shipped"
    only.mkdir()
    shutil.copy(RULES / "consistency.yml", only / "consistency.yml")
    rules = shorten_rules(only, workdir / "rules")
    with contextlib.ExitStack() as stack:
        targets: dict[str, str] = {}
        agents: dict[str, str] = {}
        for index, region in enumerate(REGIONS):
            target = stack.enter_context(started(cli("target", "--listen", "127.0.0.1:0", "--admin-token", TOKEN),
                                                 expect=["target"]))
            targets[region] = target.urls["target"]
            config = workdir / f"agent-{region}.yaml"
            config.write_text(CONFIG.format(region=region, target=targets[region]))
            # Each agent on its own loopback address, as agents on different hosts would be.
            agent = stack.enter_context(started(cli("run", "--config", str(config), "--region", region,
                                                    "--listen", f"127.0.0.{index + 2}:0"), expect=["agent"]))
            agents[region] = agent.urls["agent"]
        scrape = {f"agent-{region}": f"{url}/metrics" for region, url in agents.items()}
        prometheus = stack.enter_context(LocalStack(scrape=scrape, rule_files=rules, with_alertmanager=False))
        yield Fleet(targets, agents, prometheus.prometheus_url)


def divergence(fleet: Fleet) -> list[dict[str, Any]]:
    return [a for a in active_alerts(fleet.prometheus) if a["labels"]["alertname"] == ALERT]


def diff(fleet: Fleet, *extra: str) -> tuple[int, str]:
    proc = run_cli("diff", "--agents", *fleet.agents.values(), *extra, timeout=30)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def fingerprints_seen(fleet: Fleet) -> set[str]:
    query = 'count_values by (region) ("fp", probe_search_result_fingerprint{probe="search-laptop"})'
    data = httpx.get(f"{fleet.prometheus}/api/v1/query", params={"query": query}, timeout=5).json()["data"]
    return {f"{r['metric']['region']}={r['metric']['fp']}" for r in data["result"]}


def test_agreeing_regions_fire_nothing_and_diff_reports_agreement(fleet: Fleet) -> None:
    wait_until(lambda: len(fingerprints_seen(fleet)) == 3, 30, what="a fingerprint from each region")
    assert len({seen.split("=")[1] for seen in fingerprints_seen(fleet)}) == 1
    time.sleep(5)  # longer than the shortened `for: 2s` plus a scrape and an evaluation
    assert divergence(fleet) == []
    code, out = diff(fleet)
    assert code == 0, out
    assert out.startswith("search-laptop: agree: ")
    assert all(region in out for region in REGIONS)


@pytest.fixture
def faulty(fleet: Fleet) -> Iterator[FaultClient]:
    client = FaultClient(fleet.targets["ap-south-1"], TOKEN)
    try:
        yield client
    finally:
        client.clear()
        client.close()


def test_a_rewritten_answer_in_one_region_fires_and_diff_names_it(fleet: Fleet, faulty: FaultClient) -> None:
    faulty.add(type="rewrite", match={"path": "^/api/search"}, ttl="2m",
               rewrite=[{"path": "$.hits[0].id", "op": "set", "value": "sku-99999"}])
    started_at = time.monotonic()
    wait_until(lambda: any(a["state"] == "firing" for a in divergence(fleet)), 60, interval=0.25,
               what=f"{ALERT} firing")
    fired_after = time.monotonic() - started_at
    [alert] = divergence(fleet)
    assert alert["labels"]["probe"] == "search-laptop"
    description = alert["annotations"]["description"]
    majority, odd = sorted(description.split(": ", 1)[1].split(". Run")[0].split("; "), key=len, reverse=True)
    assert "eu-west-1, us-east-1" in majority and odd.endswith("from ap-south-1"), description
    assert fired_after < 45

    code, out = diff(fleet)
    assert code == 1, out
    assert "search-laptop: DIFFER: 2 answers" in out
    assert "majority" in out and "eu-west-1, us-east-1 (2 agents)" in out
    differs = out.split("differs", 1)[1]
    assert differs.split("\n", 1)[0].endswith("ap-south-1 (1 agent)")
    assert "missing: sku-00042 (#1)" in differs
    assert "extra:   sku-99999 (#1)" in differs
    assert "top-10 overlap 0.90" in differs

    code, text = diff(fleet, "--format", "json", "--probe", "search-laptop")
    assert code == 1
    report = json.loads(text)
    [probe] = report["probes"]
    odd_answer = next(a for a in probe["answers"] if not a["majority"])
    assert odd_answer["regions"] == ["ap-south-1"]
    assert odd_answer["missing"] == [{"id": "sku-00042", "rank": 1}]
    assert odd_answer["extra"] == [{"id": "sku-99999", "rank": 1}]
    assert odd_answer["kendall_tau"] == 1.0  # the other nine keep their order

    faulty.clear()
    wait_until(lambda: divergence(fleet) == [], 60, interval=0.25, what=f"{ALERT} resolved")
    wait_until(lambda: diff(fleet)[0] == 0, 20, what="diff to agree again")


def test_an_unreachable_agent_exits_3(fleet: Fleet) -> None:
    proc = run_cli("diff", "--agents", fleet.agents["eu-west-1"], "http://127.0.0.1:9", "--timeout", "2")
    assert proc.returncode == 3
    assert "cannot fetch results from http://127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr
