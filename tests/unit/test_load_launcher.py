"""The launcher's bounds: a Locust that never ends is terminated, one that ignores SIGTERM is killed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from probes.load import launcher
from probes.load.launcher import LocustRun

# Stands in for a Locust master stuck in a CPU loop: it ignores SIGTERM and never exits by itself.
STUCK = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"]


def test_terminate_escalates_to_kill() -> None:
    proc = subprocess.Popen(STUCK)
    time.sleep(0.3)  # let it install its handler
    started = time.monotonic()
    launcher._terminate([proc], grace=0.5)
    assert proc.returncode == -9
    assert time.monotonic() - started < 5


def test_run_past_its_bound_is_stopped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(launcher, "STARTUP_ALLOWANCE", 0.0)
    monkeypatch.setattr(launcher, "KILL_GRACE", 0.5)
    monkeypatch.setattr(launcher, "TERM_GRACE", 0.5)
    monkeypatch.setattr(launcher, "leader_argv", lambda run, master_port=None: STUCK)
    started = time.monotonic()
    outcome = launcher.launch(LocustRun(role="standalone", scenario=tmp_path / "s.py", run_time=1.0))
    assert outcome.timed_out and not outcome.interrupted
    assert outcome.master_returncode == -9
    assert time.monotonic() - started < 8
