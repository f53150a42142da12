"""The agent's reload: all or nothing, unchanged probes keep their prober (and their schedule), a bad file
keeps the old config running and says so in its metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

from probes.agent.agent import Agent, Overrides

GOOD = """
agent: {region: eu-west-1, id: a1}
probes:
  - {name: keep, type: http, url: "http://127.0.0.1:9/", interval: 30s, timeout: 1s}
  - {name: drop, type: http, url: "http://127.0.0.1:9/", interval: 30s, timeout: 1s}
"""
CHANGED = """
agent: {region: eu-west-1, id: a1}
probes:
  - {name: keep, type: http, url: "http://127.0.0.1:9/", interval: 30s, timeout: 1s}
  - {name: new, type: search, url: "http://127.0.0.1:9/s", interval: 30s, timeout: 1s}
"""


def test_reload_swaps_probes_and_a_bad_file_keeps_the_running_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(GOOD)

    async def scenario() -> None:
        agent = Agent.from_file(str(path), Overrides())
        await agent.start(schedule=False)
        try:
            kept = agent.probers()["keep"]
            path.write_text(CHANGED)
            ok, message = await agent.reload()
            assert ok and message == "reloaded: 2 probes"
            assert set(agent.probers()) == {"keep", "new"}
            assert agent.probers()["keep"] is kept  # unchanged: same prober, same schedule
            assert 'probe="drop"' not in agent.prometheus.render()
            assert agent.metrics.reload_success._value.get() == 1  # type: ignore[attr-defined]

            path.write_text(CHANGED.replace("interval: 30s, timeout: 1s}", "interval: 1s, timeout: 5s}", 1))
            ok, message = await agent.reload()
            assert not ok
            assert "agent.yaml:4: probes[0].timeout: timeout (5s) is longer than the interval (1s)" in message
            assert set(agent.probers()) == {"keep", "new"} and agent.probers()["keep"] is kept
            assert agent.metrics.reload_success._value.get() == 0  # type: ignore[attr-defined]
            assert agent.last_reload_error == message

            path.write_text(CHANGED.replace("region: eu-west-1", "region: us-east-1"))
            ok, message = await agent.reload()
            assert not ok and "region, id and shard cannot change on reload" in message
        finally:
            await agent.stop()

    asyncio.run(scenario())
