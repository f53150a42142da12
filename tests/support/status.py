"""A running agent probing the demo search API, for the status page tests (HTTP and browser)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.faults import TOKEN, FaultClient
from tests.support.processes import Started, cli, started

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "probes" / "demo" / "demo.yaml"

# The demo's own probes, faster, plus one that only runs when asked (its first run comes soon after start).
EXTRA_PROBES = """
  - name: hourly-search
    type: search
    url: ${DEMO_TARGET}/api/search
    interval: 1h
    params: {q: phone, api_key: "${DEMO_API_KEY}"}
    headers: {X-Api-Key: "${DEMO_API_KEY}"}
    expect: {min_hits: 1}
"""
API_KEY = "demo-key-not-for-eyes"


@dataclass
class DemoAgent:
    target: Started
    agent: Started
    faults: FaultClient
    config: Path

    @property
    def url(self) -> str:
        return self.agent.urls["agent"]


def probe_names() -> list[str]:
    import yaml

    names = [p["name"] for p in yaml.safe_load(DEMO_CONFIG.read_text())["probes"]]
    return [*names, "hourly-search"]


@contextlib.contextmanager
def demo_agent(tmp: Path, *, history: int = 100) -> Iterator[DemoAgent]:
    text = DEMO_CONFIG.read_text().replace("interval: 5s", "interval: 1s").replace("interval: 2s", "interval: 1s")
    text = text.replace("timeout: 2s", "timeout: 1s")
    text = text.replace("  id: demo-agent\n", f"  id: demo-agent\n  history: {history}\n") + EXTRA_PROBES
    config = tmp / "agent.yaml"
    config.write_text(text)
    with started(cli("target", "--listen", "127.0.0.1:0", "--admin-token", TOKEN), expect=["target"]) as target:
        env = {"DEMO_TARGET": target.urls["target"], "DEMO_API_KEY": API_KEY}
        with started(cli("run", "--config", str(config), "--listen", "127.0.0.1:0"), expect=["agent"],
                     env=env) as agent:
            faults = FaultClient(target.urls["target"])
            try:
                yield DemoAgent(target, agent, faults, config)
            finally:
                faults.http.close()
