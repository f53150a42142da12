"""`--config URL`: a real local config server that answers 304, 500, invalid YAML, a huge body, or hangs, or
is gone: the agent keeps the last good config, and its metrics and log say why; and the start-up errors of
`probe-agent run` for a config it cannot get (exit 3), an invalid one (exit 2) and a wrong shard (exit 2)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from probes.agent.agent import Agent, Overrides
from probes.agent.config_source import UrlSource
from probes.errors import CannotRun
from probes.ports import free_port
from tests.support.config_server import ConfigServer, config_server
from tests.support.metrics import value
from tests.support.processes import run_cli

V1 = """
agent: {region: eu-west-1, id: a1}
probes:
  - {name: api-health, type: http, url: "http://127.0.0.1:9/health"}
"""
V2_INVALID = V1 + "  - {name: broken, type: http, url: not-a-url}\n"
V3 = V1 + '  - {name: search, type: http, url: "http://127.0.0.1:9/api/search", regions: [eu-west-1]}\n'


def _metrics(agent: Agent) -> str:
    return generate_latest(agent.metrics.registry).decode()


def _failures(agent: Agent) -> dict[str, float]:
    text = _metrics(agent)
    return {reason: value(text, "probe_agent_config_fetch_failures_total", reason=reason) or 0
            for reason in ("timeout", "status", "connection", "too_large", "invalid")}


def _loaded(agent: Agent) -> float | None:
    return value(_metrics(agent), "probe_agent_config_reload_success")


def test_a_polled_config_keeps_the_last_good_one_through_every_kind_of_failure(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = tmp_path / "token"
    token.write_text("fleet-config-token\n")
    with config_server(V1) as server:
        asyncio.run(_walk_through_failures(server, str(token), caplog))


async def _walk_through_failures(server: ConfigServer, token_file: str, caplog: pytest.LogCaptureFixture) -> None:
    source = UrlSource(server.config_url, bearer_token_file=token_file, timeout=0.5, max_bytes=256 * 1024)
    agent = await Agent.open(source, Overrides())
    await agent.start(schedule=False)
    try:
        first = server.requests[0]
        assert first["authorization"] == "Bearer fleet-config-token"
        assert "if-none-match" not in first and list(agent.probers()) == ["api-health"]
        assert _failures(agent) == dict.fromkeys(_failures(agent), 0)
        loaded_at = value(_metrics(agent), "probe_agent_config_last_reload_timestamp_seconds")

        # Unchanged: a conditional request, a 304, nothing reloaded, and not a failure.
        assert await agent.poll_config() == (True, "unchanged: 1 probe")
        conditional = server.requests[-1]
        assert conditional["if-none-match"] == server.etag
        assert conditional["if-modified-since"] == server.last_modified
        assert server.statuses() == ["200", "304"]
        assert _loaded(agent) == 1 and sum(_failures(agent).values()) == 0
        assert value(_metrics(agent), "probe_agent_config_last_reload_timestamp_seconds") == loaded_at

        caplog.set_level(logging.INFO, logger="probes.agent.agent")
        server.mode = "error"
        for _ in range(3):
            ok, message = await agent.poll_config()
            assert not ok and "HTTP 500" in message
        assert _failures(agent)["status"] == 3 and _loaded(agent) == 0
        assert caplog.text.count("(status)") == 1, "a failure that repeats is logged once"

        server.mode = "hang"
        started = time.monotonic()
        ok, message = await agent.poll_config()
        assert not ok and "within 0.5s" in message and time.monotonic() - started < 2.5
        assert _failures(agent)["timeout"] == 1

        server.mode = "huge"
        ok, message = await agent.poll_config()
        assert not ok and "limit" in message and _failures(agent)["too_large"] == 1

        # Reachable again, same text: back to healthy without reloading anything.
        server.mode = "serve"
        assert (await agent.poll_config())[0] and _loaded(agent) == 1
        assert "reachable again" in caplog.text

        server.set_text(V2_INVALID)
        ok, message = await agent.poll_config()
        assert not ok and f"{server.config_url}:5: probes[1].url:" in message
        assert _failures(agent)["invalid"] == 1 and _loaded(agent) == 0
        assert agent.last_reload_error == message
        # The server now answers 304 for the invalid text: still invalid, not counted again.
        assert not (await agent.poll_config())[0]
        assert server.statuses()[-1] == "304" and _failures(agent)["invalid"] == 1 and _loaded(agent) == 0
        assert list(agent.probers()) == ["api-health"], "the last good config keeps running"

        server.set_text(V3)
        assert await agent.poll_config() == (True, "reloaded: 2 probes")
        assert list(agent.probers()) == ["api-health", "search"] and _loaded(agent) == 1
        assert agent.last_reload_error is None
        assert "fleet-config-token" not in caplog.text
    finally:
        await agent.stop()


def test_a_config_server_that_went_away_is_a_connection_failure() -> None:
    async def go() -> None:
        with config_server(V1) as server:
            agent = await Agent.open(UrlSource(server.config_url, timeout=2), Overrides())
            await agent.start(schedule=False)
        try:
            ok, message = await agent.poll_config()
            assert not ok and "cannot connect" in message
            assert _failures(agent)["connection"] == 1 and list(agent.probers()) == ["api-health"]
        finally:
            await agent.stop()

    asyncio.run(go())


def test_no_config_at_start_is_no_agent() -> None:
    async def go() -> None:
        await Agent.open(f"http://127.0.0.1:{free_port()}/fleet.yaml", Overrides())

    with pytest.raises(CannotRun, match=r"cannot load the config: .*cannot connect"):
        asyncio.run(go())


# --- `probe-agent run` at start -----------------------------------------------------------------------------

def test_run_exits_3_in_one_line_when_the_config_url_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}/fleet.yaml"
    proc = run_cli("run", "--config", url, "--listen", "127.0.0.1:0", timeout=30)
    assert proc.returncode == 3, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot load the config: {url}: cannot connect: All connection attempts failed"]
    assert "Traceback" not in proc.stderr


def test_run_exits_2_with_the_place_when_the_config_url_serves_an_invalid_file() -> None:
    with config_server(V2_INVALID) as server:
        proc = run_cli("run", "--config", server.config_url, "--listen", "127.0.0.1:0", timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert f"{server.config_url}:5: probes[1].url: 'not-a-url' is not an http:// or https:// URL" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--shard", "3/3"], {}, "argument --shard: invalid shard '3/3': the index counts from 0"),
    (["--shard", "x"], {}, "argument --shard: invalid shard 'x': write I/N"),
    (["--shard", "0/0"], {}, "argument --shard: invalid shard '0/0': the number of shards N must be at least 1"),
    ([], {"PROBE_AGENT_SHARD": "2/2"}, "error: PROBE_AGENT_SHARD: invalid shard '2/2'"),
    (["--config-bearer-token-file", "/nonexistent"], {}, "--config-bearer-token-file is for a config given as"),
])
def test_run_rejects_a_wrong_shard_or_token_file_with_exit_2(
        tmp_path: Path, args: list[str], env: dict[str, str], message: str) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(V1)
    proc = run_cli("run", "--config", str(config), "--listen", "127.0.0.1:0", *args, env=env, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_check_config_reads_a_url_as_the_agents_would() -> None:
    with config_server(V3) as server:
        good = run_cli("check-config", server.config_url)
        server.set_text(V2_INVALID)
        bad = run_cli("check-config", server.config_url)
    assert good.returncode == 0 and good.stdout.strip() == f"{server.config_url}: OK (2 probes)", good.stderr
    assert bad.returncode == 2 and f"{server.config_url}:5: probes[1].url:" in bad.stderr
