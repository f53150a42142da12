"""The fleet end to end: three `probe-agent run` processes on 127.0.0.2, .3 and .4 (two replicas in eu-west-1,
one agent in us-east-1) load one config from a local HTTP server and probe their region's demo target; a real
Prometheus runs the shipped rules (`for: 2s`, 10 s windows) and a real Alertmanager the shipped routes and
inhibitions, notifying the drill receiver.

- a config change on the server reaches every agent within two poll intervals;
- the search probe failing in one region fires ProbeFailing for that region only;
- failing in both regions fires ProbeFailingMultiRegion, and Alertmanager inhibits the regional alerts;
- a stopped replica fires ProbeAgentDown, not ProbeFailing for its region.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import yaml

from probes.drills.local_stack import LocalStack, shorten_rules
from probes.drills.receiver import Inbox, create_app
from tests.support.config_server import ConfigServer, config_server
from tests.support.faults import FaultClient
from tests.support.httpserver import serve_asgi
from tests.support.metrics import scrape, value
from tests.support.processes import Started, cli, started, stop, wait_until
from tests.support.prom import RULES, active_alerts, require_binaries

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
TOKEN = "fleet-fault-token"
POLL = 2.0  # agent.config_poll_interval, seconds

FLEET = f"""
agent: {{config_poll_interval: {POLL:g}s}}
defaults: {{interval: 500ms, timeout: 400ms}}
probes:
  - {{name: search, type: http, url: "${{TARGET_URL}}/api/search?q=laptop"}}
  - {{name: health, type: http, url: "${{TARGET_URL}}/health", regions: [eu-west-1]}}
"""
FLEET_V2 = FLEET + '  - {name: ready, type: http, url: "${TARGET_URL}/health/ready", regions: [us-east-1]}\n'


class FleetStack(LocalStack):
    """The local stack with one `probe-agent` job scraping every agent, and the shipped alertmanager.yml with
    its receivers pointed at the test's receiver (only the waits shrink: routes and inhibitions are as shipped)."""

    def __init__(self, agents: list[str], rule_files: list[Path], receiver_url: str) -> None:
        super().__init__(scrape={"probe-agent": agents[0]}, rule_files=rule_files, receiver_url=receiver_url)
        self.agents = agents

    def prometheus_config(self, rule_files: list[Path], alertmanager_port: int | None) -> dict[str, Any]:
        config = super().prometheus_config(rule_files, alertmanager_port)
        config["scrape_configs"] = [{"job_name": "probe-agent", "static_configs": [
            {"targets": [urlsplit(url).netloc for url in self.agents]}]}]
        return config

    def alertmanager_config(self) -> dict[str, Any]:
        config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_YML.read_text())
        base = urlsplit(self.receiver_url or "")
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = urlunsplit(urlsplit(hook["url"])._replace(scheme=base.scheme, netloc=base.netloc))
        # group_wait stays longer than a couple of evaluations: ProbeFailingMultiRegion reads recording rules
        # of another group, so it can become true an evaluation after the regional ProbeFailing, and the
        # inhibition only holds back a notification that is still waiting (as with the shipped 10s / 15s).
        for route in [config["route"], *config["route"].get("routes", [])]:
            waits = {"group_wait": "4s", "group_interval": "1s"}
            route.update({key: value for key, value in waits.items() if key in route})
        return config


class Fleet:
    def __init__(self, server: ConfigServer, agents: dict[str, Started], targets: dict[str, FaultClient],
                 stack: LocalStack, inbox: Inbox) -> None:
        self.server = server
        self.agents = agents
        self.targets = targets
        self.stack = stack
        self.inbox = inbox

    def url(self, agent: str) -> str:
        return self.agents[agent].urls["agent"]

    def alerts(self, name: str, state: str = "firing", **labels: str) -> list[dict[str, Any]]:
        return [a for a in active_alerts(self.stack.prometheus_url)
                if a["labels"]["alertname"] == name and a["state"] == state
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def any_alert(self, name: str, **labels: str) -> bool:
        return bool(self.alerts(name, "firing", **labels) or self.alerts(name, "pending", **labels))

    def notified(self, name: str, **labels: str) -> bool:
        return self.inbox.first("firing", name, labels, after=0) is not None

    def wait_firing_and_notified(self, name: str, **labels: str) -> None:
        wait_until(lambda: self.alerts(name, **labels), 40, interval=0.25, what=f"{name} {labels} firing")
        wait_until(lambda: self.notified(name, **labels), 20, interval=0.25, what=f"{name} {labels} notified")


@contextlib.contextmanager
def _agent(server: ConfigServer, host: str, target: str, args: list[str], env: dict[str, str]) -> Iterator[Started]:
    cmd = cli("run", "--config", server.config_url, "--listen", f"{host}:0", *args)
    with started(cmd, expect=["agent"], env={"TARGET_URL": target, **env}) as proc:
        yield proc


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    require_binaries()
    workdir = tmp_path_factory.mktemp("fleet")
    target_cmd = cli("target", "--listen", "127.0.0.1:0", "--admin-token", TOKEN)
    inbox = Inbox()
    with contextlib.ExitStack() as stack:
        targets = {region: stack.enter_context(started(target_cmd, expect=["target"])).urls["target"]
                   for region in ("eu-west-1", "us-east-1")}
        server = stack.enter_context(config_server(FLEET))
        receiver = stack.enter_context(serve_asgi(create_app(inbox)))
        agents = {
            # Identity three ways: flags, environment, flags.
            "eu-1": stack.enter_context(_agent(server, "127.0.0.2", targets["eu-west-1"],
                                               ["--region", "eu-west-1", "--agent-id", "eu-1"], {})),
            "eu-2": stack.enter_context(_agent(server, "127.0.0.3", targets["eu-west-1"], [],
                                               {"PROBE_AGENT_REGION": "eu-west-1", "PROBE_AGENT_ID": "eu-2"})),
            "us-1": stack.enter_context(_agent(server, "127.0.0.4", targets["us-east-1"],
                                               ["--region", "us-east-1", "--agent-id", "us-1"], {})),
        }
        rules = shorten_rules(RULES, workdir / "rules")
        local = stack.enter_context(FleetStack([a.urls["agent"] for a in agents.values()], rules, receiver))
        faults = {region: FaultClient(url, TOKEN) for region, url in targets.items()}
        for client in faults.values():
            stack.callback(client.close)
        yield Fleet(server, agents, faults, local, inbox)


def test_agents_load_the_shared_config_with_their_own_identity_and_region(fleet: Fleet) -> None:
    expected = {"eu-1": ("127.0.0.2", "eu-west-1", 2), "eu-2": ("127.0.0.3", "eu-west-1", 2),
                "us-1": ("127.0.0.4", "us-east-1", 1)}
    for agent, (host, region, probes) in expected.items():
        assert urlsplit(fleet.url(agent)).hostname == host
        text = scrape(fleet.url(agent) + "/metrics")
        assert value(text, "probe_agent_info", region=region, agent=agent, shard="0/1") == 1
        assert value(text, "probe_agent_probes") == probes, agent

    def all_succeeding() -> bool:
        query = 'probe_success{job="probe-agent",probe="search"} == 1'
        result = httpx.get(f"{fleet.stack.prometheus_url}/api/v1/query", params={"query": query}, timeout=5).json()
        return {r["metric"]["agent"] for r in result["data"]["result"]} == set(expected)

    wait_until(all_succeeding, 30, interval=0.25, what="every agent's search probe succeeding in Prometheus")


def test_a_config_change_reaches_every_agent_within_two_poll_intervals(fleet: Fleet) -> None:
    wait_until(lambda: fleet.server.statuses().count("304") >= 3, 3 * POLL + 5, what="conditional polls")
    changed_at = time.time()
    fleet.server.set_text(FLEET_V2)

    def reloaded(agent: str) -> float:
        text = scrape(fleet.url(agent) + "/metrics")
        return value(text, "probe_agent_config_last_reload_timestamp_seconds") or 0.0

    wait_until(lambda: all(reloaded(a) > changed_at for a in fleet.agents), 4 * POLL + 10, interval=0.2,
               what="every agent reloading the changed config")
    delays = {agent: reloaded(agent) - changed_at for agent in fleet.agents}
    assert all(delay <= 2 * POLL for delay in delays.values()), delays
    # The new probe is for us-east-1 only: the selection is applied on reload too.
    probes = {a: value(scrape(fleet.url(a) + "/metrics"), "probe_agent_probes") for a in fleet.agents}
    assert probes == {"eu-1": 2, "eu-2": 2, "us-1": 2}


def test_one_region_failing_fires_only_that_regions_alert(fleet: Fleet) -> None:
    fleet.targets["us-east-1"].add(type="error", status=503, match={"path": "^/api/search"}, ttl="2m")
    fleet.wait_firing_and_notified("ProbeFailing", probe="search", region="us-east-1")
    # Both alerts would have gone pending together: one region of two is regional, not global.
    assert not fleet.any_alert("ProbeFailingMultiRegion")
    assert not fleet.any_alert("ProbeFailing", region="eu-west-1")


def test_two_regions_failing_fire_the_global_alert_and_inhibit_the_regional_ones(fleet: Fleet) -> None:
    if not fleet.alerts("ProbeFailing", probe="search", region="us-east-1"):
        pytest.skip("needs the one-region failure of the previous test")
    fleet.targets["eu-west-1"].add(type="error", status=503, match={"path": "^/api/search"}, ttl="2m")
    fleet.wait_firing_and_notified("ProbeFailingMultiRegion", probe="search")
    assert fleet.alerts("ProbeFailing", probe="search", region="eu-west-1"), "Prometheus still fires it"

    def inhibited() -> set[str]:
        alerts = httpx.get(f"{fleet.stack.alertmanager_url}/api/v2/alerts", timeout=5).json()
        return {a["labels"].get("region", "") for a in alerts
                if a["labels"]["alertname"] == "ProbeFailing" and a["labels"]["probe"] == "search"
                and a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]}

    wait_until(lambda: inhibited() == {"eu-west-1", "us-east-1"}, 15, interval=0.25,
               what="Alertmanager inhibiting both regional alerts")
    time.sleep(3)  # a few group intervals: an uninhibited notification would have arrived by now
    assert not fleet.notified("ProbeFailing", probe="search", region="eu-west-1"), fleet.inbox.notifications


def test_a_stopped_replica_fires_agent_down_not_a_regional_failure(fleet: Fleet) -> None:
    for client in fleet.targets.values():
        client.clear()
    wait_until(lambda: not fleet.any_alert("ProbeFailing") and not fleet.any_alert("ProbeFailingMultiRegion"),
               40, interval=0.25, what="the probe failures resolving")
    stopped = fleet.agents["eu-2"]
    stop(stopped.proc)
    instance = urlsplit(stopped.urls["agent"]).netloc
    fleet.wait_firing_and_notified("ProbeAgentDown", instance=instance, reason="unreachable")
    # The other replica of eu-west-1 still probes: a dead agent is not a regional outage.
    assert not fleet.any_alert("ProbeFailing")
    assert [a["labels"]["instance"] for a in fleet.alerts("ProbeAgentDown")] == [instance]
