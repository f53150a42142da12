"""Invalid configs exit 2 with `FILE:LINE: field.path: message`, never a traceback; schema and check-config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.processes import run_cli

GOOD = """\
agent: {region: eu-west-1, id: agent-1}
defaults: {interval: 30s, timeout: 10s}
probes:
  - name: api-health
    type: http
    url: http://127.0.0.1:8000/health
    headers: {Authorization: "Bearer ${API_TOKEN}"}
    expect: {status: [200], max_latency: 500ms}
  - name: search-laptop
    type: search
    url: http://127.0.0.1:8000/api/search
    params: {q: laptop, limit: 10}
    expect: {min_hits: 1, top_k_contains: [sku-00042]}
"""

BAD = [
    # (name, text, line, field, message fragment)
    ("unknown-key", GOOD.replace("    expect: {status: [200], max_latency: 500ms}",
                                 "    expect: {status: [200], max_latency: 500ms}\n    colour: blue"),
     9, "probes[0].colour", "unknown field"),
    ("bad-duration", GOOD.replace("max_latency: 500ms", "max_latency: 5 seconds"),
     8, "probes[0].expect.max_latency", "invalid duration"),
    ("missing-env", GOOD.replace("${API_TOKEN}", "${SURELY_UNSET_VARIABLE}"),
     7, "probes[0].headers.Authorization", "environment variable SURELY_UNSET_VARIABLE is not set"),
    ("unknown-type", GOOD.replace("type: search", "type: grpc"),
     10, "probes[1].type", "unknown probe type 'grpc'; known types: http, search, scripted, elasticsearch"),
    ("duplicate-name", GOOD.replace("name: search-laptop", "name: api-health"),
     9, "probes[1].name", "duplicate probe name 'api-health'"),
    ("timeout-over-interval", GOOD.replace("defaults: {interval: 30s, timeout: 10s}",
                                           "defaults: {interval: 5s, timeout: 10s}"),
     2, "defaults.timeout", "longer than the interval"),
    ("probe-timeout-over-interval", GOOD.replace("    url: http://127.0.0.1:8000/health\n",
                                                 "    url: http://127.0.0.1:8000/health\n    interval: 1s\n"
                                                 "    timeout: 3s\n"),
     8, "probes[0].timeout", "longer than the interval"),
    ("invalid-yaml", GOOD.replace("    type: search", "   type: search"),
     10, "(yaml)", "invalid YAML"),
    ("bad-regex", GOOD.replace("max_latency: 500ms}", "body_matches: '(unclosed'}"),
     8, "probes[0].expect.body_matches", "invalid regular expression"),
    ("bad-jsonpath", GOOD.replace("max_latency: 500ms}", "json: [{path: '$.[[', equals: 1}]}"),
     8, "probes[0].expect.json[0].path", "invalid JSONPath"),
    ("bad-url", GOOD.replace("url: http://127.0.0.1:8000/health", "url: 127.0.0.1:8000/health"),
     6, "probes[0].url", "is not an http:// or https:// URL"),
]


@pytest.mark.parametrize(("name", "text", "line", "field", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_invalid_config_is_exit_2_with_file_line_field(tmp_path: Path, name: str, text: str, line: int,
                                                       field: str, fragment: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    proc = run_cli("check-config", str(path), env={"API_TOKEN": "t"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    expected = f"{path}:{line}: {field}: "
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(str(path))]
    assert any(ln.startswith(expected) and fragment in ln for ln in lines), proc.stderr


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("max_latency: 500ms", "max_latency: 5x").replace("min_hits: 1", "min_hits: many")
    path = tmp_path / "two.yaml"
    path.write_text(text)
    proc = run_cli("check-config", str(path), env={"API_TOKEN": "t"})
    assert proc.returncode == 2
    assert len(re.findall(rf"^{re.escape(str(path))}:\d+: ", proc.stderr, re.M)) == 2


def test_run_with_invalid_config_exits_2_before_listening(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("probes:\n  - {name: x, type: http, url: http://127.0.0.1:1/, timeout: soon}\n")
    proc = run_cli("run", "--config", str(path), "--listen", "127.0.0.1:0", timeout=30)
    assert proc.returncode == 2
    assert f"{path}:2: probes[0].timeout: invalid duration" in proc.stderr
    assert "listening" not in proc.stdout


def test_missing_file_is_exit_2(tmp_path: Path) -> None:
    proc = run_cli("check-config", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "cannot read" in proc.stderr and "Traceback" not in proc.stderr


def test_good_config_passes(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    proc = run_cli("check-config", str(path), env={"API_TOKEN": "t"})
    assert proc.returncode == 0, proc.stderr
    assert "OK (2 probes)" in proc.stdout


def test_schema_is_json_schema_of_agent_yaml() -> None:
    proc = run_cli("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert set(schema["properties"]) == {"agent", "defaults", "probes", "sinks", "slos"}
    assert schema["additionalProperties"] is False
    text = json.dumps(schema)
    for kind in ("http", "search", "scripted", "elasticsearch"):
        assert f'"const": "{kind}"' in text


def test_bad_invocation_is_exit_2() -> None:
    proc = run_cli("run")
    assert proc.returncode == 2 and "--config" in proc.stderr
