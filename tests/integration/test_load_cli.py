"""`probe-agent load` end to end: real short Locust runs against the real demo target (`probe-agent target`).

Every run is bounded (2-4 s of load, a handful of users, loopback only), and every test checks that no
Locust process it caused is left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.load import Target, demo_target, leftover_processes, run_marker, sample_value, scrape
from tests.support.processes import cli, run_cli, started, wait_until

REPO = Path(__file__).resolve().parents[2]
STATS_KEYS = {"requests", "failures", "rps", "error_rate", "avg_ms", "p50_ms", "p95_ms", "p99_ms"}
REPORT_KEYS = {"passed", "interrupted", "thresholds", "stats", "by_name", "scenario", "host", "region", "users",
               "duration_seconds"}


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with demo_target() as running:
        yield running


@pytest.fixture
def marker() -> Iterator[dict[str, str]]:
    env = run_marker()
    yield env
    # Whatever the test did, nothing it started may outlive it.
    wait_until(lambda: not leftover_processes(env), timeout=15, what="Locust processes to exit")


def load(marker: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_cli("load", *args, timeout=timeout, env=marker)


def assert_clean_failure(done: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert message in done.stderr


def test_pass_writes_every_report(target: Target, marker: dict[str, str], tmp_path: Path) -> None:
    report, junit, html = tmp_path / "out" / "load.json", tmp_path / "junit.xml", tmp_path / "locust.html"
    done = load(
        marker, "--scenario", "search", "--host", target.url, "--users", "4", "--run-time", "2s",
        "--region", "ci-test",
        "--threshold", "p95<2s", "--threshold", "error_rate<1%", "--threshold", "rps>5",
        "--threshold", "search:p99<3s", "--threshold", "item:error_rate<1%",
        "--report-json", str(report), "--junit", str(junit), "--html", str(html),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "probe-agent load: PASSED" in done.stdout
    doc = json.loads(report.read_text())
    assert set(doc) == REPORT_KEYS
    assert doc["passed"] is True
    assert (doc["scenario"], doc["host"], doc["region"], doc["users"]) == ("search", target.url, "ci-test", 4)
    assert 1.5 <= doc["duration_seconds"] <= 3.5
    stats = doc["stats"]
    assert set(stats) == STATS_KEYS
    assert stats["requests"] > 50 and stats["failures"] == 0 and stats["error_rate"] == 0
    assert stats["rps"] == pytest.approx(stats["requests"] / doc["duration_seconds"], rel=0.35)
    assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] < 2000
    # Requests are grouped by endpoint name, not by URL (every query is a different URL).
    assert {"search", "search_filtered", "search_page", "item", "categories"} <= set(doc["by_name"])
    assert all(set(entry) == STATS_KEYS for entry in doc["by_name"].values())
    assert sum(entry["requests"] for entry in doc["by_name"].values()) == stats["requests"]
    assert [t["expr"] for t in doc["thresholds"]] == [
        "p95<2s", "error_rate<1%", "rps>5", "search:p99<3s", "item:error_rate<1%"]
    assert all(t["passed"] and t["observed"] is not None for t in doc["thresholds"])
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert {case.get("name") for case in suite.iter("testcase")} >= {"p95<2s", "search:p99<3s"}
    assert "<html" in html.read_text().lower()


def test_breach_exits_1_and_names_it(target: Target, marker: dict[str, str], tmp_path: Path) -> None:
    report, junit = tmp_path / "load.json", tmp_path / "junit.xml"
    target.add_fault({"type": "error", "status": 503, "probability": 1.0, "match": {"path": "^/api/search"},
                      "ttl": "1m"})
    try:
        done = load(
            marker, "--scenario", "search", "--host", target.url, "--users", "3", "--run-time", "2s",
            "--threshold", "search:error_rate<1%", "--threshold", "health:error_rate<1%",
            "--threshold", "rps>100000", "--report-json", str(report), "--junit", str(junit),
        )  # fmt: skip
    finally:
        target.clear_faults()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "probe-agent load: FAILED" in done.stdout
    doc = json.loads(report.read_text())
    verdicts = {t["expr"]: t for t in doc["thresholds"]}
    assert verdicts["search:error_rate<1%"] == {"expr": "search:error_rate<1%", "observed": 100.0, "passed": False}
    assert verdicts["health:error_rate<1%"]["passed"] is True
    assert verdicts["rps>100000"]["passed"] is False and 0 < verdicts["rps>100000"]["observed"] < 100000
    assert doc["passed"] is False and doc["by_name"]["search"]["error_rate"] == 1.0
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scenario", "search", "--host", "URL", "--threshold", "p95<fast"), "invalid threshold 'p95<fast'"),
        (("--scenario", "search", "--host", "URL", "--threshold", "error_rate<1"), "percentage"),
        (("--scenario", "no-such-scenario", "--host", "URL"), "unknown scenario"),
        (("--scenario", "search", "--host", "localhost:8000"), "not an http(s) URL"),
        (("--scenario", "search", "--host", "URL", "--workers", "2", "--worker", "--master-host", "h"), "--workers"),
    ],
)
def test_bad_invocation_exits_2(target: Target, marker: dict[str, str], args: tuple[str, ...], message: str) -> None:
    done = load(marker, *(target.url if arg == "URL" else arg for arg in args), timeout=30)
    assert_clean_failure(done, 2, message)


def test_refused_port_breaches_error_rate(marker: dict[str, str], tmp_path: Path) -> None:
    from probes.ports import free_port

    report = tmp_path / "load.json"
    done = load(marker, "--scenario", "search", "--host", f"http://127.0.0.1:{free_port()}", "--users", "2",
                "--run-time", "2s", "--report-json", str(report))
    # Requests were attempted and all failed: the (default) error_rate threshold breaches -> 1, not 3.
    assert done.returncode == 1, done.stdout + done.stderr
    doc = json.loads(report.read_text())
    assert doc["thresholds"] == [{"expr": "error_rate<1%", "observed": 100.0, "passed": False}]
    assert doc["stats"]["requests"] == doc["stats"]["failures"] > 0


def test_abort_on_fail_stops_early(marker: dict[str, str], tmp_path: Path) -> None:
    from probes.ports import free_port

    started_at = time.monotonic()
    done = load(marker, "--scenario", "health", "--host", f"http://127.0.0.1:{free_port()}", "--users", "2",
                "--run-time", "60s", "--threshold", "error_rate<5%", "--abort-on-fail", "--abort-grace", "1s")
    assert done.returncode == 1, done.stdout + done.stderr
    assert time.monotonic() - started_at < 30
    assert "aborted early: error_rate<5% breached for 1s" in done.stdout


def test_no_requests_exits_3(target: Target, marker: dict[str, str], tmp_path: Path) -> None:
    idle = tmp_path / "idle.py"
    idle.write_text(
        "from locust import User, constant, task\n\n\n"
        "class Idle(User):\n    wait_time = constant(0.2)\n\n    @task\n    def nothing(self):\n        pass\n"
    )
    report = tmp_path / "load.json"
    done = load(marker, "--scenario", str(idle), "--host", target.url, "--users", "1", "--run-time", "1s",
                "--report-json", str(report))
    assert_clean_failure(done, 3, "no requests were made")
    assert json.loads(report.read_text())["passed"] is False


def test_two_workers_aggregate(target: Target, marker: dict[str, str], tmp_path: Path) -> None:
    report = tmp_path / "load.json"
    done = load(marker, "--scenario", "search", "--host", target.url, "--users", "4", "--run-time", "2s",
                "--workers", "2", "--threshold", "error_rate<1%", "--report-json", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if "workers reported requests" in line)
    shares = [int(part) for part in line.rpartition(":")[2].split(",")]
    assert len(shares) == 2 and all(share > 0 for share in shares), line
    doc = json.loads(report.read_text())
    # The master's aggregate is the sum of what both workers reported.
    assert doc["stats"]["requests"] == sum(shares)
    assert doc["stats"]["failures"] == 0


def test_metrics_scraped_during_run(target: Target, marker: dict[str, str]) -> None:
    command = cli("load", "--scenario", "search", "--host", target.url, "--users", "2", "--run-time", "4s",
                  "--region", "eu-test", "--metrics-listen", "127.0.0.1:0")
    with started(command, expect=["load metrics"], env=marker) as run:
        url = run.urls["load metrics"]
        labels = {"scenario": "search", "region": "eu-test", "name": "search"}
        counts: list[float] = []

        def counted() -> bool:
            value = sample_value(scrape(url), "probe_load_requests_total", labels)
            if value:
                counts.append(value)
            return bool(value)

        wait_until(counted, timeout=10, what="search requests in the metrics")
        time.sleep(1.0)
        text = scrape(url)
        later = sample_value(text, "probe_load_requests_total", labels)
        assert later is not None and later > counts[0]
        assert sample_value(text, "probe_load_users", {"scenario": "search", "region": "eu-test"}) == 2
        assert sample_value(text, "probe_load_request_duration_seconds_count", labels) == later
        assert 'probe_load_failures_total{method="GET",name="search",region="eu-test",scenario="search"}' in text
        assert run.proc.wait(timeout=30) == 0, run.text()


def test_scenario_runs_with_plain_locust(target: Target, marker: dict[str, str]) -> None:
    """The bundled scenarios are plain locustfiles: Locust runs them without probe-agent."""
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "scenarios/search.py", "--headless", "-u", "2", "-r", "2",
         "-t", "2s", "--host", target.url, "--only-summary", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=60, env={**os.environ, **marker},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    entries = {entry["name"]: entry for entry in json.loads(done.stdout)}
    assert entries["search"]["num_requests"] > 0 and entries["search"]["num_failures"] == 0


def test_master_and_remote_worker(target: Target, marker: dict[str, str], tmp_path: Path) -> None:
    """`--master --expect-workers N` / `--worker --master-host H`: the shape of a run over several machines.

    The worker is told nothing about the rate: it learns it from the master, so --rate holds overall.
    """
    from probes.ports import free_port

    port, report = free_port(), tmp_path / "load.json"
    master = subprocess.Popen(
        cli("load", "--master", "--expect-workers", "1", "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(port), "--scenario", "search", "--host", target.url, "--users", "3",
            "--run-time", "2s", "--rate", "15", "--report-json", str(report)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **marker},
    )  # fmt: skip
    try:
        worker = run_cli("load", "--worker", "--master-host", "127.0.0.1", "--master-port", str(port),
                         "--scenario", "search", timeout=60, env=marker)
        output, _ = master.communicate(timeout=60)
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()
    assert master.returncode == 0, output
    assert worker.returncode == 0, worker.stdout + worker.stderr
    doc = json.loads(report.read_text())
    assert doc["stats"]["requests"] > 0 and doc["stats"]["failures"] == 0
    assert 8 <= doc["stats"]["rps"] <= 25, doc["stats"]


def test_sigterm_stops_gracefully_with_reports(target: Target, marker: dict[str, str], tmp_path: Path) -> None:
    """A cancelled CI job: SIGTERM to probe-agent alone stops its master and workers, reports still come."""
    report = tmp_path / "load.json"
    command = cli("load", "--scenario", "health", "--host", target.url, "--users", "2", "--run-time", "60s",
                  "--workers", "1", "--metrics-listen", "127.0.0.1:0", "--report-json", str(report))
    with started(command, expect=["load metrics"], env=marker) as run:
        url = run.urls["load metrics"]
        wait_until(lambda: (sample_value(scrape(url), "probe_load_requests_total", {"name": "health"}) or 0) > 0,
                   timeout=15, what="requests from the worker")
        os.kill(run.proc.pid, signal.SIGTERM)
        assert run.proc.wait(timeout=20) == 128 + signal.SIGTERM, run.text()
    assert "interrupted" in run.text()
    doc = json.loads(report.read_text())
    assert doc["stats"]["requests"] > 0
    assert doc["interrupted"] is True and doc["passed"] is False


def test_ctrl_c_reports_an_interrupted_run_without_a_traceback(target: Target, marker: dict[str, str],
                                                              tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group: probe-agent and the Locust processes alike."""
    report, junit, page = tmp_path / "load.json", tmp_path / "junit.xml", tmp_path / "load.html"
    command = cli("load", "--scenario", "health", "--host", target.url, "--users", "2", "--run-time", "60s",
                  "--metrics-listen", "127.0.0.1:0", "--report-json", str(report), "--junit", str(junit),
                  "--report-html", str(page))
    with started(command, expect=["load metrics"], env=marker) as run:
        url = run.urls["load metrics"]
        wait_until(lambda: (sample_value(scrape(url), "probe_load_requests_total", {"name": "health"}) or 0) > 0,
                   timeout=15, what="the first requests")
        os.killpg(run.proc.pid, signal.SIGINT)
        assert run.proc.wait(timeout=30) == 130, run.text()
    output = run.text()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "probe-agent load: INTERRUPTED after" in output and "PASSED" not in output
    doc = json.loads(report.read_text())
    assert doc["interrupted"] is True and doc["passed"] is False and doc["stats"]["requests"] > 0
    assert doc["duration_seconds"] < 30
    assert 'type="interrupted"' in junit.read_text()
    assert "INTERRUPTED" in page.read_text()
