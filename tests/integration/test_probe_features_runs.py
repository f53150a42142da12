"""How a run is decided, against a real local server: retries with retry_delay (and probe_attempts_total),
`negative: true`, and `once --format junit` for CI."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from aiohttp import web

from tests.support.httpserver import run_agent, serve_aiohttp
from tests.support.processes import once_results, run_cli


class FlakyApi:
    """/flaky fails every other request per `key` (the first of each run); /down always fails;
    /private refuses anyone without a bearer token."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()

    async def flaky(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        self.hits[key] += 1
        if self.hits[key] % 2 == 1:
            return web.json_response({"error": "try again"}, status=503)
        return web.json_response({"status": "ok"})

    async def down(self, request: web.Request) -> web.Response:
        self.hits["down"] += 1
        return web.json_response({"error": "down"}, status=503)

    async def private(self, request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"error": "unauthorised"}, status=401)
        return web.json_response({"secret": 42})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[FlakyApi, str]]:
    state = FlakyApi()
    app = web.Application()
    app.router.add_get("/flaky", state.flaky)
    app.router.add_get("/down", state.down)
    app.router.add_get("/private", state.private)
    app.router.add_get("/health", state.health)
    with serve_aiohttp(app) as url:
        yield state, url


PROBES = """
defaults: {{interval: 30s, timeout: 2s}}
probes:
  - {{name: retried, type: http, url: "{u}/flaky?key=retried", retries: 2, retry_delay: 200ms}}
  - {{name: not-retried, type: http, url: "{u}/flaky?key=not-retried"}}
  - {{name: retries-exhausted, type: http, url: "{u}/down", retries: 2, retry_delay: 10ms}}
  - name: scripted-retried
    type: scripted
    retries: 1
    retry_delay: 10ms
    steps:
      - {{name: health, request: {{url: "{u}/health"}}}}
      - {{name: flaky, request: {{url: "{u}/flaky?key=scripted"}}}}
  - {{name: must-refuse-anonymous, type: http, url: "{u}/private", negative: true, expect: {{status: [200]}}}}
  - {{name: negative-but-passed, type: http, url: "{u}/health", negative: true}}
"""


@pytest.fixture(scope="module")
def config(api: tuple[FlakyApi, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "agent.yaml"
    path.write_text(PROBES.format(u=api[1]))
    return path


@pytest.fixture(scope="module")
def results(config: Path) -> dict[str, dict[str, Any]]:
    return once_results(config, expect_code=1)


def test_a_retry_turns_a_flaky_failure_into_a_success(results: dict[str, dict[str, Any]]) -> None:
    retried = results["retried"]
    assert retried["success"] is True, retried["message"]
    assert retried["attempts"] == 2
    not_retried = results["not-retried"]
    assert (not_retried["success"], not_retried["reason"], not_retried["attempts"]) == (False, "status", 1)


def test_retries_stop_after_the_last_attempt(results: dict[str, dict[str, Any]]) -> None:
    exhausted = results["retries-exhausted"]
    assert (exhausted["success"], exhausted["reason"], exhausted["attempts"]) == (False, "status", 3)


def test_a_scripted_probe_is_retried_as_a_whole(results: dict[str, dict[str, Any]]) -> None:
    scripted = results["scripted-retried"]
    assert scripted["success"] is True, scripted["message"]
    assert scripted["attempts"] == 2
    assert [s["success"] for s in scripted["steps"]] == [True, True]


def test_negative_succeeds_when_the_expectation_fails(results: dict[str, dict[str, Any]]) -> None:
    refused = results["must-refuse-anonymous"]
    assert (refused["success"], refused["reason"]) == (True, None)
    assert refused["message"] == "failed as expected: status: status 401, expected one of [200]"
    passed = results["negative-but-passed"]
    assert (passed["success"], passed["reason"]) == (False, "assertion")
    assert passed["message"].startswith("expected the check to fail, but it passed")


def test_attempts_are_counted_in_metrics_and_retry_delay_is_waited(config: Path) -> None:
    start = time.monotonic()
    _, metrics = run_agent(str(config))
    assert time.monotonic() - start >= 0.2  # `retried` waited its retry_delay once
    attempts = dict(re.findall(r'probe_attempts_total\{probe="([^"]+)",[^}]*\} (\d+)', metrics))
    assert attempts["retried"] == "2"
    assert attempts["retries-exhausted"] == "3"
    assert attempts["must-refuse-anonymous"] == "1"
    assert re.search(r'probe_success\{probe="retried",[^}]*\} 1\n', metrics)
    assert re.search(r'probe_success\{probe="must-refuse-anonymous",[^}]*\} 1\n', metrics)


def test_junit_for_ci(config: Path) -> None:
    proc = run_cli("once", "--config", str(config), "--format", "junit")
    assert proc.returncode == 1, proc.stderr
    root = ET.fromstring(proc.stdout)
    suite = root.find("testsuite")
    assert suite is not None
    # A scripted probe adds a testcase per step: CI servers count `tests` from the cases they read.
    assert suite.get("tests") == str(len(list(root.iter("testcase")))) == "8"
    assert suite.get("failures") == "3"
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert set(cases) == {
        ("probe-agent.http", "retried"), ("probe-agent.http", "not-retried"), ("probe-agent.http", "retries-exhausted"),
        ("probe-agent.scripted", "scripted-retried"), ("probe-agent.http", "must-refuse-anonymous"),
        ("probe-agent.http", "negative-but-passed"),
        ("probe-agent.scripted-retried", "health"), ("probe-agent.scripted-retried", "flaky"),
    }
    failure = cases[("probe-agent.http", "retries-exhausted")].find("failure")
    assert failure is not None
    assert (failure.get("type"), failure.get("message")) == ("status", "status 503, expected 2xx")
    assert cases[("probe-agent.http", "retried")].find("failure") is None
    for case in cases.values():
        assert float(case.get("time", "-1")) >= 0
