"""A reload is all or nothing: a config that validates but fails while it is put to work (a prober that
cannot be built) leaves the running config, its schedule and its series exactly as they were."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from probes.agent import agent as agent_module
from probes.agent.agent import Agent, ApplyError, Overrides
from probes.probers import build_prober
from tests.support.metrics import samples, value

PROBE = '  - {{name: {name}, type: http, url: "http://127.0.0.1:1/", interval: 1s, timeout: 500ms}}\n'


def _config(path: Path, *names: str) -> None:
    path.write_text("agent: {region: r, id: a}\nprobes:\n" + "".join(PROBE.format(name=n) for n in names))


def _metrics(agent: Agent) -> str:
    from prometheus_client import generate_latest

    return generate_latest(agent.metrics.registry).decode() + agent.prometheus.render()


def _unbuildable(name: str) -> Any:
    def build(config: Any) -> Any:
        if config.name == name:
            raise OSError(f"cannot load the CA file of {name}")  # what a TLS file gone bad does
        return build_prober(config)

    return build


def test_a_reload_that_fails_while_applying_changes_nothing(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agent.yaml"
    _config(path, "old")

    async def scenario() -> None:
        agent = Agent.from_file(str(path), Overrides())
        await agent.start()
        try:
            await asyncio.sleep(2.5)  # `old` runs on its schedule
            assert value(_metrics(agent), "probe_agent_config_reload_success") == 1
            monkeypatch.setattr(agent_module, "build_prober", _unbuildable("new"))
            _config(path, "old", "new")
            ok, message = await agent.reload()
            assert not ok
            assert f"{path}: cannot apply the new config" in message and "cannot load the CA file" in message
            text = _metrics(agent)
            assert value(text, "probe_agent_config_reload_success") == 0
            assert not [s for s in samples(text, "probe_success") if s[0]["probe"] == "new"], \
                "a probe that never ran has a series"
            assert set(agent.probers()) == {"old"}
            assert agent.last_reload_error == message
            before = agent.latest.get("old")
            await asyncio.sleep(2.5)
            assert agent.latest.get("old") is not before, "the old config stopped running"

            monkeypatch.setattr(agent_module, "build_prober", build_prober)
            ok, message = await agent.reload()
            assert ok, message
            assert set(agent.probers()) == {"old", "new"}
            assert value(_metrics(agent), "probe_agent_config_reload_success") == 1
        finally:
            await agent.stop()

    asyncio.run(scenario())


def test_a_config_that_cannot_be_applied_at_start_is_a_could_not_run_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agent.yaml"
    _config(path, "broken")
    monkeypatch.setattr(agent_module, "build_prober", _unbuildable("broken"))

    async def scenario() -> None:
        agent = Agent.from_file(str(path), Overrides())
        try:
            with pytest.raises(ApplyError, match="cannot load the CA file") as info:
                await agent.start()
            assert info.value.exit_code == 3
        finally:
            await agent.stop()

    asyncio.run(scenario())


def test_reloading_a_config_that_used_to_validate_and_crash_keeps_the_old_one(tmp_path: Path) -> None:
    # Found in an adversarial round: `interval: .nan` answered 500, left reload_success at 1 and a
    # series of the new probe that never ran.
    path = tmp_path / "agent.yaml"
    _config(path, "old")

    async def scenario() -> None:
        agent = Agent.from_file(str(path), Overrides())
        await agent.start()
        try:
            for bad in (".nan", ".inf", "99999999999999999999d"):
                path.write_text(path.read_text().split("probes:")[0] + "probes:\n" + PROBE.format(name="old")
                                + f'  - {{name: new, type: http, url: "http://127.0.0.1:1/", interval: {bad}}}\n')
                ok, message = await agent.reload()
                assert not ok and f"{path}:" in message and "probes[1].interval" in message, message
                text = _metrics(agent)
                assert value(text, "probe_agent_config_reload_success") == 0
                assert not [s for s in samples(text, "probe_success") if s[0]["probe"] == "new"]
                assert set(agent.probers()) == {"old"}
        finally:
            await agent.stop()

    asyncio.run(scenario())
