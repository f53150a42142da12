"""What `pip install probe-agent` puts on a machine: every package, the scenarios inside our own namespace
(probes/_scenarios, not a generic top-level `scenarios`), the licence; and `--scenario search` works from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(tmp: Path) -> Path:
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info",
                                                                 "build", "dist", ".*_cache", "docs"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp / "dist").glob("probe_agent-*.whl")
    return wheel


def test_the_wheel_ships_every_package_the_scenarios_inside_probes_and_the_licence(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "probes").rglob("__init__.py")}
    missing = sorted(p for p in packages if f"{p}/__init__.py" not in names)
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
    for scenario in ("__init__.py", "_shared.py", "search.py", "health.py", "data/queries.txt"):
        assert f"probes/_scenarios/{scenario}" in names
    assert not any(name.startswith("scenarios/") for name in names)
    assert any(name.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in name for name in names), names
    assert "probes/demo/demo.yaml" in names

    # Installed (unpacked, away from the source tree): the bundled scenarios are found inside the package.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from probes.load.scenario_files import resolve; name, path = resolve('search'); "
            "print(name, path)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"search {site / 'probes' / '_scenarios' / 'search.py'}"
