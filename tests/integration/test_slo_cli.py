"""`probe-agent slo ...` and `check-config` with SLOs: exit codes and one-line errors, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

from probes.ports import free_port
from tests.support.processes import run_cli

CONFIG = """\
agent: {region: eu-west-1, id: agent-1}
probes:
  - {name: search-laptop, type: http, url: "http://127.0.0.1:8000/api/search?q=laptop"}
slos:
  - {name: search-availability, probes: [search-laptop], objective: 99.9, window: 30d}
"""


def test_check_config_reports_every_slo_error_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG + """\
  - {name: search-availability, probes: [checkout], objective: 100, window: 90m}
  - {name: slow, probes: [search-laptop], sli: latency, objective: 99}
""")
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    for expected in (f"{path}:6: slos[1].objective: should be less than 100",
                     f"{path}:6: slos[1].window: window 90m is not a whole number of hours",
                     f"{path}:7: slos[2]: a latency SLO needs a threshold"):
        assert any(line.startswith(expected) for line in lines), proc.stderr
    # The cross-checks (names, probes) need valid SLOs: they run once the models load.
    path.write_text(CONFIG + "  - {name: search-availability, probes: [checkout], objective: 99}\n")
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 2
    assert f"{path}:6: slos[1].name: duplicate SLO name 'search-availability'" in proc.stderr
    assert f"{path}:6: slos[1].probes[0]: no probe named 'checkout'" in proc.stderr


def test_report_against_an_unreachable_prometheus_is_exit_3_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG)
    url = f"http://127.0.0.1:{free_port()}"
    proc = run_cli("slo", "report", "--config", str(path), "--prometheus", url)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert re.fullmatch(rf"error: cannot reach Prometheus at {re.escape(url)}: .+\n", proc.stderr), proc.stderr
    proc = run_cli("slo", "report", "--config", str(path), "--prometheus", "127.0.0.1:9090")
    assert proc.returncode == 2 and "is not an http:// or https:// URL" in proc.stderr


def test_rules_without_slos_or_with_tests_but_no_out_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG.split("slos:")[0])
    proc = run_cli("slo", "rules", "--config", str(path))
    assert proc.returncode == 2 and "has no slos: section" in proc.stderr and "Traceback" not in proc.stderr
    path.write_text(CONFIG)
    proc = run_cli("slo", "rules", "--config", str(path), "--tests", str(tmp_path / "t.yml"))
    assert proc.returncode == 2 and "--tests needs --out" in proc.stderr
    proc = run_cli("slo", "rules", "--config", str(path), "--time-scale", "0.5")
    assert proc.returncode == 2 and "--time-scale must be a number >= 1" in proc.stderr


def test_rules_warn_when_an_objective_is_too_low_to_ever_page(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG.replace("objective: 99.9", "objective: 90"))
    proc = run_cli("slo", "rules", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "search-availability" in proc.stderr and "page 14.4x can never fire" in proc.stderr
    assert proc.stdout.count("alert: SLOErrorBudgetBurn") == 4
