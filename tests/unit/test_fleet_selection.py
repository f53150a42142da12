"""Fleet identity and selection: who an agent is (flag > env > file > host name), which probes of a shared
config it runs (`regions:`, `--shard I/N`), and the errors a wrong region or shard gives."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from probes.agent.agent import Agent, Overrides, resolve_identity
from probes.agent.config_file import parse_config
from probes.agent.selection import resolve_shard, select
from probes.errors import ConfigError, UsageError
from probes.identity import Shard, parse_shard, shard_of
from tests.support.metrics import value

FLEET = """
agent: {region: file-region, id: file-id}
probes:
  - {name: everywhere, type: http, url: "http://127.0.0.1:9/a"}
  - {name: eu-only, type: http, url: "http://127.0.0.1:9/b", regions: [eu-west-1]}
  - {name: eu-and-us, type: http, url: "http://127.0.0.1:9/c", regions: [eu-west-1, us-east-1]}
"""


@pytest.fixture(autouse=True)
def _no_fleet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROBE_AGENT_REGION", "PROBE_AGENT_ID", "PROBE_AGENT_SHARD"):
        monkeypatch.delenv(name, raising=False)


# --- identity -----------------------------------------------------------------------------------------------

def test_region_and_id_come_from_the_flag_then_the_environment_then_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(FLEET, "fleet.yaml")
    assert resolve_identity(config, Overrides()) == resolve_identity(config, Overrides(region="", agent_id=""))
    assert (resolve_identity(config, Overrides()).region, resolve_identity(config, Overrides()).agent) == (
        "file-region", "file-id")
    monkeypatch.setenv("PROBE_AGENT_REGION", "env-region")
    monkeypatch.setenv("PROBE_AGENT_ID", "env-id")
    identity = resolve_identity(config, Overrides())
    assert (identity.region, identity.agent) == ("env-region", "env-id")
    identity = resolve_identity(config, Overrides(region="flag-region", agent_id="flag-id"))
    assert (identity.region, identity.agent) == ("flag-region", "flag-id")


def test_agent_id_defaults_to_the_host_name() -> None:
    config = parse_config("probes: []\n", "bare.yaml")
    identity = resolve_identity(config, Overrides())
    assert identity.agent == socket.gethostname() and identity.region == "default"


# --- shards -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("3/3", "with 3 shards it is 0..2"),
    ("x", "write I/N"),
    ("0/0", "at least 1"),
    ("-1/3", "write I/N"),
    ("1/2/3", "write I/N"),
])
def test_a_wrong_shard_says_what_is_meant(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_shard(text)


def test_shards_parse_and_print_as_written() -> None:
    assert parse_shard("2/3") == Shard(2, 3) and str(parse_shard(" 2 / 3 ")) == "2/3"
    assert str(Shard()) == "0/1"


def test_the_shard_of_a_name_is_the_same_on_every_machine_and_run() -> None:
    # Fixed values (BLAKE2b of the name): Python's hash() would change from process to process.
    assert (shard_of("api-health", 1000), shard_of("search-laptop", 1000)) == (591, 661)


@pytest.mark.parametrize("count", [2, 3, 5, 8])
def test_shards_split_1000_probes_evenly_and_completely(count: int) -> None:
    names = [f"search-{i:04d}" for i in range(1000)]
    owners = {name: [i for i in range(count) if Shard(i, count).owns(name)] for name in names}
    assert all(len(found) == 1 for found in owners.values()), "every probe in exactly one shard"
    sizes = Counter(found[0] for found in owners.values())
    mean = 1000 / count
    assert set(sizes) == set(range(count))
    assert all(abs(size - mean) < 0.25 * mean for size in sizes.values()), sizes


def test_shard_comes_from_the_flag_then_the_environment_then_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config("agent: {shard: 1/4}\n", "a.yaml")
    assert resolve_shard(parse_config("probes: []\n", "b.yaml"), None) == Shard(0, 1)
    assert resolve_shard(config, None) == Shard(1, 4)
    monkeypatch.setenv("PROBE_AGENT_SHARD", "2/4")
    assert resolve_shard(config, None) == Shard(2, 4)
    assert resolve_shard(config, Shard(3, 4)) == Shard(3, 4)
    monkeypatch.setenv("PROBE_AGENT_SHARD", "4/4")
    with pytest.raises(UsageError, match=r"PROBE_AGENT_SHARD: invalid shard '4/4'"):
        resolve_shard(config, None)


# --- regions ------------------------------------------------------------------------------------------------

def _names(region: str, shard: Shard | None = None) -> list[str]:
    return [p.name for p in select(parse_config(FLEET, "fleet.yaml"), region, shard or Shard()).probes]


def test_an_agent_runs_the_probes_meant_for_its_region() -> None:
    assert _names("eu-west-1") == ["everywhere", "eu-only", "eu-and-us"]
    assert _names("us-east-1") == ["everywhere", "eu-and-us"]
    assert _names("ap-south-1") == ["everywhere"]


def test_region_and_shard_select_together() -> None:
    eu = _names("eu-west-1")
    halves = [_names("eu-west-1", Shard(i, 2)) for i in range(2)]
    assert sorted(halves[0] + halves[1]) == sorted(eu) and not set(halves[0]) & set(halves[1])


def test_a_region_no_probe_names_is_a_warning() -> None:
    config = parse_config(FLEET, "fleet.yaml")
    selection = select(config, "eu-west1", Shard())
    assert [p.name for p in selection.probes] == ["everywhere"]
    assert selection.warnings == ["region 'eu-west1' is in no probe's regions: (they name eu-west-1, us-east-1); "
                                  "this agent skips the 2 probe(s) meant for other regions and runs 1"]
    assert not select(config, "us-east-1", Shard()).warnings


def test_regions_must_not_be_empty() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(FLEET + '  - {name: nowhere, type: http, url: "http://127.0.0.1:9/d", regions: []}\n',
                     "fleet.yaml")
    assert caught.value.messages == [
        "fleet.yaml:7: probes[3].regions: regions: [] would run the probe nowhere: list at least one region, "
        "or leave the key out to run it in every region"]


@pytest.mark.parametrize(("agent", "message"), [
    ("{shard: 3/3}", "fleet.yaml:2: agent.shard: invalid shard '3/3'"),
    ("{config_poll_interval: 0s}", "fleet.yaml:2: agent.config_poll_interval: config_poll_interval must be greater"),
])
def test_bad_agent_keys_name_the_line(agent: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"\nagent: {agent}\n", "fleet.yaml")
    assert caught.value.messages[0].startswith(message), caught.value.messages


# --- the agent applies the selection ------------------------------------------------------------------------

def _started_agent(tmp_path: Path, text: str, overrides: Overrides) -> tuple[list[str], str]:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    agent = Agent.from_file(str(path), overrides)

    async def go() -> list[str]:
        await agent.start(schedule=False)
        try:
            return list(agent.probers())
        finally:
            await agent.stop()

    names = asyncio.run(go())
    return names, generate_latest(agent.metrics.registry).decode()


def test_an_agent_of_a_region_no_probe_names_runs_nothing_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = FLEET.replace('url: "http://127.0.0.1:9/a"', 'url: "http://127.0.0.1:9/a", regions: [us-east-1]')
    with caplog.at_level(logging.WARNING):
        names, metrics = _started_agent(tmp_path, text, Overrides(region="ap-south-1"))
    assert names == []
    assert value(metrics, "probe_agent_probes", region="ap-south-1") == 0
    assert "region 'ap-south-1' is in no probe's regions:" in caplog.text


def test_the_agent_exports_its_shard_and_runs_only_its_probes(tmp_path: Path) -> None:
    shard = Shard(1, 2)
    names, metrics = _started_agent(tmp_path, FLEET, Overrides(region="eu-west-1", agent_id="a1", shard=shard))
    assert names == [n for n in ("everywhere", "eu-only", "eu-and-us") if shard.owns(n)]
    assert value(metrics, "probe_agent_probes") == len(names)
    assert value(metrics, "probe_agent_info", region="eu-west-1", agent="a1", shard="1/2") == 1
