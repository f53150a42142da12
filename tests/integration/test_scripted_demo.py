"""Scripted probes against the real demo search API: log in, carry the token, search; and what a failing,
optional, cleanup or unset-variable step looks like in `once --format json|junit` and in /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from probes.demo.app import create_app
from tests.support.httpserver import run_agent, serve_asgi
from tests.support.processes import run_cli

PROBES = """
defaults: {{interval: 30s, timeout: 5s}}
probes:
  - name: login-then-search
    type: scripted
    steps:
      - name: login
        request: {{method: POST, url: "{u}/auth/token", json: {{user: probe}}}}
        extract:
          token: "$.access_token"
          kind: {{regex: '"token_type":\\s*"(\\w+)"'}}
          served_as: {{header: content-type}}
        expect: {{status: [200], json: [{{path: "$.token_type", equals: bearer}}]}}
      - name: search
        request:
          url: "{u}/api/search"
          params: {{q: laptop, limit: 5}}
          headers: {{Authorization: "Bearer ${{token}}", X-Token-Kind: "${{kind}} (${{served_as}})"}}
        expect: {{status: [200], json: [{{path: "$.total", gt: 0}}]}}
  - name: tampered-token
    type: scripted
    steps:
      - name: login
        request: {{method: POST, url: "{u}/auth/token", json: {{user: probe}}}}
        extract: {{token: "$.access_token"}}
      - name: search
        request: {{url: "{u}/api/search?q=laptop", headers: {{Authorization: "Bearer ${{token}}-tampered"}}}}
        expect: {{status: [200]}}
  - name: with-optional
    type: scripted
    steps:
      - name: search
        request: {{url: "{u}/api/search?q=phone"}}
        extract: {{first: "$.hits[0].id"}}
      - name: no-such-item
        optional: true
        request: {{url: "{u}/api/items/no-such-${{first}}"}}
        expect: {{status: [200]}}
      - name: item
        request: {{url: "{u}/api/items/${{first}}"}}
        expect: {{json: [{{path: "$.id", exists: true}}]}}
  - name: cleanup-after-failure
    type: scripted
    steps:
      - name: login
        request: {{method: POST, url: "{u}/auth/token", json: {{user: probe}}}}
        extract: {{token: "$.access_token"}}
      - name: search
        request: {{url: "{u}/api/search?q=laptop", headers: {{Authorization: "Bearer ${{token}}"}}}}
        expect: {{json: [{{path: "$.total", gt: 100000}}]}}
      - name: details
        request: {{url: "{u}/api/items/sku-00001"}}
      - name: cleanup
        always_run: true
        request: {{url: "{u}/health"}}
        expect: {{json: [{{path: "$.status", equals: healthy}}]}}
  - name: unextracted
    type: scripted
    steps:
      - name: find
        optional: true
        request: {{url: "{u}/api/search?q=zzzzqqqq-nothing"}}
        extract: {{first: "$.hits[0].id"}}
      - name: item
        request: {{url: "{u}/api/items/${{first}}"}}
  - name: health
    type: http
    url: "{u}/health"
"""


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    with serve_asgi(create_app()) as url:
        yield url


@pytest.fixture(scope="module")
def config(demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scripted") / "agent.yaml"
    path.write_text(PROBES.format(u=demo_url))
    return path


@pytest.fixture(scope="module")
def once_json(config: Path) -> dict[str, dict[str, Any]]:
    proc = run_cli("once", "--config", str(config), "--format", "json")
    assert proc.returncode == 1, proc.stderr  # some probes fail on purpose
    return {r["probe"]: r for r in json.loads(proc.stdout)}


def steps_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step"]: s for s in result["steps"]}


def test_login_token_then_authorised_search(once_json: dict[str, dict[str, Any]]) -> None:
    result = once_json["login-then-search"]
    assert result["type"] == "scripted"
    assert result["success"] is True, result["message"]
    assert result["reason"] is None
    assert result["degraded"] is False
    assert [s["step"] for s in result["steps"]] == ["login", "search"]
    for step in result["steps"]:
        assert set(step) >= {"step", "success", "degraded", "duration_seconds", "reason", "message"}
        assert step["success"] is True and step["reason"] is None
        assert 0 < step["duration_seconds"] < 5
    assert result["status_code"] == 200
    assert result["duration_seconds"] == pytest.approx(sum(s["duration_seconds"] for s in result["steps"]), abs=1e-5)
    assert sum(result["phases"].values()) == pytest.approx(result["duration_seconds"], abs=0.002)


def test_a_failing_second_step_fails_the_probe_and_names_the_step(once_json: dict[str, dict[str, Any]]) -> None:
    result = once_json["tampered-token"]
    assert result["success"] is False
    assert result["reason"] == "status"
    assert result["message"] == "step search: status 401, expected one of [200]"
    assert result["status_code"] == 401
    steps = steps_of(result)
    assert steps["login"]["success"] is True
    assert (steps["search"]["success"], steps["search"]["reason"]) == (False, "status")


def test_an_optional_step_fails_without_failing_the_probe(once_json: dict[str, dict[str, Any]]) -> None:
    result = once_json["with-optional"]
    assert result["success"] is True, result["message"]
    steps = steps_of(result)
    assert steps["no-such-item"]["success"] is False
    assert steps["no-such-item"]["reason"] == "status"
    assert steps["no-such-item"]["optional"] is True
    assert steps["item"]["success"] is True
    assert "optional step no-such-item failed: status 404" in result["message"]


def test_always_run_cleanup_runs_after_a_failure_and_the_rest_is_skipped(
        once_json: dict[str, dict[str, Any]]) -> None:
    result = once_json["cleanup-after-failure"]
    assert result["success"] is False
    assert result["reason"] == "assertion"
    assert re.fullmatch(r"step search: \$\.total is \d+, expected > 100000", result["message"])
    steps = steps_of(result)
    assert (steps["details"]["success"], steps["details"]["reason"]) == (False, "skipped")
    assert steps["details"]["message"] == "skipped: step search failed"
    assert steps["cleanup"]["success"] is True
    assert steps["cleanup"]["status_code"] == 200


def test_a_variable_that_was_not_extracted_fails_with_extract(once_json: dict[str, dict[str, Any]]) -> None:
    result = once_json["unextracted"]
    assert result["success"] is False
    assert result["reason"] == "extract"
    assert "${first}" in result["message"] and result["message"].startswith("step item: ")
    steps = steps_of(result)
    assert steps["find"]["reason"] == "extract"
    assert "extract first: $.hits[0].id matched nothing" in steps["find"]["message"]


def test_junit_has_a_testcase_per_probe_and_per_step(config: Path) -> None:
    proc = run_cli("once", "--config", str(config), "--format", "junit")
    assert proc.returncode == 1, proc.stderr
    root = ET.fromstring(proc.stdout)
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    probes = {name for cls, name in cases if cls in ("probe-agent.scripted", "probe-agent.http")}
    assert {"login-then-search", "tampered-token", "with-optional", "cleanup-after-failure", "unextracted",
            "health"} <= probes
    assert cases[("probe-agent.scripted", "login-then-search")].find("failure") is None
    failure = cases[("probe-agent.scripted", "tampered-token")].find("failure")
    assert failure is not None and failure.get("type") == "status"
    assert failure.get("message") == "step search: status 401, expected one of [200]"
    assert cases[("probe-agent.login-then-search", "login")].find("failure") is None
    step_failure = cases[("probe-agent.tampered-token", "search")].find("failure")
    assert step_failure is not None and step_failure.get("type") == "status"
    assert cases[("probe-agent.cleanup-after-failure", "details")].find("skipped") is not None
    assert cases[("probe-agent.cleanup-after-failure", "cleanup")].find("failure") is None
    suite = root.find("testsuite")
    # One JUnit writer: the suite counts every testcase, steps included.
    failed = sum(c.find("failure") is not None for c in cases.values())
    assert suite is not None and suite.get("failures") == str(failed)
    assert suite.get("tests") == str(len(cases))


def test_step_metrics_and_phases_that_add_up(config: Path) -> None:
    rounds, metrics = run_agent(str(config), times=2)
    for results in rounds:
        by_name = {r.probe: r for r in results}
        flow = by_name["login-then-search"]
        assert flow.success, flow.message
        # Phases are summed over steps, and each step's phases add up to its duration.
        assert set(flow.phases) == {"resolve", "connect", "tls", "processing", "transfer"}
        assert sum(flow.phases.values()) == pytest.approx(flow.duration_seconds, abs=0.002)
        assert flow.phases["connect"] > 0 and flow.phases["processing"] > 0
        health = by_name["health"]
        assert sum(health.phases.values()) == pytest.approx(health.duration_seconds, abs=0.002)
    labels = 'probe="login-then-search",type="scripted"'
    for step in ("login", "search"):
        assert re.search(rf'probe_step_success{{{labels},region="[^"]*",agent="[^"]*",step="{step}"}} 1\n', metrics)
        assert re.search(rf'probe_step_duration_seconds{{{labels},[^}}]*step="{step}"}} \d', metrics)
    assert re.search(r'probe_step_success\{probe="tampered-token",[^}]*step="search"\} 0\n', metrics)
    assert re.search(r'probe_step_success\{probe="cleanup-after-failure",[^}]*step="details"\} 0\n', metrics)
    for phase in ("resolve", "connect", "tls", "processing", "transfer"):
        assert re.search(rf'probe_http_duration_seconds{{{labels},[^}}]*phase="{phase}"}} ', metrics)
    assert re.search(r'probe_failures_total\{probe="unextracted",[^}]*reason="extract"\} 2\n', metrics)
