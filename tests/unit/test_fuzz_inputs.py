"""Property-based fuzzing of everything that parses user input: agent.yaml, drill files, load thresholds
and the fault API's JSON. Whatever the input (arbitrary YAML, alias bombs, deep nesting, huge numbers,
non-mapping roots, unknown tags, bytes that are not UTF-8), the answer is a config or a
`FILE:LINE: field.path: message` error (a 4xx for the API): never a traceback, never a hang. A config
that is accepted must also start.

Each test tries a bounded number of inputs so the suite stays fast; for a longer run:
    FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q -s tests/unit/test_fuzz_inputs.py
(`-s` shows the number of inputs each parser was given.)
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.agent import once_output
from probes.agent.agent import Agent, Overrides
from probes.agent.config_file import AgentConfig, load_config, parse_config
from probes.drills import spec as drill_spec
from probes.errors import ConfigError
from probes.load.thresholds import Observation, ThresholdError, evaluate, parse_threshold
from tests.support.faults import Target, running_target
from tests.support.processes import run_cli

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
# The suite's per-test timeout fits the default counts; a long run gets an hour per test.
pytestmark = pytest.mark.timeout(3600 if FUZZ_EXAMPLES else 180)


def fuzz_settings(default: int, deadline_ms: int = 3000) -> Callable[[Any], Any]:
    return settings(max_examples=FUZZ_EXAMPLES or default, deadline=deadline_ms, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


class Tally:
    """How many inputs each parser was given, printed for the record."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tried = 0
        self.accepted = 0

    def report(self) -> None:
        print(f"\nfuzz: {self.name}: {self.tried} inputs tried, {self.accepted} accepted")


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    counter = Tally(request.node.name)
    yield counter
    counter.report()
    assert counter.tried > 0


# --- YAML text from pieces that have broken the loader before

SCALARS = [
    "1", "0", "-1", "99999999999999999999", "1" + "0" * 400, "1e400", "-1e400", ".nan", ".inf", "-.inf",
    "true", "null", "~", "''", "x", "http://127.0.0.1:1/", "'http://127.0.0.1:1/'", '"\\xff\\ud800"',
    "!!float 10s", "!!int ten", "!!timestamp x", "!!timestamp 2024-01-01", "!!binary aGk=", "!foo x",
    "!!python/object:os.system {}", "!!set {a}", "!!omap [a: 1]", "!!str 1", "'a{99999999999}'",
    "'(a+)+$'", "'(\\w)\\1'", "'['", "'(?:a{1000}){1000}'", "100ms", "1s", "30s", "366d",
    "99999999999999999999d", "bogus", "127.0.0.1:0", "'${HOME}'", "'${NOPE_NOT_SET}'", "'$${X}'",
    "*a", "&a 1", "&a [1, 2]", "[*a, *a, *a]", "http", "search", "scripted", "elasticsearch", "$.a",
    "'$['", "2024-01-01", "0o17", "0x1F", "1_000", "+.inf", "'\t'",
]
KEYS = [
    "agent", "defaults", "probes", "sinks", "region", "id", "listen", "max_concurrency", "interval",
    "timeout", "max_body_bytes", "headers", "name", "type", "url", "method", "params", "expect", "status",
    "max_latency", "degraded_latency", "body_matches", "body_not_matches", "json", "path", "equals",
    "matches", "retries", "retry_delay", "negative", "steps", "request", "extract", "queries", "hosts",
    "check", "index", "elasticsearch", "tls", "<<", "? [a]", "&k key", "*a", "1", "null", "!!binary aGk=",
    "prometheus", "drills", "fault", "injector", "control", "token", "spec", "ttl", "match", "within",
]

scalar_text = st.sampled_from(SCALARS)
key_text = st.sampled_from(KEYS)


def _flow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    lists = st.lists(children, max_size=4).map(lambda items: "[" + ", ".join(items) + "]")
    maps = st.lists(st.tuples(key_text, children), max_size=4).map(
        lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}")
    anchored = st.tuples(st.sampled_from(["&a ", "&b ", "!foo ", "!!map ", "!!seq ", ""]), st.one_of(lists, maps))
    return st.one_of(lists, maps, anchored.map("".join))


flow_value = st.recursive(scalar_text, _flow, max_leaves=25)


@st.composite
def block_documents(draw: st.DrawFn) -> str:
    """A block-style document: top-level keys with flow values, sometimes a list of probes."""
    lines = []
    for key in draw(st.lists(key_text, min_size=0, max_size=5)):
        if draw(st.booleans()):
            items = draw(st.lists(flow_value, max_size=4))
            lines.append(f"{key}:" + "".join(f"\n  - {item}" for item in items))
        else:
            lines.append(f"{key}: {draw(flow_value)}")
    return "\n".join(lines) + "\n"


@st.composite
def alias_bombs(draw: st.DrawFn) -> str:
    depth, fanout = draw(st.integers(1, 14)), draw(st.integers(2, 12))
    lines = [f"a0: &a0 [{', '.join(['lol'] * fanout)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]" for i in range(1, depth)]
    if draw(st.booleans()):
        lines.append(f"probes: *a{depth - 1}")
    return "\n".join(lines) + "\n"


@st.composite
def deep_nesting(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]))
    if opener == "- ":
        return "probes:\n  " + "- " * depth + "x\n"
    return "probes: " + opener * depth + "1" + closer * depth + "\n"


@st.composite
def mutated_valid_config(draw: st.DrawFn) -> str:
    base = VALID_CONFIG
    position = draw(st.integers(0, len(base)))
    return base[:position] + draw(st.sampled_from([*SCALARS, *KEYS, "\n", ": ", "- ", "  ", "\t", "{", "]", "#"])) \
        + base[position:]


VALID_CONFIG = """\
agent: {region: r, id: a, listen: "127.0.0.1:0"}
defaults: {interval: 10s, timeout: 1s}
probes:
  - name: health
    type: http
    url: http://127.0.0.1:1/health
    expect: {status: [200], body_matches: healthy, json: [{path: $.status, equals: ok}]}
  - name: search
    type: search
    url: http://127.0.0.1:1/api/search
    params: {q: laptop}
    expect: {min_hits: 1}
"""

agent_yaml = st.one_of(
    block_documents(), flow_value.map(lambda v: v + "\n"), alias_bombs(), deep_nesting(),
    mutated_valid_config(), st.text(max_size=200),
)

LOCATED = re.compile(r"^.+?:\d+: \S.*")


def _expect_located(exc: ConfigError, path: str) -> None:
    assert exc.messages, "an error without a message"
    for line in exc.messages:
        assert line.startswith(path + ":") and LOCATED.match(line), line


@fuzz_settings(400)
@given(text=agent_yaml)
def _fuzz_agent_yaml(text: str, tally: Tally) -> None:
    tally.tried += 1
    try:
        parse_config(text, "agent.yaml", env={"HOME": "/root"})
    except ConfigError as exc:
        _expect_located(exc, "agent.yaml")
    else:
        tally.accepted += 1


def test_fuzz_agent_yaml(tally: Tally) -> None:
    _fuzz_agent_yaml(tally=tally)


@fuzz_settings(100)
@given(raw=st.one_of(st.binary(max_size=300), agent_yaml.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def _fuzz_agent_yaml_bytes(raw: bytes, tally: Tally, directory: str) -> None:
    tally.tried += 1
    path = Path(directory) / "agent.yaml"
    path.write_bytes(raw)
    try:
        load_config(str(path), env={})
    except ConfigError as exc:
        _expect_located(exc, str(path))
    else:
        tally.accepted += 1


def test_fuzz_agent_yaml_files_of_any_bytes(tally: Tally) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _fuzz_agent_yaml_bytes(tally=tally, directory=directory)


# --- accepted configs start

DURATIONS = ["100ms", "500ms", "1s", "30s", "365d", "366d", "0s", "-1s", "abc", "99999999999999999999d",
             math.nan, math.inf, -math.inf, 10**30, 0.25, 2, True, None, [], {}]
SMALL_DURATIONS = ["50ms", "200ms", "0s", math.nan, math.inf, "366d", "1e3s", -1, 10**30]
REGEXES = ["healthy", "(a+)+$", r"(\w)\1", "a{99999999999}", "[", "(?:a{1000}){1000}", "", ".*"]
CLOSED = "http://127.0.0.1:1"
CLI_RUNS = 3
"""Accepted configs also run through `probe-agent once` in a subprocess (slower, so only the first few)."""


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(None), strategy)


def _mostly(valid: list[Any], hostile: list[Any]) -> st.SearchStrategy[Any]:
    """A valid value four times in five: with several fields per config, enough configs are accepted."""
    return st.integers(0, 4).flatmap(lambda n: st.sampled_from(hostile if n == 4 else valid))


@st.composite
def probe_dicts(draw: st.DrawFn, index: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["http", "search", "scripted", "elasticsearch"]))
    probe: dict[str, Any] = {"name": f"p{index}", "type": kind}
    fields = {
        "interval": _maybe(_mostly(["1s", "30s", "365d", 2, 0.5], DURATIONS)),
        "timeout": _maybe(_mostly(["50ms", "200ms", 0.1], SMALL_DURATIONS)),
        "retries": _maybe(_mostly([0, 1, 2], [11, -1, 10**30, "x"])),
        "retry_delay": _maybe(_mostly(["0s", "50ms"], SMALL_DURATIONS)),
        "negative": _maybe(st.booleans()),
    }
    for key, strategy in fields.items():
        value = draw(strategy)
        if value is not None:
            probe[key] = value
    expect = {k: v for k, v in {
        "body_matches": draw(_maybe(_mostly(["healthy", "(a+)+$", r"(\w)\1", ".*"], REGEXES))),
        "max_latency": draw(_maybe(_mostly(["50ms", "1s"], SMALL_DURATIONS))),
        "status": draw(_maybe(_mostly([[200], [200, 503], []], [[0], [999], [10**30]]))),
    }.items() if v is not None}
    if kind in ("http", "search"):
        probe["url"] = draw(_mostly([f"{CLOSED}/", f"{CLOSED}/api/search", "http://u:p@127.0.0.1:1/?api_key=k"],
                                    ["http://", "ftp://x", "http://[::1", "http://127.0.0.1:99999/"]))
        probe["max_body_bytes"] = draw(_mostly([1, 1024, 10**30], [0, -1, 1.5]))
        probe["expect"] = expect
    elif kind == "scripted":
        probe["steps"] = [{"name": "one", "request": {"url": f"{CLOSED}/a"},
                           "extract": {"t": {"regex": draw(_mostly(["t=(\\w+)", "(a+)+$"], REGEXES))}},
                           "expect": expect},
                          {"name": "two", "request": {"url": f"{CLOSED}/b?t=${{t}}"}}]
    else:
        probe["hosts"] = [draw(_mostly([CLOSED, "http://u:p@127.0.0.1:1"], ["http://127.0.0.1:0", "nope"]))]
        probe["check"] = draw(_mostly(["cluster_health"], ["search", "freshness", "bogus"]))
    return probe


@st.composite
def near_valid_configs(draw: st.DrawFn) -> str:
    count = draw(st.integers(1, 3))
    doc: dict[str, Any] = {
        "agent": {"region": "r", "id": "a",
                  "listen": draw(_mostly(["127.0.0.1:0", ":0", "[::1]:0"], ["bogus", "h h:1", "x:99999"])),
                  "max_concurrency": draw(_mostly([1, 100], [0, 10**30]))},
        "defaults": {k: v for k, v in {"interval": draw(_maybe(_mostly(["1s", "10s"], DURATIONS))),
                                       "timeout": draw(_maybe(_mostly(["100ms"], SMALL_DURATIONS)))}.items()
                     if v is not None},
        "probes": [draw(probe_dicts(i)) for i in range(count)],
    }
    return yaml.safe_dump(doc)


async def _start_and_run_once(path: str, config: AgentConfig) -> list[Any]:
    agent = Agent(path, config, Overrides())
    try:
        await agent.start()  # the scheduled form (`run`) builds every trigger
        return await asyncio.wait_for(agent.run_once(), timeout=15)
    finally:
        await agent.stop()


@fuzz_settings(150, deadline_ms=20_000)
@given(text=near_valid_configs())
def _fuzz_accepted_configs_start(text: str, tally: Tally) -> None:
    tally.tried += 1
    try:
        config = parse_config(text, "agent.yaml", env={})
    except ConfigError as exc:
        _expect_located(exc, "agent.yaml")
        return
    tally.accepted += 1
    results = asyncio.run(_start_and_run_once("agent.yaml", config))
    assert len(results) == len(config.probes)
    names = {probe.name for probe in config.probes}
    for result in results:
        # Against a closed port nothing succeeds, unless a probe is `negative:` (must fail) or its checks
        # expect nothing a refused connection breaks; every result is a result, none an exception.
        assert result.probe in names and result.reason != "error", result
    json.loads(once_output.as_json(results))
    once_output.table(results)
    once_output.junit(results)
    if tally.accepted <= CLI_RUNS:
        # The command itself, for a few: exit 0 or 1 with a result per probe, no traceback.
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "agent.yaml"
            path.write_text(text)
            proc = run_cli("once", "--config", str(path), "--format", "json", timeout=60)
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
        assert len(json.loads(proc.stdout)) == len(config.probes)


def test_fuzz_accepted_configs_start_and_run_once(tally: Tally) -> None:
    _fuzz_accepted_configs_start(tally=tally)
    assert tally.accepted > 0, "the generator never produced a config the loader accepts"


# --- drill files

DRILL_VALID = """\
prometheus: http://127.0.0.1:9090
drills:
  - name: d
    fault:
      injector: target
      control: http://127.0.0.1:1
      token: t
      spec: {type: error, status: 503, match: {path: "^/api"}}
      ttl: 1m
    expect: [{alert: A, within: 30s}]
"""


@st.composite
def mutated_drill(draw: st.DrawFn) -> str:
    position = draw(st.integers(0, len(DRILL_VALID)))
    return DRILL_VALID[:position] + draw(st.sampled_from([*SCALARS, *KEYS, "\n", ": ", "- ", "{", "]"])) \
        + DRILL_VALID[position:]


drill_yaml = st.one_of(block_documents(), flow_value.map(lambda v: v + "\n"), alias_bombs(), deep_nesting(),
                       mutated_drill(), st.text(max_size=200))


@fuzz_settings(300)
@given(text=drill_yaml)
def _fuzz_drill_files(text: str, tally: Tally) -> None:
    tally.tried += 1
    try:
        drill_spec.parse(text, "drills.yaml", env={"HOME": "/root"})
    except ConfigError as exc:
        _expect_located(exc, "drills.yaml")
    else:
        tally.accepted += 1


def test_fuzz_drill_files(tally: Tally) -> None:
    _fuzz_drill_files(tally=tally)


# --- load thresholds

NUMBERS = ["0", "1", "0.5", "500", "9" * 400, "1" + "0" * 400, "1e400", "nan", "inf", "-1", "1.", ".5",
           "٣", "1_0", "1s", "250ms", "99999999999999999999d", "1%", "100%", "101%", "9" * 400 + "%"]
thresholds = st.one_of(
    st.text(max_size=60),
    st.tuples(st.sampled_from(["", "search:", "a:b:", ":", "GET /x:"]),
              st.sampled_from(["p95", "p99.9", "p0", "p100", "p101", "p" + "9" * 400, "avg", "min", "max",
                               "error_rate", "rps", "p"]),
              st.sampled_from(["<", ">", "<=", ">=", "=", "<<"]),
              st.sampled_from(NUMBERS)).map("".join),
)
OBSERVED = Observation(requests=10, failures=1, rps=5.0, avg_ms=10.0, min_ms=1.0, max_ms=50.0,
                       percentile_ms=lambda q: 42.0)


@fuzz_settings(500, deadline_ms=1000)
@given(text=thresholds)
def _fuzz_thresholds(text: str, tally: Tally) -> None:
    tally.tried += 1
    try:
        threshold = parse_threshold(text)
    except ThresholdError as exc:
        assert str(exc).startswith("invalid threshold"), exc
        return
    tally.accepted += 1
    assert math.isfinite(threshold.limit), threshold
    evaluate(threshold, OBSERVED)


def test_fuzz_thresholds(tally: Tally) -> None:
    _fuzz_thresholds(tally=tally)


# --- the fault API's JSON

JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["error", "latency", "abort", "timeout", "unready", "2m", "300ms", "99999999999999999999d",
                     "a{99999999999}", "(a+)+$", r"(\w)\1", "(?:a{1000}){1000}", "^/api", "GET", "NaN"]),
)
FAULT_KEYS = st.sampled_from(["type", "match", "path", "method", "headers", "probability", "latency",
                              "status", "body", "ttl", "x"])
json_values = st.recursive(JSON_LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(FAULT_KEYS, children, max_size=5)), max_leaves=20)


@st.composite
def fault_bodies(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice == 1:
        depth = draw(st.integers(1, 100_000))
        return b"[" * depth + b"]" * depth
    fault = draw(st.dictionaries(FAULT_KEYS, json_values, max_size=6))
    if choice == 2:
        fault.setdefault("type", draw(st.sampled_from(["error", "latency", "abort", "unready"])))
    return json.dumps(fault, allow_nan=True).encode()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with running_target() as running:
        yield running


@fuzz_settings(200, deadline_ms=5000)
@given(body=fault_bodies())
def _fuzz_fault_api(body: bytes, tally: Tally, target: Target) -> None:
    tally.tried += 1
    response = target.http.post("/-/faults", content=body, headers=target.faults.headers)
    assert response.status_code in (201, 409, 413, 422), (response.status_code, response.text[:300])
    listing = target.http.get("/-/faults", headers=target.faults.headers)
    assert listing.status_code == 200, listing.text[:300]
    if response.status_code == 201:
        tally.accepted += 1
        (fault,) = listing.json()["faults"]
        assert fault["expires_at"].endswith("Z")  # every fault has a finite lifetime
    else:
        assert listing.json()["faults"] == []
    target.faults.clear()


def test_fuzz_fault_api_json(tally: Tally, target: Target) -> None:
    _fuzz_fault_api(tally=tally, target=target)
