"""The shipped deploy/ and example files stay valid and consistent with each other as the code changes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from probes.agent.config_file import load_config, parse_config
from probes.assets import EXAMPLES_DIR, RULES_DIR
from probes.drills import spec as drill_spec

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


# --- one copy of the rules and examples, inside the package ---------------------------------------------------

def test_deploy_rules_and_examples_are_the_packaged_files() -> None:
    for link, target in ((DEPLOY / "prometheus" / "rules", RULES_DIR), (DEPLOY / "examples", EXAMPLES_DIR)):
        assert link.is_symlink() and not Path(link.readlink()).is_absolute(), f"{link} must be a relative symlink"
        assert link.resolve() == target
    assert sorted(p.name for p in RULES_DIR.glob("*.yml")) == ["consistency.yml", "demo-api.yml", "probes.yml"]


def test_example_agent_configs_load() -> None:
    config = load_config(str(DEPLOY / "examples/agent.yaml"))
    assert {p.type for p in config.probes} >= {"http", "search", "scripted"}
    fleet = load_config(str(DEPLOY / "examples/fleet.yaml"))
    # The fleet config leaves the region to each agent's --region.
    assert fleet.agent.region == "default" and fleet.sinks.elasticsearch is not None


def test_example_drills_load() -> None:
    for name in ("drills.yaml", "compose-drills.yaml"):
        loaded = drill_spec.load(DEPLOY / "examples" / name, env={"FAULT_TOKEN": "t", "PROXY_TOKEN": "p"})
        assert loaded.spec.drills


# --- docker compose ------------------------------------------------------------------------------------------

def test_compose_file_references_existing_files() -> None:
    compose = _compose()
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (DEPLOY / source).exists(), f"{name}: {source}"
        assert set(service.get("depends_on", [])) <= set(compose["services"]), name


def test_compose_agents_share_one_config_served_over_http_in_two_regions() -> None:
    services = _compose()["services"]
    config_server = services["config"]
    served = {Path(v.split(":")[1]).relative_to("/srv/config").as_posix(): v.split(":")[0]
              for v in config_server["volumes"]}
    agents = {name: s["command"] for name, s in services.items() if s.get("command", [None])[0] == "run"}
    regions = {_flag(cmd, "--region") for cmd in agents.values()}
    assert len(regions) >= 2 and None not in regions
    assert len({_flag(cmd, "--agent-id") for cmd in agents.values()}) == len(agents)
    assert len(agents) > len(regions), "a region with two replicas shows that the rules count regions"
    urls = {_flag(cmd, "--config") for cmd in agents.values()}
    assert len(urls) == 1
    url = urlsplit(urls.pop() or "")
    assert url.scheme == "http" and url.hostname == "config"
    assert str(url.port) in config_server["entrypoint"]
    source = served[url.path.lstrip("/")]
    config = load_config(str(DEPLOY / source))
    # Every probe of the shared config targets a service of this compose file.
    for probe in config.probes:
        text = probe.model_dump_json()
        hosts = set(re.findall(r"https?://([a-z0-9.-]+):\d+", text))
        assert hosts and hosts <= set(services), (probe.name, hosts)
    prometheus = yaml.safe_load((DEPLOY / "prometheus/compose.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "probe-agent")
    scraped = {t.split(":")[0] for sc in job["static_configs"] for t in sc["targets"]}
    assert scraped == set(agents)


def test_compose_fault_api_token_comes_from_the_environment() -> None:
    target = _compose()["services"]["target"]
    assert "--admin-token" not in target["command"]
    assert re.fullmatch(r"\$\{FAULT_TOKEN:\?.+\}", target["environment"]["PROBE_AGENT_ADMIN_TOKEN"])


def test_alertmanager_notifies_services_of_the_compose_network_and_inhibits_regional_alerts() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    services = _compose()["services"]
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            host = urlsplit(hook["url"]).hostname
            assert host in services or host in _aliases(services), (receiver["name"], hook["url"])
    assert {"source_matchers": ['alertname="ProbeFailingMultiRegion"'],
            "target_matchers": ['alertname="ProbeFailing"'], "equal": ["probe"]} in config["inhibit_rules"]


def _aliases(services: dict[str, Any]) -> set[str]:
    # `docker compose run --use-aliases drill` makes the drill service reachable by its name.
    return {name for name, s in services.items() if "drill" in s.get("profiles", [])}


# --- Dockerfile ----------------------------------------------------------------------------------------------

def test_dockerfile_is_slim_non_root_with_a_healthcheck_and_copies_existing_paths() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M)[-1] == "python:3.11-slim"
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", text, re.M)
    assert "/-/healthy" in text
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), source


# --- Kubernetes ----------------------------------------------------------------------------------------------

def _kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


@pytest.mark.parametrize("path", _kustomizations(), ids=lambda p: str(p.parent.relative_to(K8S)))
def test_kustomizations_reference_existing_files(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    for resource in data.get("resources", []):
        assert (path.parent / resource).exists(), resource
    for generator in data.get("configMapGenerator", []):
        for file in generator.get("files", []):
            assert (path.parent / file.split("=")[-1]).is_file(), file


def test_k8s_shared_config_is_a_valid_agent_config() -> None:
    config = load_config(str(K8S / "base/agent.yaml"))
    assert config.probes and config.agent.region == "default"


def test_one_overlay_per_region() -> None:
    assert {p.name for p in OVERLAYS} >= {"eu-west-1", "us-east-1"}


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomizations")
    return kubectl


def _render(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run([_kubectl(), "kustomize", str(directory)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_renders_a_complete_manifest_for_its_region(overlay: Path) -> None:
    docs = _render(overlay)
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) >= {"Namespace", "ConfigMap", "Deployment", "Service", "NetworkPolicy", "PodMonitor",
                          "PrometheusRule"}
    [container] = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env.get("PROBE_AGENT_REGION") == overlay.name
    assert "--region" not in container["args"]
    # The config volume names the generated ConfigMap, and that holds a valid agent config.
    volumes = {v["name"]: v for v in kinds["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
    parse_config(kinds["ConfigMap"]["data"]["agent.yaml"], f"{overlay.name}:configmap:agent.yaml")
    # Only the monitoring namespace reaches the agent's port (it also serves /-/reload).
    policy = kinds["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert [f["namespaceSelector"]["matchLabels"] for r in policy["ingress"] for f in r["from"]] == \
        [{"kubernetes.io/metadata.name": "monitoring"}]
    pod_labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    # The PodMonitor scrapes these pods as job "probe-agent", the job the rules select.
    monitor = kinds["PodMonitor"]["spec"]
    assert pod_labels[monitor["jobLabel"]] == "probe-agent"
    assert monitor["selector"]["matchLabels"].items() <= pod_labels.items()
    assert monitor["podMetricsEndpoints"][0]["honorLabels"] is True


def test_prometheusrule_is_generated_from_the_rule_files() -> None:
    result = subprocess.run([sys.executable, str(K8S / "render-prometheusrule.py"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    generated = yaml.safe_load((K8S / "base/prometheusrule.yaml").read_text())
    groups = [g for p in sorted(RULES_DIR.glob("*.yml")) for g in yaml.safe_load(p.read_text())["groups"]]
    assert generated["kind"] == "PrometheusRule" and generated["spec"]["groups"] == groups


def test_prometheusrule_check_notices_a_rule_change(tmp_path: Path) -> None:
    # The generator run on a copy of deploy/ whose rules changed: --check must fail.
    copy = tmp_path / "deploy"
    shutil.copytree(K8S, copy / "k8s")
    shutil.copytree(RULES_DIR, copy / "prometheus" / "rules")
    rules = copy / "prometheus" / "rules" / "probes.yml"
    rules.write_text(rules.read_text().replace("for: 2m", "for: 3m", 1))
    result = subprocess.run([sys.executable, str(copy / "k8s" / "render-prometheusrule.py"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "out of date" in result.stderr


def test_load_manifests_render_and_their_args_are_valid() -> None:
    from probes.load.command import LoadOptions

    docs = _render(K8S / "load")
    roles = {}
    for doc in docs:
        if doc["kind"] in ("Job", "Deployment"):
            [container] = doc["spec"]["template"]["spec"]["containers"]
            args = container["args"]
            assert args[0] == "load"
            roles[doc["kind"]] = (args, doc)
    master_args, _ = roles["Job"]
    worker_args, workers = roles["Deployment"]
    assert "--master" in master_args and "--worker" in worker_args
    assert int(_flag(master_args, "--expect-workers") or 0) == workers["spec"]["replicas"]
    service = next(d for d in docs if d["kind"] == "Service")
    assert _flag(worker_args, "--master-host") == service["metadata"]["name"]
    for args in (master_args, worker_args):
        LoadOptions.model_validate(_load_fields(args))


def _load_fields(args: list[str]) -> dict[str, Any]:
    """`probe-agent load` ARGS as its option model's fields, through the command's own parser."""
    import argparse

    from probes.load import command

    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    namespace = parser.parse_args(args)
    return {name: getattr(namespace, name) for name in command.LoadOptions.model_fields}


def test_alertmanager_names_only_alerts_the_rules_define() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    alerts = {rule["alert"] for path in RULES_DIR.glob("*.yml") for group in yaml.safe_load(path.read_text())["groups"]
              for rule in group["rules"] if "alert" in rule}
    matchers = [m for rule in config["inhibit_rules"] for m in rule["source_matchers"] + rule["target_matchers"]]
    named = {name for m in matchers for value in re.findall(r'^alertname=~?"([^"]*)"$', m)
             for name in value.split("|")}
    assert {"ProbeFailing", "ProbeFailingMultiRegion"} <= named
    assert named <= alerts, named - alerts


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
