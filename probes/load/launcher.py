"""Start Locust headless in child processes and bring them all back, whatever happens.

Roles: `standalone` (one process), `local` (a master plus N worker processes on this machine, one per
core), `master` (waits for workers from other machines), `worker` (joins a master elsewhere).
Every child runs `python -m probes.load.locust_main`, so only children ever import Locust.

Bounds: Locust stops itself at --run-time; if it doesn't within run-time plus a grace, it gets SIGTERM
(Locust then still writes its stats and HTML), then SIGKILL. Children stay in our process group and
are asked to die with us (PR_SET_PDEATHSIG), so neither a test runner's killpg nor our own crash
leaves a load generator behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal

from probes.load.plugin_config import USER_RATE_ARG, PluginConfig
from probes.ports import free_port
from probes.stop_signals import die_with_parent

Role = Literal["standalone", "local", "master", "worker"]

STARTUP_ALLOWANCE = 20.0
"""Seconds for interpreters to start and import Locust and the scenario."""
KILL_GRACE = 15.0
"""Seconds past the expected end before the master is terminated."""
TERM_GRACE = 10.0
"""Seconds between SIGTERM and SIGKILL."""
LOCAL_WORKERS_MAX_WAIT = 30


@dataclass
class LocustRun:
    role: Role
    scenario: Path
    host: str | None = None
    users: int = 1
    spawn_rate: float = 1.0
    run_time: float = 10.0
    rate: float | None = None
    workers: int = 0
    expect_workers: int = 0
    expect_workers_max_wait: int = 60
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 5557
    master_host: str = "127.0.0.1"
    master_port: int = 5557
    html: Path | None = None
    stop_timeout: float = 0.0
    extra_args: list[str] = field(default_factory=list)
    plugin: PluginConfig | None = None

    @property
    def run_time_arg(self) -> str:
        # Locust's --run-time takes whole seconds.
        return f"{max(1, math.ceil(self.run_time))}s"

    def deadline_seconds(self) -> float | None:
        """How long the whole run may take before we terminate it; None for a worker (its master decides)."""
        if self.role == "worker":
            return None
        wait = 0.0
        if self.role == "local":
            wait = LOCAL_WORKERS_MAX_WAIT
        elif self.role == "master":
            wait = self.expect_workers_max_wait
        return STARTUP_ALLOWANCE + wait + max(1, math.ceil(self.run_time)) + self.stop_timeout + KILL_GRACE


@dataclass
class Outcome:
    master_returncode: int | None
    worker_returncodes: list[int | None]
    timed_out: bool = False
    interrupted: bool = False
    signal: int | None = None
    """The signal that interrupted the run (SIGINT for Ctrl-C, SIGTERM for a cancelled job)."""


def _base(run: LocustRun) -> list[str]:
    return [sys.executable, "-m", "probes.load.locust_main", "-f", str(run.scenario)]


def leader_argv(run: LocustRun, *, master_port: int | None = None) -> list[str]:
    """The standalone process, or the master (local or for remote workers)."""
    argv = [
        *_base(run),
        "--headless",
        "--users", str(run.users),
        "--spawn-rate", f"{run.spawn_rate:g}",
        "--run-time", run.run_time_arg,
        "--stop-timeout", f"{run.stop_timeout:g}",
    ]  # fmt: skip
    if run.host:
        argv += ["--host", run.host]
    if run.rate:
        argv += [USER_RATE_ARG, repr(run.rate / run.users)]
    if run.html is not None:
        argv += ["--html", str(run.html)]
    if run.role == "local":
        argv += [
            "--master", "--expect-workers", str(run.workers),
            "--expect-workers-max-wait", str(LOCAL_WORKERS_MAX_WAIT),
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
        ]  # fmt: skip
    elif run.role == "master":
        argv += [
            "--master", "--expect-workers", str(run.expect_workers),
            "--expect-workers-max-wait", str(run.expect_workers_max_wait),
            "--master-bind-host", run.master_bind_host, "--master-bind-port", str(run.master_bind_port),
        ]  # fmt: skip
    return [*argv, *run.extra_args]


def worker_argv(run: LocustRun, master_host: str, master_port: int) -> list[str]:
    return [
        *_base(run),
        "--worker", "--master-host", master_host, "--master-port", str(master_port),
        *run.extra_args,
    ]  # fmt: skip


def _child_setup() -> None:
    """In the child, before exec: Ctrl-C in a terminal signals the whole process group, and Locust would
    answer it with a KeyboardInterrupt traceback; we stop the children ourselves (SIGTERM, so that they
    still write their stats). And SIGTERM when the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


def child_env(run: LocustRun) -> dict[str, str]:
    env = dict(os.environ)
    # The child must import `probes` even from a source checkout that isn't installed.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if run.plugin is not None:
        env.update(run.plugin.to_env())
    return env


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, preexec_fn=_child_setup)


def _terminate(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


class _Interrupted:
    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum


@contextlib.contextmanager
def _catch_signals(flag: _Interrupted) -> Iterator[None]:
    """SIGTERM/SIGINT stop the children gracefully (they still write their stats) instead of killing us."""
    previous = {sig: signal.signal(sig, flag) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def launch(run: LocustRun, poll_interval: float = 0.1) -> Outcome:
    env = child_env(run)
    flag = _Interrupted()
    with _catch_signals(flag):
        if run.role == "worker":
            leader = _spawn(worker_argv(run, run.master_host, run.master_port), env)
            workers: list[subprocess.Popen[bytes]] = []
        else:
            port = free_port() if run.role == "local" else 0
            leader = _spawn(leader_argv(run, master_port=port), env)
            local = run.workers if run.role == "local" else 0
            workers = [_spawn(worker_argv(run, "127.0.0.1", port), env) for _ in range(local)]
        everyone = [leader, *workers]
        limit = run.deadline_seconds()
        deadline = time.monotonic() + limit if limit is not None else None
        timed_out = False
        try:
            while leader.poll() is None:
                if flag.signum is not None:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    timed_out = True
                    sys.stderr.write(f"probe-agent: the run exceeded its {limit:.0f}s bound; stopping it\n")
                    break
                # Local workers only exit after their master; one that dies early (a broken scenario)
                # would leave the master waiting for it.
                if any(w.poll() is not None for w in workers):
                    break
                time.sleep(poll_interval)
        finally:
            # Workers get Locust's quit message from their master; give them a moment before signals.
            _terminate([leader], grace=TERM_GRACE)
            with contextlib.suppress(subprocess.TimeoutExpired):
                for worker in workers:
                    worker.wait(3)
            _terminate(everyone, grace=TERM_GRACE)
    return Outcome(
        master_returncode=leader.returncode,
        worker_returncodes=[w.returncode for w in workers],
        timed_out=timed_out,
        interrupted=flag.signum is not None,
        signal=flag.signum,
    )
