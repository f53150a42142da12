"""The shipped deploy/ and example files stay valid as the code changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from probes.agent.config_file import load_config, parse_config
from probes.sinks.prometheus import FAMILIES

ROOT = Path(__file__).resolve().parents[2]


def test_example_agent_config_loads() -> None:
    config = load_config(str(ROOT / "deploy/examples/agent.yaml"))
    assert {p.type for p in config.probes} >= {"http", "search", "scripted"}


def test_compose_agent_config_loads() -> None:
    config = load_config(str(ROOT / "deploy/examples/compose-agent.yaml"), env={"PROBE_AGENT_REGION": "local"})
    assert config.sinks.elasticsearch is not None


def test_k8s_configmap_holds_a_valid_agent_config() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/agent.yaml").read_text()))
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    parse_config(configmap["data"]["agent.yaml"], "configmap:agent.yaml")


def test_compose_file_references_existing_files() -> None:
    compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (ROOT / "deploy" / source).exists(), source


@pytest.mark.parametrize("name", ["probe_agent_info", "probe_agent_schedule_lag_seconds",
                                  "probe_agent_missed_runs_total", "probe_agent_sink_dropped_total"])
def test_agent_metric_names_used_by_the_dashboard_exist(name: str) -> None:
    from probes.agent.self_metrics import AgentMetrics
    from probes.identity import AgentIdentity

    names = {m.name for m in AgentMetrics(AgentIdentity("r", "a")).registry.collect()}
    names |= {n + "_total" for n in names}
    assert name in names


def test_dashboard_only_queries_metrics_the_agent_exports() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/probe-agent.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(probe_[a-z_]+?)(?:_bucket)?\{", e)}
    exported = set(FAMILIES) | {"probe_search_hits", "probe_search_top_k_recall", "probe_agent_schedule_lag_seconds",
                                "probe_agent_missed_runs_total", "probe_agent_sink_dropped_total"}
    assert used and used <= exported, used - exported


def test_the_example_web_config_is_valid_and_its_hash_matches_the_documented_password() -> None:
    import bcrypt

    from probes.config import yamlfile
    from probes.config.web_config import WebConfig

    doc = yamlfile.read(ROOT / "deploy/examples/web-config.yml")
    config = yamlfile.validate(doc, WebConfig)
    assert config.tls_server_config is not None
    assert bcrypt.checkpw(b"change-this-password", config.basic_auth_users["prometheus"].encode())


def test_the_example_scrape_config_passes_promtool(tmp_path: Path) -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (tests/run.sh installs it)")
    example = ROOT / "deploy/examples/prometheus-scrape-auth.yml"
    # promtool checks that the files it names exist: give them, beside a copy.
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls/ca.crt").write_text("")
    (tmp_path / "probe-agent-password").write_text("change-this-password")
    copy = tmp_path / example.name
    copy.write_text(example.read_text())
    proc = subprocess.run([promtool, "check", "config", str(copy)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
