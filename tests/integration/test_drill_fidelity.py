"""Drill fidelity end to end: a real Prometheus and Alertmanager started seconds before the first drill
(as CI stacks are), the demo target under steady traffic, an agent with probes every 1 s and 2 s, with
and without retries, and the fault proxy in front of the target's /metrics.

Every measured firing time must fall inside [bound_min, bound] plus the measurement allowance (poll
interval and the measured query round trips), with the bound computed term by term by the drill itself.
The bundled rules run with `for: 2s` and 30 s windows. One stack for the module; tests run in order.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from probes.drills.local_stack import LocalStack, shorten_rules
from tests.support.metrics import value
from tests.support.processes import run_cli
from tests.support.prom import (
    RULES,
    demo_services,
    error_fault,
    faults,
    pushgateway,
    require_binaries,
    wait_quiet,
    write_drills,
)

TOKEN = "fidelity-token"
PROXY_TOKEN = "fidelity-proxy-token"
PROBES = {  # name: (interval, retries, retry_delay)
    "every-1s": ("1s", 0, "1s"),
    "every-2s": ("2s", 0, "1s"),
    "every-1s-retries": ("1s", 2, "500ms"),
    "every-2s-retries": ("2s", 1, "1s"),
}
AGENT_CONFIG = "agent: {{region: fidelity, id: fidelity-agent}}\ndefaults: {{timeout: 800ms}}\nprobes:\n" + "".join(
    f'  - {{{{name: {name}, type: http, url: "{{target}}/api/search?q=laptop", interval: {interval}, '
    f"retries: {retries}, retry_delay: {delay}}}}}\n"
    for name, (interval, retries, delay) in PROBES.items()
)
MEASURED: list[str] = []  # the "measured vs bound" table, printed at the end of the module


@dataclass
class Env:
    target: str
    proxy_control: str
    stack: LocalStack
    ready_at: float  # when Prometheus answered /-/ready (Unix time)
    agent_config: Path
    workdir: Path
    reports: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_binaries()
    workdir = tmp_path_factory.mktemp("drill-fidelity")
    reports = workdir / "reports"
    reports.mkdir()
    with demo_services(workdir, AGENT_CONFIG, TOKEN, PROXY_TOKEN) as services:
        rules = shorten_rules(RULES, workdir / "rules", for_="2s", range_="30s")
        # No waiting for first scrapes: the first drill starts while Prometheus has no samples yet.
        with LocalStack(scrape=services.scrape_jobs(), rule_files=rules, receiver_url=None,
                        wait_for_scrapes=False) as stack:
            yield Env(services.target, services.proxy_control, stack, time.time(), services.agent_config,
                      workdir, reports)
    if MEASURED:
        print("\nmeasured vs bound (seconds from injection to firing):\n" + "\n".join(MEASURED))


def _drill(name: str, fault: dict[str, Any], expect: list[dict[str, Any]], resolve_within: str = "45s"
           ) -> dict[str, Any]:
    return {"name": name, "fault": fault, "expect": expect, "resolve_within": resolve_within}


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(result.stdout[result.stdout.index("\n{") + 1:])
    return report


def _no_faults(env: Env) -> None:
    assert faults(env.target, TOKEN) == []
    assert faults(env.proxy_control, PROXY_TOKEN) == []


def _check_inside_bounds(kind: str, alert: dict[str, Any]) -> None:
    firing, low, high = alert["time_to_firing_seconds"], alert["bound_min_seconds"], alert["bound_seconds"]
    allowance = alert["measurement_allowance_seconds"]
    terms = " + ".join(f"{t['term']} {t['seconds']:g}" for t in alert["bound_terms"] if t["stage"] == "firing")
    MEASURED.append(f"{kind:<44} firing {firing:6.2f}  bound [{low:5.2f}, {high:5.2f}] + {allowance:.2f}  "
                    f"({terms})")
    assert firing is not None, alert
    assert low - 0.05 <= firing <= high + allowance, alert
    assert alert["within_bound"] is True, alert


def test_black_box_drill_waits_for_the_first_scrape_and_fires_inside_each_bound(env: Env, tmp_path: Path) -> None:
    expect = [{"alert": "ProbeFailing", "labels": {"probe": name}, "within": "15s"} for name in PROBES]
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill("search-down", error_fault(env.target, TOKEN),
                                                                expect)])
    spec = path.read_text() + f"agent_config: {env.agent_config}\n"
    path.write_text(spec)
    report_path = env.reports / "black-box.json"
    result = run_cli("drill", "--config", str(path), "--report-json", str(report_path), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    _no_faults(env)
    [drill] = json.loads(report_path.read_text())["drills"]
    # Prometheus hands new targets to its scrapers on a 5 s tick: the drill waited, then injected after
    # the first sample of the rule's input existed.
    first_sample = httpx.get(f"{env.stack.prometheus_url}/api/v1/query", params={
        "query": 'min_over_time(timestamp(probe_success{probe="every-1s"})[10m:1s])'}).json()
    first = float(first_sample["data"]["result"][0]["value"][1])
    assert drill["injected_at"] >= first, (drill["injected_at"], first)
    assert drill["series_wait_seconds"] > 0, drill
    assert "waiting up to 30s for fresh samples" in result.stderr
    MEASURED.append(f"(first drill waited {drill['series_wait_seconds']:.1f}s for the first scrape; Prometheus "
                    f"ready {drill['injected_at'] - env.ready_at:.1f}s before the injection)")
    alerts = {a["labels"]["probe"]: a for a in drill["alerts"]}
    for name, (interval, retries, _delay) in PROBES.items():
        alert = alerts[name]
        assert alert["bound_kind"] == "black-box"
        terms = {t["term"]: t for t in alert["bound_terms"]}
        assert terms["probe interval"]["seconds"] == float(interval[:-1])
        assert terms["probe interval"]["source"].startswith("agent config agent.yaml (probe ")
        _check_inside_bounds(f"black-box ProbeFailing {name} (retries {retries})", alert)
    # Retries: each failing run waits its retry delays before it reports a failure.
    assert alerts["every-1s-retries"]["bound_min_seconds"] == pytest.approx(2 + 2 * 0.5)
    assert alerts["every-1s-retries"]["time_to_firing_seconds"] >= 3.0


def test_missing_series_exits_3_naming_it(env: Env, tmp_path: Path) -> None:
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill("typo", error_fault(env.target, TOKEN), [
        {"alert": "ProbeFailing", "labels": {"probe": "no-such-probe"}, "within": "15s"}])])
    started_at = time.monotonic()
    result = run_cli("drill", "--config", str(path), "--wait-for-series", "2s", timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr
    assert 'probe_success{job="probe-agent",probe="no-such-probe"} (for ProbeFailing)' in result.stderr
    assert "after waiting 2s" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started_at < 20
    _no_faults(env)


def test_within_shorter_than_the_bound_is_refused(env: Env, tmp_path: Path) -> None:
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill("hasty", error_fault(env.target, TOKEN), [
        {"alert": "ProbeFailing", "labels": {"probe": "every-2s-retries"}, "within": "4s"}])])
    path.write_text(path.read_text() + f"agent_config: {env.agent_config}\n")
    result = run_cli("drill", "--config", str(path), timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{path}:" in result.stderr and "drills[0].expect[0].within: within 4s is shorter than the " \
        "computed bound for ProbeFailing: 9.6s = probe interval 2s" in result.stderr
    _no_faults(env)


def test_service_down_through_the_proxy_exports_a_passing_promtool_test_and_the_ledger(
        env: Env, tmp_path: Path) -> None:
    wait_quiet(env.stack.prometheus_url)
    fault = error_fault(env.proxy_control, PROXY_TOKEN, path="^/metrics", injector="proxy")
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill("scrape-fails", fault, [
        {"alert": "ServiceDown", "labels": {"job": "via-proxy"}, "within": "10s"}])])
    export, textfile = tmp_path / "promtool", tmp_path / "textfile" / "drills.prom"
    with pushgateway() as gateway:
        result = run_cli("drill", "--config", str(path), "--report-json", str(env.reports / "service-down.json"),
                         "--export-promtool", str(export), "--metrics-file", str(textfile),
                         "--metrics-push", gateway, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        pushed = httpx.get(f"{gateway}/metrics").text
    _no_faults(env)
    [drill] = json.loads((env.reports / "service-down.json").read_text())["drills"]
    [alert] = drill["alerts"]
    assert alert["bound_kind"] == "white-box" and alert["bound_seconds"] == pytest.approx(1 + 1 + 2)
    _check_inside_bounds("white-box ServiceDown (up == 0, via proxy)", alert)

    # The ledger metrics: a node_exporter textfile and the same in the Pushgateway.
    text = textfile.read_text()
    last_run = value(text, "probe_drill_last_run_timestamp_seconds", alert="ServiceDown")
    assert last_run == pytest.approx(drill["injected_at"])
    assert value(text, "probe_drill_last_success_timestamp_seconds", alert="ServiceDown") == last_run
    assert value(text, "probe_drill_time_to_firing_seconds", alert="ServiceDown") == pytest.approx(
        alert["time_to_firing_seconds"], abs=0.001)
    assert value(pushed, "probe_drill_last_run_timestamp_seconds", alert="ServiceDown",
                 job="probe_agent_drill") == pytest.approx(last_run)

    # The exported regression test reproduces the drill under promtool, no live stack needed.
    test_file = export / "scrape-fails.test.yml"
    assert test_file.exists() and (export / "scrape-fails.rules.yml").exists()
    _promtool_passes(test_file)
    assert 'up{instance=' in test_file.read_text() and "exp_alerts: []" in test_file.read_text()
    # ... and it is a real test: claiming the alert at the injection itself fails.
    broken = test_file.read_text().replace("exp_alerts: []", "exp_alerts: [{exp_labels: {severity: critical}}]")
    test_file.write_text(broken)
    failed = subprocess.run([shutil.which("promtool") or "/usr/bin/promtool", "test", "rules", str(test_file)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode != 0


def test_sweep_finds_high_error_rate_above_its_threshold_only(env: Env, tmp_path: Path) -> None:
    wait_quiet(env.stack.prometheus_url)
    # `within` leaves room above the bound: one of its terms is the request gap Prometheus observes, which
    # grows on a busy machine; the sweep's verdicts, not the timing, are what this test is about.
    expect = [{"alert": "HighErrorRate", "labels": {"job": "demo-api"}, "within": "25s"}]
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill("errors", error_fault(env.target, TOKEN), expect)])
    html, export = tmp_path / "sweep.html", tmp_path / "promtool"
    # From the full outage down: each step waits for the last one's errors to leave the 30 s window.
    result = run_cli("drill", "--config", str(path), "--sweep", "probability=1.0,0.25,0.02,0.01",
                     "--report-json", "-", "--report-html", str(html), "--export-promtool", str(export), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    _no_faults(env)
    report = _report(result)
    (env.reports / "sweep.json").write_text(json.dumps(report))
    [row] = report["alerts"]
    fired = {s["value"]: s["fired"] for s in row["steps"]}
    # HighErrorRate: more than 5% of requests answer 5xx. Below that it must stay quiet; above, fire.
    assert fired == {0.01: False, 0.02: False, 0.25: True, 1.0: True}, row
    assert [s["predicted_to_fire"] for s in row["steps"]] == [True, True, False, False]
    assert result.stderr.count("for the last step's fault to leave the rules' range windows") >= 2
    assert row["smallest_caught"] == 0.25
    for step in report["steps"]:
        [drill] = step["drills"]
        [alert] = drill["alerts"]
        assert drill["intensity"] == {"probability": step["value"]}
        if step["value"] >= 0.25:
            assert alert["bound_kind"] == "white-box"
            terms = {t["term"] for t in alert["bound_terms"]}
            assert {"request gap", "scrape", "second scrape for a range", "ratio window fill", "evaluation",
                    "for"} <= terms
            _check_inside_bounds(f"white-box HighErrorRate rate()[30s], p={step['value']:g}", alert)
        else:
            assert "is not above the rule's ratio threshold 0.05" in alert["bound_unreachable"]
    assert "smallest fault caught: probability=0.25" in result.stdout
    page = html.read_text()
    assert "Sensitivity sweep over probability" in page and "did not fire (bound: cannot fire)" in page
    assert page.count("<svg") == 4
    # The steps that fired replay under promtool: the ratio over rate()[30s] from the stored samples.
    assert sorted(p.name for p in export.iterdir()) == ["probability-0.25", "probability-1"]
    for step_dir in export.iterdir():
        _promtool_passes(step_dir / "errors.test.yml")


def _promtool_passes(test_file: Path) -> None:
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    checked = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True,
                             timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr + test_file.read_text()


def test_ledger_lists_never_drilled_and_stale_alerts(env: Env, tmp_path: Path) -> None:
    # 200 days ago: stale at the default 90d, fresh at --max-age 365d (durations stop at 365d).
    injected_at = time.time() - 200 * 86400
    old = {"drills": [{"name": "old", "passed": True, "error": None, "fault": {}, "injected_at": injected_at,
                       "alerts": [{"alert": "HighResponseTime", "passed": True}]}]}
    (env.reports / "old.json").write_text(json.dumps(old))
    result = run_cli("drill", "ledger", "--rules", str(RULES), "--reports", str(env.reports))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:-1]}
    assert lines["ProbeSlow"].endswith("never drilled")
    assert lines["HighResponseTime"].endswith("not drilled in 90d")
    for drilled in ("ProbeFailing", "ServiceDown", "HighErrorRate"):
        assert lines[drilled].endswith("ok"), result.stdout
    assert "failed" in lines["HighErrorRate"] or "passed" in lines["HighErrorRate"]
    as_json = json.loads(run_cli("drill", "ledger", "--rules", str(RULES), "--reports", str(env.reports),
                                 "--format", "json", "--max-age", "365d").stdout)
    statuses = {a["alert"]: a["status"] for a in as_json["alerts"]}
    assert statuses["HighResponseTime"] == "ok" and statuses["ProbeSlow"] == "never drilled"
