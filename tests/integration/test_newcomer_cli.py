"""The rough edges a newcomer hit with the CLI, one test each: schema, config errors, once --format junit,
demo --duration, PROMETHEUS_BIN, the README's own examples."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.hostile import HostileServer
from tests.support.processes import run_cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def readme_yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README, re.S)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    proc = run_cli("schema")
    assert proc.returncode == 0, proc.stderr
    loaded: dict[str, Any] = json.loads(proc.stdout)
    return loaded


def schema_errors(schema: dict[str, Any], document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


def test_schema_accepts_the_readme_examples_and_the_shipped_configs(schema: dict[str, Any]) -> None:
    examples = [yaml.safe_load(b) for b in readme_yaml_blocks()]
    agent_examples = [e for e in examples if isinstance(e, dict) and "probes" in e]
    scripted = [e for e in agent_examples if any(p.get("type") == "scripted" for p in e["probes"])]
    assert scripted, "the README has a scripted example"
    shorthand = [s for e in scripted for p in e["probes"] for s in p.get("steps", [])
                 if any(isinstance(v, str) for v in s.get("extract", {}).values())]
    assert shorthand, "the README's scripted example uses the extract shorthand"
    for example in agent_examples:
        assert schema_errors(schema, example) == []
    for path in (ROOT / "deploy" / "examples" / "agent.yaml", ROOT / "probes" / "demo" / "demo.yaml"):
        assert schema_errors(schema, yaml.safe_load(path.read_text())) == [], path


def test_schema_rejects_what_the_loader_rejects(schema: dict[str, Any]) -> None:
    bad = {"probes": [{"name": "x", "type": "http", "url": "http://127.0.0.1/", "expect": {"status": "ok"}}]}
    assert schema_errors(schema, bad)
    assert schema_errors(schema, {"probes": [{"name": "x", "type": "http", "url": "http://a/", "bogus": 1}]})


def test_readme_sample_error_lines_are_what_check_config_prints(tmp_path: Path) -> None:
    block = readme_yaml_blocks()[0]
    bad = block.replace("max_latency: 500ms ", "max_latency: 5 seconds", 1).replace("min_hits: 1", "min_hits: many", 1)
    assert bad != block
    (tmp_path / "agent.yaml").write_text(bad)
    sample = README.split("$ probe-agent check-config agent.yaml\n", 1)[1].split("```", 1)[0].strip()
    proc = run_cli("check-config", str(tmp_path / "agent.yaml"), env={"API_TOKEN": "x"})
    assert proc.returncode == 2
    assert proc.stderr.strip().replace(str(tmp_path) + "/", "") == sample


def check(tmp_path: Path, text: str, name: str = "agent.yaml") -> tuple[int, str, str]:
    path = tmp_path / name
    path.write_text(text)
    proc = run_cli("check-config", str(path))
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr.replace(str(tmp_path) + "/", "")


def test_errors_are_sorted_by_line_and_read_like_yaml(tmp_path: Path) -> None:
    code, _, err = check(tmp_path, """probes:
  - name: b
    type: http
    url: http://127.0.0.1:1/
    timeout: 1m
    expect: 5
  - name: a
    type: http
    url: http://127.0.0.1:1/
    expect: {status: [ok], json: {path: "$.x"}}
    bogus: 1
""")
    assert code == 2
    lines = err.strip().splitlines()
    numbers = [int(line.split(":")[1]) for line in lines]
    assert numbers == sorted(numbers) and len(lines) == 4, err
    assert lines[0] == "agent.yaml:6: probes[0].expect: should be a mapping (key: value), not the number 5"
    assert "should be a whole number, not the text 'ok'" in lines[1]
    assert "probes[1].expect.json: should be a list, e.g. [a, b], not a mapping" in err
    assert "probes[1].bogus: unknown field" in lines[3]
    assert "instance of" not in err and "Input should" not in err


def test_a_single_status_code_is_a_list_of_one_and_one_probe_is_singular(tmp_path: Path) -> None:
    code, out, err = check(tmp_path, """probes:
  - {name: one, type: http, url: "http://127.0.0.1:1/", expect: {status: 204}}
""")
    assert (code, err) == (0, "")
    assert out.strip().endswith("OK (1 probe)")


def test_an_empty_config_is_an_error_and_no_probes_a_warning(tmp_path: Path) -> None:
    code, _, err = check(tmp_path, "# nothing yet\n")
    assert code == 2 and "agent.yaml:1: (yaml): the file is empty" in err
    code, out, err = check(tmp_path, "agent: {region: eu}\nprobes: []\n")
    assert code == 0 and "OK (0 probes)" in out and "warning: no probes configured" in err


def test_a_missing_tls_file_is_a_load_error_naming_it(tmp_path: Path) -> None:
    code, _, err = check(tmp_path, """probes:
  - name: es
    type: elasticsearch
    hosts: [https://127.0.0.1:9200]
    tls: {ca_file: /nonexistent/ca.pem}
  - name: web
    type: http
    url: https://127.0.0.1:1/
    tls: {cert_file: /nonexistent/client.pem, key_file: /nonexistent/client.key}
""")
    assert code == 2
    assert "agent.yaml:5: probes[0].tls.ca_file: cannot read /nonexistent/ca.pem: No such file or directory" in err
    assert "probes[1].tls.cert_file: cannot read /nonexistent/client.pem" in err
    assert "probes[1].tls.key_file: cannot read /nonexistent/client.key" in err


def test_once_junit_counts_every_testcase(tmp_path: Path, hostile: HostileServer) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"""probes:
  - {{name: plain, type: http, url: "{hostile.url}/ok"}}
  - name: flow
    type: scripted
    steps:
      - {{name: first, request: {{url: "{hostile.url}/ok"}}}}
      - {{name: broken, request: {{url: "{hostile.url}/status/500"}}}}
      - {{name: never, request: {{url: "{hostile.url}/ok"}}}}
""")
    proc = run_cli("once", "--config", str(config), "--format", "junit")
    assert proc.returncode == 1, proc.stderr
    suite = ET.fromstring(proc.stdout.split("\n", 1)[1] if proc.stdout.startswith("<?xml") else proc.stdout)
    if suite.tag == "testsuites":
        suite = suite.find("testsuite")  # type: ignore[assignment]
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == 5  # plain, flow, and flow's three steps
    assert int(suite.get("tests", "0")) == len(cases)
    assert int(suite.get("failures", "0")) == sum(c.find("failure") is not None for c in cases) == 2
    assert int(suite.get("skipped", "0")) == sum(c.find("skipped") is not None for c in cases) == 1


def test_demo_duration_takes_units() -> None:
    proc = run_cli("demo", "--listen", "127.0.0.1:0", "--duration", "3s", timeout=60)
    assert proc.returncode == 0, proc.stderr
    header = "probe-agent demo: status page"
    assert proc.stdout.count(header) == 1, "piped output prints its header once"
    assert re.search(r"^\d\d:\d\d:\d\d api-health OK ", proc.stdout, re.M), proc.stdout
    bad = run_cli("demo", "--duration", "5x")
    assert bad.returncode == 2 and "invalid duration '5x'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("variable", ["PROMETHEUS_BIN", "ALERTMANAGER_BIN"])
def test_a_wrong_binary_variable_is_an_error_not_ignored(variable: str) -> None:
    proc = run_cli("demo", "--drill", "--listen", "127.0.0.1:0", env={variable: "/nonexistent/prometheus"},
                   timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    assert f"{variable}=/nonexistent/prometheus is not an executable file" in output
    assert "Traceback" not in output


def test_a_wrong_rules_dir_says_which_variable_to_set() -> None:
    proc = run_cli("demo", "--drill", "--listen", "127.0.0.1:0", env={"PROBE_AGENT_RULES_DIR": "/nonexistent/rules"},
                   timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 3, output
    assert "alert rules not found in /nonexistent/rules: set PROBE_AGENT_RULES_DIR" in output
    assert "PROBE_AGENT_RULES_DIR" in README  # documented


@pytest.mark.parametrize("command", ["run", "once", "check-config", "schema", "demo"])
def test_help_has_a_description_and_an_example(command: str) -> None:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0
    _, _, rest = proc.stdout.partition("\n\n")
    description = rest.split("\n\n", 1)[0]
    assert len(description) > 60 and not description.startswith(("positional", "options")), proc.stdout
    assert "examples:\n  probe-agent " + command in proc.stdout
