"""Scheduled load probes (`type: load`): a Locust burst from a running agent against the demo API, its
metrics, a threshold broken by a latency fault, the schedule of other probes kept during a burst, and no
Locust process left behind when the agent is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faults import TOKEN, FaultClient
from tests.support.metrics import samples, scrape, value
from tests.support.processes import Started, cli, started, wait_until

CONFIG = """
agent: {{region: eu-west-1, id: loader}}
probes:
  - {{name: health, type: http, url: "{t}/health", interval: 1s, timeout: 800ms}}
  - name: burst
    type: load
    scenario: search
    host: "{t}"
    users: 4
    spawn_rate: 4
    run_time: 2s
    interval: 9s
    timeout: 8s
    thresholds: ["p95<150ms", "error_rate<5%"]
"""


@pytest.fixture(scope="module")
def target() -> Iterator[Started]:
    with started(cli("target", "--listen", "127.0.0.1:0", "--admin-token", TOKEN), expect=["target"]) as proc:
        yield proc


def _locust_children(marker: str) -> list[int]:
    """Locust processes started for this test's target (their command line names its URL)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"probes.load.locust_main" in argv and marker.encode() in argv:
            found.append(int(entry.name))
    return found


def _health_runs(text: str) -> float:
    return sum(v for _, v in samples(text, "probe_runs_total", probe="health"))


def test_a_load_probe_exports_its_burst_and_a_latency_fault_breaks_its_threshold(
        target: Started, tmp_path: Path) -> None:
    url = target.urls["target"]
    config = tmp_path / "agent.yaml"
    config.write_text(CONFIG.format(t=url))
    faults = FaultClient(url)
    with started(cli("run", "--config", str(config), "--listen", "127.0.0.1:0"), expect=["agent"]) as agent:
        metrics_url = agent.urls["agent"] + "/metrics"

        def burst_done(success: float) -> bool:
            return value(scrape(metrics_url), "probe_success", probe="burst") == success

        wait_until(lambda: burst_done(1), 40, interval=0.5, what="a successful burst")
        text = scrape(metrics_url)
        assert value(text, "probe_load_requests_per_second", probe="burst", type="load", region="eu-west-1") > 10
        assert value(text, "probe_load_error_ratio", probe="burst") == 0
        p95 = value(text, "probe_load_latency_seconds", probe="burst", quantile="0.95")
        assert p95 is not None and 0 < p95 < 0.15
        assert value(text, "probe_http_status_code", probe="burst") is None  # not an HTTP probe itself

        # The http probe keeps its 1 s schedule while a burst runs beside it.
        before, start = _health_runs(text), time.monotonic()
        faults.add(type="latency", latency="300ms", match={"path": "^/api/search"}, ttl="60s")
        wait_until(lambda: (value(scrape(metrics_url), "probe_failures_total", probe="burst", reason="threshold")
                            or 0) >= 1, 40, interval=0.5, what="a burst failing its p95 threshold")
        elapsed = time.monotonic() - start
        text = scrape(metrics_url)
        assert value(text, "probe_success", probe="burst") == 0
        assert value(text, "probe_load_latency_seconds", probe="burst", quantile="0.95") >= 0.3
        assert _health_runs(text) - before >= int(elapsed) - 3, "health missed its schedule during bursts"
        assert value(text, "probe_success", probe="health") == 1
        faults.clear()

        # SIGKILL gives the agent no chance to clean up: the kernel must take its Locust child along.
        wait_until(lambda: bool(_locust_children(url)), 20, interval=0.1, what="a burst in progress")
        os.kill(agent.proc.pid, signal.SIGKILL)
        wait_until(lambda: not _locust_children(url), 10, interval=0.2, what="the Locust child to die with the agent")
    faults.close()
