"""`probe-agent once --format json` against real local servers: every assertion kind and hostile targets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.hostile import HostileServer
from tests.support.processes import run_cli

ASSERTION_PROBES = """
defaults: {{interval: 30s, timeout: 3s}}
probes:
  - {{name: ok, type: http, url: "{u}/ok"}}
  - {{name: status-default-2xx, type: http, url: "{u}/status/503"}}
  - {{name: status-listed, type: http, url: "{u}/status/404", expect: {{status: [404]}}}}
  - {{name: latency-fail, type: http, url: "{u}/slow?ms=300", expect: {{max_latency: 100ms}}}}
  - {{name: latency-degraded, type: http, url: "{u}/slow?ms=300", expect: {{max_latency: 2s, degraded_latency: 100ms}}}}
  - {{name: body-ok, type: http, url: "{u}/ok", expect: {{body_matches: "heal+thy"}}}}
  - {{name: body-fail, type: http, url: "{u}/ok", expect: {{body_matches: "^sick"}}}}
  - name: header-ok
    type: http
    url: "{u}/ok"
    expect: {{headers: {{Content-Type: "application/json.*", x-version: "^1\\\\."}}}}
  - {{name: header-fail, type: http, url: "{u}/ok", expect: {{headers: {{x-version: "^2"}}}}}}
  - name: json-ok
    type: http
    url: "{u}/ok"
    expect:
      json:
        - {{path: "$.status", equals: healthy}}
        - {{path: "$.status", not_equals: down}}
        - {{path: "$.total", gt: 2}}
        - {{path: "$.total", lt: 4}}
        - {{path: "$.tags", contains: b}}
        - {{path: "$.version", matches: "^1\\\\.2"}}
        - {{path: "$.components", exists: true}}
        - {{path: "$.missing", exists: false}}
        - {{path: "$.components[*].status", all_equal: healthy}}
  - name: json-equals-fail
    type: http
    url: "{u}/degraded"
    expect: {{json: [{{path: "$.status", equals: healthy}}]}}
  - name: json-all-equal-fail
    type: http
    url: "{u}/degraded"
    expect: {{json: [{{path: "$.components[*].status", all_equal: healthy}}]}}
  - {{name: json-gt-fail, type: http, url: "{u}/degraded", expect: {{json: [{{path: "$.total", gt: 0}}]}}}}
  - {{name: json-missing, type: http, url: "{u}/ok", expect: {{json: [{{path: "$.nope", equals: 1}}]}}}}
  - name: json-invalid-body
    type: http
    url: "{u}/text"
    expect: {{json: [{{path: "$.status", equals: healthy}}]}}
"""

HOSTILE_PROBES = """
defaults: {{interval: 30s, timeout: 1500ms, max_body_bytes: 1048576}}
probes:
  - {{name: hang, type: http, url: "{u}/hang"}}
  - {{name: big, type: http, url: "{u}/big"}}
  - {{name: big-chunked, type: http, url: "{u}/big-chunked"}}
  - {{name: garbage, type: http, url: "{u}/garbage"}}
  - {{name: reset, type: http, url: "{u}/reset"}}
  - {{name: redirect-loop, type: http, url: "{u}/redirect"}}
  - {{name: drip, type: http, url: "{u}/drip"}}
  - {{name: unknown-host, type: http, url: "http://no-such-host.invalid/"}}
  - {{name: refused, type: http, url: "http://127.0.0.1:1/"}}
  - {{name: still-fine, type: http, url: "{u}/ok"}}
"""


def run_once(tmp_path: Path, text: str, *extra: str) -> tuple[int, dict[str, dict[str, Any]], float]:
    config = tmp_path / "agent.yaml"
    config.write_text(text)
    start = time.monotonic()
    proc = run_cli("once", "--config", str(config), "--format", "json", *extra)
    elapsed = time.monotonic() - start
    assert "Traceback" not in proc.stderr, proc.stderr
    results = json.loads(proc.stdout)
    return proc.returncode, {r["probe"]: r for r in results}, elapsed


@pytest.fixture(scope="module")
def assertion_results(tmp_path_factory: pytest.TempPathFactory, hostile: HostileServer) -> tuple[int, dict[str, Any]]:
    code, results, _ = run_once(tmp_path_factory.mktemp("once"), ASSERTION_PROBES.format(u=hostile.url))
    return code, results


def test_json_output_has_the_contract_fields(assertion_results: tuple[int, dict[str, Any]]) -> None:
    _, results = assertion_results
    for result in results.values():
        assert {"probe", "type", "success", "degraded", "duration_seconds", "reason", "message"} <= set(result)
        assert isinstance(result["success"], bool) and isinstance(result["degraded"], bool)
        assert isinstance(result["duration_seconds"], float)
    ok = results["ok"]
    assert ok["success"] is True and ok["reason"] is None and ok["type"] == "http"
    assert ok["status_code"] == 200


def test_exit_code_is_1_when_any_probe_fails(assertion_results: tuple[int, dict[str, Any]]) -> None:
    assert assertion_results[0] == 1


@pytest.mark.parametrize(("probe", "success", "reason", "degraded"), [
    ("status-default-2xx", False, "status", False),
    ("status-listed", True, None, False),
    ("latency-fail", False, "latency", False),
    ("latency-degraded", True, None, True),
    ("body-ok", True, None, False),
    ("body-fail", False, "assertion", False),
    ("header-ok", True, None, False),
    ("header-fail", False, "assertion", False),
    ("json-ok", True, None, False),
    ("json-equals-fail", False, "assertion", False),
    ("json-all-equal-fail", False, "assertion", False),
    ("json-gt-fail", False, "assertion", False),
    ("json-missing", False, "assertion", False),
    ("json-invalid-body", False, "assertion", False),
])
def test_assertion_verdicts(assertion_results: tuple[int, dict[str, Any]], probe: str, success: bool,
                            reason: str | None, degraded: bool) -> None:
    result = assertion_results[1][probe]
    assert (result["success"], result["reason"], result["degraded"]) == (success, reason, degraded), result


def test_failure_messages_say_what_was_wrong(assertion_results: tuple[int, dict[str, Any]]) -> None:
    results = assertion_results[1]
    assert "503" in results["status-default-2xx"]["message"]
    assert "degraded" in results["json-equals-fail"]["message"]
    assert "1 of 2" in results["json-all-equal-fail"]["message"]
    assert "not valid JSON" in results["json-invalid-body"]["message"]
    assert "max_latency" in results["latency-fail"]["message"]


def test_only_selected_probes_run(tmp_path: Path, hostile: HostileServer) -> None:
    code, results, _ = run_once(tmp_path, ASSERTION_PROBES.format(u=hostile.url), "--probe", "ok", "--probe", "json-ok")
    assert code == 0
    assert set(results) == {"ok", "json-ok"}


def test_unknown_probe_name_is_a_usage_error(tmp_path: Path, hostile: HostileServer) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(ASSERTION_PROBES.format(u=hostile.url))
    proc = run_cli("once", "--config", str(config), "--probe", "nope")
    assert proc.returncode == 2
    assert "unknown probe nope" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("probe", "reason"), [
    ("hang", "timeout"),
    ("big", "body_too_large"),
    ("big-chunked", "body_too_large"),
    ("garbage", "protocol"),
    ("reset", "connection"),
    ("redirect-loop", "redirect"),
    ("drip", "timeout"),
    ("unknown-host", "dns"),
    ("refused", "connection"),
])
def test_hostile_targets_fail_with_a_reason(hostile_results: tuple[dict[str, Any], float], probe: str,
                                            reason: str) -> None:
    result = hostile_results[0][probe]
    assert result["success"] is False
    assert result["reason"] == reason, result
    assert result["message"]
    # within the timeout plus a small margin, whatever the target does
    assert result["duration_seconds"] < 1.5 + 1.0


def test_hostile_targets_do_not_hurt_other_probes(hostile_results: tuple[dict[str, Any], float]) -> None:
    results, elapsed = hostile_results
    assert results["still-fine"]["success"] is True
    # all probes ran concurrently: the whole run is bounded by one timeout, not their sum
    assert elapsed < 1.5 * 3 + 5


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory: pytest.TempPathFactory, hostile: HostileServer) -> tuple[dict[str, Any], float]:
    _, results, elapsed = run_once(tmp_path_factory.mktemp("hostile"), HOSTILE_PROBES.format(u=hostile.url))
    return results, elapsed
