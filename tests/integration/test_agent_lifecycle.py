"""A running agent's log and its end: one log event per probe state change (not per run), and a SIGTERM
that lets the run in flight finish and reach the sinks before exit 0; a second signal exits at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.es_server import FakeElasticsearch
from tests.support.hostile import HostileServer
from tests.support.processes import Started, cli, started, wait_until

TOKEN = "lifecycle-token"


def _events(agent: Started) -> list[dict[str, Any]]:
    events = []
    for line in agent.text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def _state_events(agent: Started, probe: str) -> list[dict[str, Any]]:
    return [e for e in _events(agent) if e.get("logger") == "probes.state" and e.get("probe") == probe]


def _fault(url: str, method: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + "/-/faults", data=data, method=method,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status in (200, 201)


def _runs(agent_url: str, probe: str) -> float:
    with urllib.request.urlopen(agent_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("probe_runs_total{") and f'probe="{probe}"' in line)


def test_one_log_event_per_state_change_with_reason_and_outage_length(tmp_path: Path) -> None:
    with started(cli("target", "--listen", "127.0.0.1:0", "--admin-token", TOKEN), expect=["target"]) as target:
        url = target.urls["target"]
        config = tmp_path / "agent.yaml"
        config.write_text(f"probes:\n  - {{name: api, type: http, url: '{url}/health', interval: 500ms, "
                          "timeout: 400ms}\n")
        cmd = cli("run", "--config", str(config), "--listen", "127.0.0.1:0", "--log-format", "json")
        with started(cmd, expect=["agent"]) as agent:
            wait_until(lambda: len(_state_events(agent, "api")) == 1, 15, what="the first state event")
            [first] = _state_events(agent, "api")
            assert (first["previous_state"], first["state"], first["level"]) == ("pending", "up", "info")
            _fault(url, "POST", {"type": "error", "status": 503, "match": {"path": "^/health"}, "ttl": "1m"})
            wait_until(lambda: len(_state_events(agent, "api")) == 2, 15, what="the down event")
            down = _state_events(agent, "api")[1]
            assert (down["state"], down["reason"], down["level"]) == ("down", "status", "warning")
            assert down["msg"] == "probe api is down (was up): status: status 503, expected 2xx"
            runs_at_down = _runs(agent.urls["agent"], "api")
            time.sleep(1.5)
            _fault(url, "DELETE")
            wait_until(lambda: len(_state_events(agent, "api")) == 3, 15, what="the recovery event")
            up = _state_events(agent, "api")[2]
            assert (up["previous_state"], up["state"]) == ("down", "up")
            assert 1.0 < up["outage_seconds"] < 15
            assert up["msg"].startswith("probe api is up again after ")
            time.sleep(1)
            # Many runs, three events: the log speaks when something changes.
            assert _runs(agent.urls["agent"], "api") >= runs_at_down + 4
            assert len(_state_events(agent, "api")) == 3


def test_sigterm_mid_probe_delivers_that_run_and_exits_0_within_the_grace(tmp_path: Path,
                                                                         hostile: HostileServer) -> None:
    with FakeElasticsearch() as es:
        config = tmp_path / "agent.yaml"
        # A flush interval far longer than the test: only the shutdown flush can deliver the result.
        config.write_text(f"""
agent: {{shutdown_grace: 3s}}
probes:
  - {{name: slow, type: http, url: "{hostile.url}/slow?ms=1500", interval: 2s, timeout: 1900ms}}
sinks:
  elasticsearch: {{hosts: ["{es.url}"], flush_interval: 1m}}
""")
        before = hostile.requests
        with started(cli("run", "--config", str(config), "--listen", "127.0.0.1:0"), expect=["agent"]) as agent:
            wait_until(lambda: hostile.requests > before, 20, interval=0.02, what="the slow probe's request")
            sent = time.monotonic()
            os.killpg(agent.proc.pid, signal.SIGTERM)
            code = agent.proc.wait(10)
            took = time.monotonic() - sent
            assert code == 0, agent.text()
            assert took < 3 + 1, f"exit took {took:.2f}s"
            assert took > 1.0  # it did wait for the run in flight
            docs = [d for d in es.docs("probe-results-*") if d["monitor"]["name"] == "slow"]  # type: ignore[index]
            assert len(docs) == 1, agent.text()
            assert docs[0]["monitor"]["status"] == "up"  # type: ignore[index]
            assert "results not written" not in agent.text()


def test_a_second_signal_exits_at_once(tmp_path: Path, hostile: HostileServer) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"""
agent: {{shutdown_grace: 30s}}
probes:
  - {{name: hang, type: http, url: "{hostile.url}/hang", interval: 10s, timeout: 9s}}
""")
    before = hostile.requests
    with started(cli("run", "--config", str(config), "--listen", "127.0.0.1:0"), expect=["agent"]) as agent:
        wait_until(lambda: hostile.requests > before, 20, interval=0.05, what="the hanging probe's request")
        os.killpg(agent.proc.pid, signal.SIGINT)
        time.sleep(0.5)
        assert agent.proc.poll() is None  # waiting for the hanging run, as asked
        sent = time.monotonic()
        os.killpg(agent.proc.pid, signal.SIGINT)
        try:
            code = agent.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError("a second SIGINT did not end the agent") from None
        assert time.monotonic() - sent < 1.0
        assert code == 128 + signal.SIGINT
