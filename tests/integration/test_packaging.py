"""The package as users install it: `pip install .` (the Docker image's way) and the image's health check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.processes import cli, started
from tests.support.prom import require_binaries

ROOT = Path(__file__).resolve().parents[2]


def _clean_env() -> dict[str, str]:
    # Nothing may point the installed package back at the source tree.
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PROBE_AGENT_RULES_DIR", "PROBE_AGENT_SCENARIOS", "VIRTUAL_ENV")}


def test_demo_drill_runs_from_a_non_editable_install(tmp_path: Path) -> None:
    require_binaries()
    # What the Dockerfile copies, as in a fresh clone (no caches, no build leftovers).
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("probes", "scenarios"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    # A fresh venv that borrows the test venv's dependencies (no network, seconds instead of minutes) through
    # a plain path entry: the test venv's editable-install hook is not run there.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    (Path(site) / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "--no-index", str(source)],
        capture_output=True, text=True, timeout=120, env=_clean_env(), check=False)
    assert install.returncode == 0, install.stdout + install.stderr

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    where = subprocess.run([str(python), "-c", "import probes.assets as a; print(a.RULES_DIR)"], cwd=cwd,
                           capture_output=True, text=True, check=True, timeout=30, env=_clean_env())
    rules = Path(where.stdout.strip())
    assert rules.is_relative_to(Path(site)), rules
    shipped = sorted(p.name for p in (ROOT / "deploy/prometheus/rules").glob("*.yml"))
    assert sorted(p.name for p in rules.glob("*.yml")) == shipped

    result = subprocess.run([str(venv / "bin" / "probe-agent"), "demo", "--drill", "--listen", "127.0.0.1:0",
                             "--duration", "80"], cwd=cwd, capture_output=True, text=True, timeout=150,
                            env=_clean_env(), check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "1/1 drills passed" in out


def _dockerfile_healthcheck() -> tuple[list[str], dict[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    command = json.loads(re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.M).group(1))  # type: ignore[union-attr]
    env = dict(re.findall(r"^ENV (\w+)=(\S+)", text, re.M))
    return command, env


def test_the_image_healthcheck_passes_on_a_live_agent_and_fails_without_one(tmp_path: Path) -> None:
    command, env = _dockerfile_healthcheck()
    assert command[0] == "python"
    assert env["PROBE_AGENT_HEALTH_URL"].endswith("/-/healthy")
    # The Dockerfile's EXPOSE'd port is the one the health check asks.
    expose = re.search(r"^EXPOSE (\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert expose and f":{expose.group(1)}/" in env["PROBE_AGENT_HEALTH_URL"]

    config = tmp_path / "agent.yaml"
    config.write_text("probes:\n  - {name: p, type: http, url: 'http://127.0.0.1:9/', interval: 1h}\n")
    with started(cli("run", "--config", str(config), "--listen", "127.0.0.1:0"), expect=["agent"]) as agent:
        healthy = agent.urls["agent"] + "/-/healthy"
        ok = subprocess.run([sys.executable, *command[1:]], env={**os.environ, "PROBE_AGENT_HEALTH_URL": healthy},
                            capture_output=True, text=True, timeout=30, check=False)
        assert ok.returncode == 0, ok.stderr
        missing = subprocess.run([sys.executable, *command[1:]],
                                 env={**os.environ, "PROBE_AGENT_HEALTH_URL": agent.urls["agent"] + "/-/nothing"},
                                 capture_output=True, text=True, timeout=30, check=False)
        assert missing.returncode != 0
    down = subprocess.run([sys.executable, *command[1:]], env={**os.environ, "PROBE_AGENT_HEALTH_URL": healthy},
                          capture_output=True, text=True, timeout=30, check=False)
    assert down.returncode != 0


def test_the_demo_target_in_compose_passes_the_image_healthcheck() -> None:
    import yaml

    command, _ = _dockerfile_healthcheck()
    compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    path = urlsplit(compose["services"]["target"]["environment"]["PROBE_AGENT_HEALTH_URL"]).path
    with started(cli("target", "--listen", "127.0.0.1:0"), expect=["target"]) as target:
        check = subprocess.run([sys.executable, *command[1:]],
                               env={**os.environ, "PROBE_AGENT_HEALTH_URL": target.urls["target"] + path},
                               capture_output=True, text=True, timeout=30, check=False)
    assert check.returncode == 0, check.stderr
