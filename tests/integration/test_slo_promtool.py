"""The generated SLO rules pass `promtool check rules`, and their generated unit tests pass `promtool test rules`
(for the README's example and for 20 SLOs); the unit tests catch a wrong factor or a wrong aggregation."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(path).exists():
        pytest.skip("promtool is not installed")
    return path


def _promtool_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], capture_output=True, text=True, timeout=120, check=False)


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## SLOs and error budgets", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "the README's SLO section starts with an agent.yaml example"
    return match.group(1)


def twenty_slos() -> str:
    """10 probes, an availability and a latency SLO each: names and regexes, objectives from 50 to 99.99."""
    objectives = [99.9, 99, 99.5, 95, 99.99, 80, 99.95, 90, 98, 50]
    lines = ["agent: {region: r, id: a}", "probes:"]
    lines += [f"  - {{name: p{i}.search, type: http, url: 'http://127.0.0.1:8000/{i}'}}" for i in range(10)]
    lines.append("slos:")
    for i in range(10):
        lines.append(f"  - {{name: avail-{i}, probes: [p{i}.search], objective: {objectives[i]}, window: 30d}}")
        lines.append(f"  - {{name: lat-{i}, probe_regex: 'p{i}\\..*', sli: latency, threshold: {100 * (i + 1)}ms, "
                     f"objective: {objectives[(i + 3) % 10]}, window: {[28, 7, 1][i % 3]}d}}")
    return "\n".join(lines) + "\n"


def _generate(tmp_path: Path, config: str, *extra: str) -> tuple[Path, Path]:
    path = tmp_path / "agent.yaml"
    path.write_text(config)
    rules, tests = tmp_path / "slo-rules.yml", tmp_path / "slo-rules_test.yml"
    proc = run_cli("slo", "rules", "--config", str(path), "--out", str(rules), "--tests", str(tests), *extra)
    assert proc.returncode == 0, proc.stderr
    return rules, tests


def _check_and_test(rules: Path, tests: Path) -> None:
    checked = _promtool_run("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool_run("test", "rules", str(tests))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_readme_example_rules_pass_promtool_check_and_their_tests(tmp_path: Path) -> None:
    rules, tests = _generate(tmp_path, readme_example())
    _check_and_test(rules, tests)
    text = rules.read_text()
    assert text.count("alert: SLOErrorBudgetBurn") == 4 * 2
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d", "28d"):
        assert f"record: slo:probe_error_ratio:rate{window}\n" in text
    assert 'le="0.3"' in text  # the README's 300ms threshold, written as the agent writes the bucket
    scenarios = tests.read_text()
    assert "fast burn" in scenarios and "slow burn" in scenarios and "healthy" in scenarios


def test_twenty_slos_pass_promtool_check_and_their_tests(tmp_path: Path) -> None:
    rules, tests = _generate(tmp_path, twenty_slos())
    _check_and_test(rules, tests)
    assert rules.read_text().count("- name: slo:") == 2 * 20
    # Objectives of 90% or less cannot page even on a total outage: said in the file, not silently skipped.
    assert "# avail-7: no fast burn test" in tests.read_text()


@pytest.mark.parametrize(("wrong", "right"), [
    ("> 14.4", "> 8"),  # pages too early
    ("> 14.4", "> 20"),  # never pages on a 20x burn
    ("sum by (region)", "sum by (region, agent)"),  # replicas would page twice
    ("[1h]", "[2h]"),  # the long window of the fast page
])
def test_generated_tests_catch_a_wrong_rule(tmp_path: Path, wrong: str, right: str) -> None:
    rules, tests = _generate(tmp_path, readme_example())
    rules.write_text(rules.read_text().replace(wrong, right))
    tested = _promtool_run("test", "rules", str(tests))
    assert tested.returncode != 0 and "FAILED" in tested.stdout + tested.stderr


def test_time_scaled_rules_pass_their_scaled_tests(tmp_path: Path) -> None:
    rules, tests = _generate(tmp_path, readme_example(), "--time-scale", "60")
    _check_and_test(rules, tests)
    text = rules.read_text()
    assert "[1m]" in text and "[5s]" in text and "[12h]" in text  # 1h, 5m, 30d divided by 60
    assert "long_window: 1h" in text  # labels keep the nominal windows
