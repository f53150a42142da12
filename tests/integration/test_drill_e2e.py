"""`probe-agent drill` end to end: real Prometheus and Alertmanager, the real demo target, agent and proxy.

One stack per module: Prometheus scrapes the demo target, an agent probing it, and the target's /metrics
through the fault proxy; the bundled rules run with `for: 2s` (see `local_stack.shorten_rules`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from probes.drills.local_stack import LocalStack
from probes.ports import free_port
from tests.support.processes import cli, run_cli, stop, wait_until
from tests.support.prom import demo_services, error_fault, faults, local_stack, wait_quiet, write_drills

TOKEN = "drill-test-token"
PROXY_TOKEN = "proxy-test-token"
# Timing noise on a shared 2-core machine: polling (200 ms), process scheduling, HTTP round trips.
SLACK = 2.5

AGENT_CONFIG = """
agent: {{region: test-region, id: drill-agent}}
defaults: {{interval: 1s, timeout: 800ms}}
probes:
  - {{name: search-canary, type: http, url: "{target}/api/search?q=laptop"}}
"""


@dataclass
class Env:
    target: str
    agent: str
    proxy: str
    proxy_control: str
    stack: LocalStack
    receiver_port: int
    workdir: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("drill-e2e")
    with demo_services(workdir, AGENT_CONFIG, TOKEN, PROXY_TOKEN) as services:
        receiver_port = free_port()
        with local_stack(workdir, services.scrape_jobs(), f"http://127.0.0.1:{receiver_port}/alerts") as stack:
            time.sleep(2)  # a few samples of normal traffic before any fault: rates need a baseline
            yield Env(services.target, services.agent, services.proxy, services.proxy_control, stack,
                      receiver_port, workdir)


def _drill(env: Env, name: str, fault: dict[str, Any], expect: list[dict[str, Any]],
           resolve_within: str = "40s") -> dict[str, Any]:
    return {"name": name, "fault": fault, "expect": expect, "resolve_within": resolve_within}


def _run(env: Env, path: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cli("drill", "--config", str(path), *extra, timeout=timeout)


def _no_faults(env: Env) -> None:
    assert faults(env.target, TOKEN) == []
    assert faults(env.proxy_control, PROXY_TOKEN) == []


def test_passing_drill_notifies_resolves_and_writes_reports(env: Env, tmp_path: Path) -> None:
    wait_quiet(env.stack.prometheus_url)
    fault = error_fault(env.target, TOKEN)
    path = write_drills(tmp_path / "drills.yaml", env.stack, [_drill(env, "search-errors", fault, [
        {"alert": "HighErrorRate", "labels": {"job": "demo-api", "severity": "critical"}, "within": "20s",
         "notified": True}])], receiver_port=env.receiver_port)
    report_json, junit, html = tmp_path / "r.json", tmp_path / "junit.xml", tmp_path / "r.html"
    result = _run(env, path, "--report-json", str(report_json), "--junit", str(junit), "--report-html", str(html))
    assert result.returncode == 0, result.stdout + result.stderr
    _no_faults(env)

    report = json.loads(report_json.read_text())
    assert set(report) >= {"drills"}
    [drill] = report["drills"]
    assert set(drill) >= {"name", "passed", "error", "fault", "alerts"}
    assert drill["name"] == "search-errors" and drill["passed"] is True and drill["error"] is None
    assert drill["fault"]["injector"] == "target" and "token" not in drill["fault"]
    [alert] = drill["alerts"]
    assert set(alert) >= {"alert", "passed", "time_to_pending_seconds", "time_to_firing_seconds",
                          "time_to_notified_seconds", "time_to_resolved_seconds", "bound_seconds"}
    assert alert["alert"] == "HighErrorRate" and alert["passed"] is True
    pending, firing, notified = (alert[f"time_to_{k}_seconds"] for k in ("pending", "firing", "notified"))
    assert 0 < pending <= firing
    # The receiver records a notification the moment it arrives; firing is seen at the next poll.
    assert notified >= firing - 1.0
    assert alert["time_to_resolved_seconds"] > 0
    # The measured time lies in the theoretical window [for, bound], plus polling and scheduling slack.
    bound = alert["bound_seconds"]
    print(f"timing HighErrorRate: pending {pending} firing {firing} notified {notified} "
          f"resolved {alert['time_to_resolved_seconds']} bound [{alert['bound_min_seconds']}, {bound}] "
          f"notified bound {alert['bound_notified_seconds']}")
    terms = {t["term"]: t["seconds"] for t in alert["bound_terms"] if t["stage"] == "firing"}
    # The next request, two scrapes for a rate, the 10 s window filling past 5%, one evaluation, for.
    assert set(terms) == {"request gap", "scrape", "second scrape for a range", "ratio window fill", "evaluation",
                          "for"}
    assert terms["ratio window fill"] >= 0.05 * 10
    assert bound == pytest.approx(sum(terms.values()), abs=0.002)
    assert alert["bound_min_seconds"] - 0.5 <= firing <= bound + SLACK, alert
    assert notified <= alert["bound_notified_seconds"] + SLACK, alert

    suite = ET.parse(junit).getroot()
    cases = suite.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["HighErrorRate"]
    assert cases[0].find("failure") is None
    page = html.read_text()
    assert "<svg" in page and "HighErrorRate" in page and "bound" in page and "reverted" in page
    assert "HighErrorRate" in result.stdout and "1/1 drills passed" in result.stdout
    assert "warning" not in result.stderr, result.stderr  # Prometheus -> Alertmanager -> receiver is wired


def test_drill_whose_alert_never_fires_fails_and_reverts(env: Env, tmp_path: Path) -> None:
    wait_quiet(env.stack.prometheus_url)
    # Errors on a path nobody calls: HighErrorRate cannot fire.
    fault = error_fault(env.target, TOKEN, path="^/nobody-calls-this")
    path = write_drills(tmp_path / "d.yaml", env.stack, [
        _drill(env, "quiet", fault, [{"alert": "HighErrorRate", "within": "7s"}]),
        _drill(env, "not-selected", error_fault(env.target, TOKEN), [{"alert": "HighErrorRate"}]),
    ])
    junit = tmp_path / "junit.xml"
    result = _run(env, path, "--drill", "quiet", "--junit", str(junit), "--report-json", "-")
    assert result.returncode == 1, result.stdout + result.stderr
    _no_faults(env)
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert [d["name"] for d in report["drills"]] == ["quiet"]
    [alert] = report["drills"][0]["alerts"]
    assert alert["passed"] is False and alert["time_to_firing_seconds"] is None
    assert "did not fire within 7s" in alert["message"]
    assert ET.parse(junit).getroot().find(".//testcase/failure") is not None


def test_probe_failing_black_box_drill(env: Env, tmp_path: Path) -> None:
    wait_quiet(env.stack.prometheus_url)
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill(env, "probe-fails", error_fault(env.target, TOKEN), [
        {"alert": "ProbeFailing", "labels": {"probe": "search-canary", "region": "test-region"}, "within": "20s",
         "notified": True}])], receiver_port=env.receiver_port)
    path.write_text(path.read_text() + f"agent_config: {env.workdir / 'agent.yaml'}\n")
    result = _run(env, path, "--report-json", "-")
    assert result.returncode == 0, result.stdout + result.stderr
    _no_faults(env)
    report = json.loads(result.stdout[result.stdout.index("{"):])
    [alert] = report["drills"][0]["alerts"]
    print(f"timing ProbeFailing: firing {alert['time_to_firing_seconds']} bound {alert['bound_seconds']}")
    # The probe runs every 1 s: its next run must finish (up to 0.8 s + 0.5 s margin) before the value changes.
    terms = {t["term"]: t["seconds"] for t in alert["bound_terms"]}
    assert terms["probe interval"] == 1 and terms["probe duration"] == pytest.approx(1.3)
    assert alert["time_to_firing_seconds"] <= alert["bound_seconds"] + SLACK, alert


def test_proxy_injector_against_a_real_upstream(env: Env, tmp_path: Path) -> None:
    wait_quiet(env.stack.prometheus_url)
    # Prometheus scrapes the target through the proxy: failing /metrics there makes `up` 0 for that job.
    fault = error_fault(env.proxy_control, PROXY_TOKEN, path="^/metrics", injector="proxy")
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill(env, "scrape-fails", fault, [
        {"alert": "ServiceDown", "labels": {"job": "via-proxy"}, "within": "20s", "notified": True}])],
        receiver_port=env.receiver_port)
    result = _run(env, path, "--report-json", "-")
    assert result.returncode == 0, result.stdout + result.stderr
    _no_faults(env)
    report = json.loads(result.stdout[result.stdout.index("{"):])
    [alert] = report["drills"][0]["alerts"]
    print(f"timing ServiceDown: firing {alert['time_to_firing_seconds']} bound {alert['bound_seconds']}")
    assert alert["bound_seconds"] == pytest.approx(1 + 1 + 2)  # one scrape + one evaluation + for
    assert alert["time_to_firing_seconds"] <= alert["bound_seconds"] + SLACK, alert


def test_command_injector_drill(env: Env, tmp_path: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    wait_quiet(env.stack.prometheus_url)
    auth = f"-H 'Authorization: Bearer {PROXY_TOKEN}'"
    # $FAULT_TTL_SECONDS is the shell's (set by the injector); ${VAR} would be interpolated at load.
    body = '{"type": "error", "status": 503, "match": {"path": "^/metrics"}, "ttl": \'"$FAULT_TTL_SECONDS"\'}'
    fault = {"injector": "command", "timeout": "10s", "ttl": "1m",
             "inject": f"{curl} -sf -X POST {auth} -H 'Content-Type: application/json' -d '{body}' "
                       f"{env.proxy_control}/-/faults",
             "revert": f"{curl} -sf -X DELETE {auth} {env.proxy_control}/-/faults"}
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill(env, "by-command", fault, [
        {"alert": "ServiceDown", "labels": {"job": "via-proxy"}, "within": "20s"}])])
    result = _run(env, path, "--report-json", "-")
    assert result.returncode == 0, result.stdout + result.stderr
    _no_faults(env)


def _long_drill(env: Env, tmp_path: Path, ttl: str) -> Path:
    # Never fires (nobody calls the path), so the drill waits until it is signalled or killed.
    wait_quiet(env.stack.prometheus_url)  # the baseline check must pass for anything to be injected
    fault = error_fault(env.target, TOKEN, path="^/nobody-calls-this", ttl=ttl)
    return write_drills(tmp_path / "d.yaml", env.stack, [_drill(env, "long", fault, [
        {"alert": "HighErrorRate", "within": "60s"}])])


def test_sigint_mid_drill_reverts_before_exit(env: Env, tmp_path: Path) -> None:
    path = _long_drill(env, tmp_path, ttl="2m")
    proc = subprocess.Popen(cli("drill", "--config", str(path)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            start_new_session=True)
    try:
        wait_until(lambda: len(faults(env.target, TOKEN)) == 1, 20, what="the fault to be injected")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        stop(proc)  # type: ignore[arg-type]
    assert faults(env.target, TOKEN) == [], out
    assert proc.returncode == 130, out
    assert "SIGINT" in out and "fault reverted" in out


def test_sigterm_mid_drill_reverts_before_exit(env: Env, tmp_path: Path) -> None:
    path = _long_drill(env, tmp_path, ttl="2m")
    proc = subprocess.Popen(cli("drill", "--config", str(path)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_until(lambda: len(faults(env.target, TOKEN)) == 1, 20, what="the fault to be injected")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        stop(proc)  # type: ignore[arg-type]
    assert faults(env.target, TOKEN) == [], out
    assert proc.returncode == 143, out


def test_sigkill_leaves_the_fault_only_until_its_ttl(env: Env, tmp_path: Path) -> None:
    path = _long_drill(env, tmp_path, ttl="3s")
    proc = subprocess.Popen(cli("drill", "--config", str(path)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: len(faults(env.target, TOKEN)) == 1, 20, what="the fault to be injected")
        killed = time.monotonic()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        stop(proc)  # type: ignore[arg-type]
    assert len(faults(env.target, TOKEN)) == 1  # nobody reverted it ...
    wait_until(lambda: faults(env.target, TOKEN) == [], 8, what="the fault to expire")  # ... its TTL did
    assert time.monotonic() - killed <= 3 + 1.5


def test_prometheus_unreachable_exits_3_without_injecting(env: Env, tmp_path: Path) -> None:
    path = write_drills(tmp_path / "d.yaml", None, [_drill(env, "x", error_fault(env.target, TOKEN), [
        {"alert": "HighErrorRate"}])], prometheus=f"http://127.0.0.1:{free_port()}")
    result = _run(env, path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Prometheus" in result.stderr and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    _no_faults(env)


def test_alertmanager_unreachable_exits_3_without_injecting(env: Env, tmp_path: Path) -> None:
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill(env, "x", error_fault(env.target, TOKEN), [
        {"alert": "HighErrorRate"}])])
    spec = path.read_text().replace(str(env.stack.alertmanager_url), f"http://127.0.0.1:{free_port()}")
    path.write_text(spec)
    result = _run(env, path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Alertmanager" in result.stderr and "unreachable" in result.stderr
    _no_faults(env)


@pytest.mark.parametrize(("case", "message"), [
    ("unknown_alert", "no alerting rule 'NoSuchAlert' in Prometheus"),
    ("unknown_injector", "unknown injector 'chaos-monkey'"),
    ("missing_token", "token: Field required"),
    ("unset_token_variable", "environment variable DRILL_TEST_UNSET_TOKEN is not set"),
    ("wrong_token", "rejected the token (403)"),
    ("contradicting_labels", "no rule 'HighErrorRate' has these labels"),
])
def test_invalid_drills_exit_2_before_injecting(env: Env, tmp_path: Path, case: str, message: str) -> None:
    fault = error_fault(env.target, TOKEN)
    expect: dict[str, Any] = {"alert": "HighErrorRate"}
    if case == "unknown_alert":
        expect["alert"] = "NoSuchAlert"
    elif case == "unknown_injector":
        fault["injector"] = "chaos-monkey"
    elif case == "missing_token":
        del fault["token"]
    elif case == "unset_token_variable":
        fault["token"] = "${DRILL_TEST_UNSET_TOKEN}"
    elif case == "wrong_token":
        fault["token"] = "not-the-token"
    elif case == "contradicting_labels":
        expect["labels"] = {"severity": "info"}
    path = write_drills(tmp_path / "d.yaml", env.stack, [_drill(env, "bad", fault, [expect])])
    result = _run(env, path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if case not in ("wrong_token",):
        assert f"{path}:" in result.stderr  # FILE:LINE: field.path: message
    _no_faults(env)
