"""`probe-agent run`: scheduled probes, /metrics with the contract metric names and labels, hot reload."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hostile import HostileServer
from tests.support.metrics import samples, scrape, value
from tests.support.processes import Started, cli, started, wait_until

CONFIG = """
agent: {{region: eu-west-1, id: agent-7}}
defaults: {{interval: 1s, timeout: 800ms}}
probes:
  - {{name: ok, type: http, url: "{u}/ok", expect: {{json: [{{path: "$.status", equals: healthy}}]}}}}
  - {{name: down, type: http, url: "{u}/status/500"}}
  - {{name: hang, type: http, url: "{u}/hang", timeout: 500ms, retries: 1, retry_delay: 300ms}}
"""

LABELS = {"region": "eu-west-1", "agent": "agent-7"}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, hostile: HostileServer) -> Iterator[tuple[Started, Path]]:
    path = tmp_path_factory.mktemp("run") / "agent.yaml"
    path.write_text(CONFIG.format(u=hostile.url))
    with started(cli("run", "--config", str(path), "--listen", "127.0.0.1:0"), expect=["agent"]) as proc:
        yield proc, path


def _url(agent: tuple[Started, Path]) -> str:
    return agent[0].urls["agent"]


def _runs(text: str, probe: str) -> float:
    return sum(v for _, v in samples(text, "probe_runs_total", probe=probe))


def test_probes_run_on_schedule_with_labels(agent: tuple[Started, Path]) -> None:
    url = _url(agent)
    wait_until(lambda: _runs(scrape(url + "/metrics"), "ok") >= 3, 15, what="3 runs of ok")
    text = scrape(url + "/metrics")
    assert value(text, "probe_success", probe="ok", type="http", **LABELS) == 1
    assert value(text, "probe_success", probe="down", type="http", **LABELS) == 0
    assert value(text, "probe_http_status_code", probe="down") == 500
    assert value(text, "probe_failures_total", probe="down", reason="status") >= 1
    assert value(text, "probe_runs_total", probe="down", result="success") == 0
    assert 0 < value(text, "probe_duration_seconds", probe="ok") < 1
    phases = {s[0]["phase"] for s in samples(text, "probe_http_duration_seconds", probe="ok")}
    assert phases == {"resolve", "connect", "tls", "processing", "transfer"}
    assert value(text, "probe_latency_seconds_count", probe="ok") >= 3
    assert value(text, "probe_last_run_timestamp_seconds", probe="ok") > 1.7e9
    assert value(text, "probe_degraded", probe="ok") == 0
    assert value(text, "probe_agent_info", region="eu-west-1", agent="agent-7") == 1
    assert value(text, "probe_agent_schedule_lag_seconds_count") >= 3
    assert value(text, "probe_agent_config_reload_success") == 1


def test_a_hanging_probe_is_counted_as_missed_and_does_not_stall_others(agent: tuple[Started, Path]) -> None:
    url = _url(agent)
    # hang takes 2 x 500ms + 300ms per run at a 1s interval: the scheduler must skip, not pile up
    # A skip can be counted before the first (1.3 s) run of hang has finished: wait for both.
    def missed_and_failed() -> bool:
        text = scrape(url + "/metrics")
        missed = value(text, "probe_agent_missed_runs_total", probe="hang") or 0
        timeouts = value(text, "probe_failures_total", probe="hang", reason="timeout") or 0
        return missed >= 1 and timeouts >= 1

    wait_until(missed_and_failed, 20, what="a missed run and a timed-out run of hang")
    text = scrape(url + "/metrics")
    assert value(text, "probe_attempts_total", probe="hang") >= 2 * _runs(text, "hang") - 1
    before = _runs(text, "ok")
    wait_until(lambda: _runs(scrape(url + "/metrics"), "ok") >= before + 2, 10, what="ok keeps its schedule")


def test_metrics_pass_promtool_check(agent: tuple[Started, Path], tmp_path: Path) -> None:
    promtool = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: tests/run.sh installs Debian's prometheus package")
    text = scrape(_url(agent) + "/metrics")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stdout + proc.stderr


def test_health_ready_status_page_and_results(agent: tuple[Started, Path]) -> None:
    url = _url(agent)
    assert scrape(url + "/-/healthy") == "probe-agent is healthy.\n"
    # Exact: "ready" is also a substring of "not ready", which /-/ready answers with a 503.
    assert scrape(url + "/-/ready") == "probe-agent is ready.\n"
    page = scrape(url + "/")
    for probe in ("ok", "down", "hang"):
        assert f'data-probe="{probe}"' in page
    results = json.loads(scrape(url + "/api/results"))
    assert {r["probe"] for r in results} >= {"ok", "down"}


def _post(url: str) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_reload_adds_probes_and_a_bad_reload_keeps_the_old_config(agent: tuple[Started, Path],
                                                                  hostile: HostileServer) -> None:
    url = _url(agent)
    proc, path = agent
    original = path.read_text()
    try:
        path.write_text(original + f'  - {{name: added, type: http, url: "{hostile.url}/ok"}}\n')
        status, body = _post(url + "/-/reload")
        assert status == 200, body
        wait_until(lambda: _runs(scrape(url + "/metrics"), "added") >= 1, 10, what="the added probe runs")

        path.write_text(original + "  - {name: broken, type: http, url: nowhere}\n")
        status, body = _post(url + "/-/reload")
        assert status == 500
        assert f"{path}:" in body["message"] and "probes[3].url" in body["message"]
        text = scrape(url + "/metrics")
        assert value(text, "probe_agent_config_reload_success") == 0
        before = _runs(text, "added")
        wait_until(lambda: _runs(scrape(url + "/metrics"), "added") > before, 10,
                   what="the old config keeps running")
        assert "The last reload failed" in scrape(url + "/")

        # SIGHUP reloads too; removing a probe removes its series
        path.write_text(original)
        proc.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: value(scrape(url + "/metrics"), "probe_agent_config_reload_success") == 1, 10,
                   what="SIGHUP reload")
        assert not samples(scrape(url + "/metrics"), "probe_success", probe="added")
    finally:
        path.write_text(original)
