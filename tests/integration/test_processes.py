"""`run --processes N`: one /metrics, status page and /api over N worker processes; a killed worker comes
back and its probes run again; a reload reaches every worker; bad counts are usage errors."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.agent.workers import worker_index
from tests.support.hostile import HostileServer
from tests.support.metrics import all_samples, scrape, value
from tests.support.processes import Started, cli, run_cli, started, wait_until

WORKERS = 3
HEADER = """agent: {{region: eu-west-1, id: agent-7}}
defaults: {{interval: 1s, timeout: 800ms}}
probes:
"""
SELF = ("probe_agent_workers", "probe_agent_workers_up", "probe_agent_worker_restarts")
"""What only a multi-process agent exports (about its workers)."""


def _names(prefix: str, per_worker: int) -> list[str]:
    """Probe names that give every worker `per_worker` probes (the split is a hash: pick names to fit)."""
    chosen: dict[int, list[str]] = {i: [] for i in range(WORKERS)}
    n = 0
    while any(len(v) < per_worker for v in chosen.values()):
        name = f"{prefix}{n}"
        bucket = chosen[worker_index(name, WORKERS)]
        if len(bucket) < per_worker:
            bucket.append(name)
        n += 1
    return sorted(name for names in chosen.values() for name in names)


PROBES = _names("probe-", 3)


def _config(url: str, names: list[str]) -> str:
    lines = [HEADER.format()]
    for i, name in enumerate(names):
        path = "/status/500" if i % 3 == 0 else "/ok"
        lines.append(f'  - {{name: {name}, type: http, url: "{url}{path}"}}\n')
    return "".join(lines)


def _series(text: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return sorted((name, tuple(sorted(labels.items()))) for name, labels, _ in all_samples(text)
                  if not name.startswith(SELF))


def _all_ran(url: str, names: list[str]) -> bool:
    text = scrape(url + "/metrics")
    return all((value(text, "probe_last_run_timestamp_seconds", probe=n) or 0) > 0 for n in names)


def _workers(parent: int) -> dict[int, int]:
    """Worker index -> pid, from the children's command lines (`--worker I/N`)."""
    found = {}
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"--worker" in argv:
            index = int(argv[argv.index(b"--worker") + 1].split(b"/")[0])
            found[index] = int(child)
    return found


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory, hostile: HostileServer) -> Iterator[tuple[Started, Path]]:
    path = tmp_path_factory.mktemp("processes") / "agent.yaml"
    path.write_text(_config(hostile.url, PROBES))
    cmd = cli("run", "--config", str(path), "--listen", "127.0.0.1:0", "--processes", str(WORKERS))
    with started(cmd, expect=["agent"], timeout=60) as proc:
        yield proc, path


def test_merged_metrics_equal_one_process_with_the_same_probes(
        multi: tuple[Started, Path], hostile: HostileServer) -> None:
    url = multi[0].urls["agent"]
    assert set(_workers(multi[0].proc.pid)) == set(range(WORKERS))
    with started(cli("run", "--config", str(multi[1]), "--listen", "127.0.0.1:0", "--processes", "1"),
                 expect=["agent"]) as single:
        one = single.urls["agent"]
        wait_until(lambda: _all_ran(one, PROBES) and _all_ran(url, PROBES), 20, what="every probe ran in both")
        single_text, multi_text = scrape(one + "/metrics"), scrape(url + "/metrics")
    single_series, multi_series = _series(single_text), _series(multi_text)
    assert len(multi_series) == len(set(multi_series)), "a series appears twice in the merged scrape"
    assert multi_series == single_series
    assert value(multi_text, "probe_agent_workers_up") == WORKERS
    promtool = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool") or "promtool"
    check = subprocess.run([promtool, "check", "metrics"], input=multi_text, capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0 and check.stdout == "" and check.stderr == "", check.stdout + check.stderr
    assert value(multi_text, "probe_agent_probes") == len(PROBES)
    assert value(multi_text, "probe_agent_info", region="eu-west-1", agent="agent-7") == 1
    assert value(multi_text, "probe_agent_config_reload_success") == 1
    # Every worker's runs are in the one histogram of schedule lag.
    runs = sum(v for name, _, v in all_samples(multi_text) if name == "probe_runs_total")
    assert value(multi_text, "probe_agent_schedule_lag_seconds_count") >= runs - len(PROBES)


def test_status_page_and_results_show_every_probe_once(multi: tuple[Started, Path]) -> None:
    url = multi[0].urls["agent"]
    wait_until(lambda: _all_ran(url, PROBES), 20, what="every probe ran")
    with urllib.request.urlopen(url + "/api/results", timeout=10) as resp:
        results = json.loads(resp.read())
    assert sorted(r["probe"] for r in results) == PROBES
    assert all(r["region"] == "eu-west-1" and r["agent"] == "agent-7" for r in results)
    assert {r["probe"]: r["success"] for r in results} == {n: i % 3 != 0 for i, n in enumerate(PROBES)}
    page = scrape(url + "/")
    assert all(f">{name}<" in page for name in PROBES)
    assert page.count("DOWN") == sum(1 for i in range(len(PROBES)) if i % 3 == 0)


def test_reload_reaches_every_worker(multi: tuple[Started, Path], hostile: HostileServer) -> None:
    proc, path = multi
    url = proc.urls["agent"]
    added = _names("added-", 1)
    path.write_text(_config(hostile.url, PROBES + added))
    request = urllib.request.Request(url + "/-/reload", method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert json.loads(resp.read())["status"] == "success"
    text = scrape(url + "/metrics")
    # A new probe's zeroed counters show at once, whichever worker took it.
    assert all(value(text, "probe_runs_total", probe=name, result="success") is not None for name in added)
    assert value(text, "probe_agent_probes") == len(PROBES) + len(added)

    # SIGHUP reloads too: back to the original probes.
    path.write_text(_config(hostile.url, PROBES))
    os.kill(proc.proc.pid, signal.SIGHUP)
    wait_until(lambda: value(scrape(url + "/metrics"), "probe_agent_probes") == len(PROBES), 15,
               what="SIGHUP reload in every worker")
    assert all(value(scrape(url + "/metrics"), "probe_runs_total", probe=n, result="success") is None for n in added)

    # A bad file: every worker keeps its probes, and the merged gauge says the reload failed.
    path.write_text(_config(hostile.url, PROBES) + "  - {name: broken, type: http}\n")
    request = urllib.request.Request(url + "/-/reload", method="POST")
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(request, timeout=30)
    assert failed.value.code == 500 and "url" in failed.value.read().decode()
    text = scrape(url + "/metrics")
    assert value(text, "probe_agent_config_reload_success") == 0
    assert value(text, "probe_agent_probes") == len(PROBES)
    path.write_text(_config(hostile.url, PROBES))


def test_a_killed_worker_is_restarted_and_scrapes_keep_answering(multi: tuple[Started, Path]) -> None:
    proc, _ = multi
    url = proc.urls["agent"]
    wait_until(lambda: _all_ran(url, PROBES), 20, what="every probe ran")
    victim_index, victim = sorted(_workers(proc.proc.pid).items())[1]
    victim_probes = [n for n in PROBES if worker_index(n, WORKERS) == victim_index]
    others = [n for n in PROBES if n not in victim_probes]
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    up_seen: set[float] = set()
    back_after = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = scrape(url + "/metrics")  # every scrape answers, during the outage too
        up = value(text, "probe_agent_workers_up")
        assert up is not None
        up_seen.add(up)
        if up == WORKERS - 1:
            # The dead worker's probes are left out, the others' are all there.
            assert all(value(text, "probe_success", probe=n) is not None for n in others)
            assert all(value(text, "probe_success", probe=n) is None for n in victim_probes)
        if up == WORKERS and value(text, "probe_agent_worker_restarts_total") == 1:
            back_after = time.time() - killed_at
            break
        time.sleep(0.1)
    assert WORKERS - 1 in up_seen, f"no scrape saw the worker gone: {up_seen}"
    # Restarted 0.2 s after it died; a new interpreter then needs 1-3 s of CPU on this shared machine.
    assert back_after is not None and back_after <= 8, f"worker back after {back_after}s"
    assert _workers(proc.proc.pid)[victim_index] != victim
    # Its probes run again in the new worker.
    wait_until(lambda: all((value(scrape(url + "/metrics"), "probe_last_run_timestamp_seconds", probe=n) or 0)
                           > killed_at for n in victim_probes), 10, what="the restarted worker's probes ran")


@pytest.mark.parametrize("count", ["0", "65", "-1", "x"])
def test_bad_process_counts_are_usage_errors(tmp_path: Path, count: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(HEADER.format() + '  - {name: a, type: http, url: "http://127.0.0.1:9/"}\n')
    done = run_cli("run", "--config", str(path), f"--processes={count}")
    assert done.returncode == 2
    assert "processes must be a whole number from 1 to 64, or auto" in done.stderr
    assert "Traceback" not in done.stderr


def test_agent_processes_in_the_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("agent:\n  processes: 100\nprobes: []\n")
    done = run_cli("check-config", str(path))
    assert done.returncode == 2
    assert f"{path}:2: agent.processes: processes must be a whole number from 1 to 64" in done.stderr


def test_workers_die_with_the_agent(tmp_path: Path, hostile: HostileServer) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(_config(hostile.url, PROBES[:2]))
    with started(cli("run", "--config", str(path), "--listen", "127.0.0.1:0", "--processes", "2"),
                 expect=["agent"], timeout=60) as proc:
        workers = list(_workers(proc.proc.pid).values())
        assert len(workers) == 2
        os.kill(proc.proc.pid, signal.SIGKILL)  # no chance to stop them itself
        try:
            wait_until(lambda: not any(_running(pid) for pid in workers), 10, what="the workers exiting with the agent")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.proc.pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
