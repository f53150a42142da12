"""`probe-agent load` invocation checks (exit 2 before anything starts) and the Locust command lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from probes.errors import UsageError
from probes.load import command
from probes.load.launcher import LocustRun, leader_argv, worker_argv
from probes.load.plugin_config import ENV_VAR, USER_RATE_ARG, PluginConfig


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    return parser.parse_args(["load", *argv])


OK = ("--scenario", "search", "--host", "http://127.0.0.1:8000")


def test_valid_options() -> None:
    options = command._options(parse(*OK, "--users", "4", "--run-time", "3s", "--threshold", "p95<1s",
                                     "--metrics-listen", "127.0.0.1:0", "--workers", "2",
                                     "--", "--think-time", "1"))
    assert options.role == "local" and options.run_time == 3.0 and options.metrics_listen == ("127.0.0.1", 0)
    assert options.locust_args == ["--think-time", "1"]
    assert options.host == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--scenario", "search", "--host", "127.0.0.1:8000"), "--host: .*not an http"),
        (("--scenario", "search", "--host", "ftp://x"), "--host"),
        (("--scenario", "search", "--host", "http://"), "--host"),
        (("--scenario", "search", "--host", "http://h:99999"), "--host: .*port"),
        (("--scenario", "search"), "--host is required"),
        (("--host", "http://h"), "--scenario is required"),
        ((*OK, "--users", "0"), "--users"),
        ((*OK, "--run-time", "soon"), "--run-time"),
        ((*OK, "--run-time", "0s"), "--run-time"),
        ((*OK, "--rate", "-1"), "--rate"),
        ((*OK, "--workers", "0"), "--workers"),
        # Found in an adversarial round: these reached Locust and exited 3 with its traceback.
        ((*OK, "--run-time", "99999999999999999999d"), "--run-time: .*at most 365d"),
        ((*OK, "--spawn-rate", "nan"), "--spawn-rate: must be a positive number"),
        ((*OK, "--spawn-rate", "inf"), "--spawn-rate"),
        ((*OK, "--rate", "nan"), "--rate"),
        ((*OK, "--workers", "100000"), "--workers: must be between 1 and 256"),
        ((*OK, "--users", "10000000000"), "--users"),
        ((*OK, "--metrics-listen", "nope"), "--metrics-listen"),
        ((*OK, "--master"), "--expect-workers"),
        ((*OK, "--master", "--expect-workers", "2", "--worker", "--master-host", "h"), "exclude"),
        ((*OK, "--workers", "2", "--master", "--expect-workers", "2"), "--workers"),
        (("--scenario", "search", "--worker"), "--master-host"),
        (("--scenario", "search", "--worker", "--master-host", "h", "--metrics-listen", ":0"), "master"),
    ],
)
def test_bad_invocations(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        command._options(parse(*argv))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((*OK, "--threshold", "p95<fast"), "--threshold: invalid threshold"),
        ((*OK, "--threshold", "p95<1s", "--abort-on-fail"), "error_rate threshold"),
        (("--scenario", "no-such-scenario", "--host", "http://h"), "unknown scenario"),
    ],
)
def test_bad_before_launch(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        command.handle(parse(*argv))


def test_default_threshold() -> None:
    options = command._options(parse(*OK))
    assert [t.expr for t in command._thresholds(options)] == ["error_rate<1%"]


def test_locust_command_lines(tmp_path: Path) -> None:
    run = LocustRun(role="local", scenario=tmp_path / "s.py", host="http://h", users=8, spawn_rate=4,
                    run_time=2.2, rate=40.0, workers=2, html=tmp_path / "r.html",
                    extra_args=["--think-time", "1"])
    argv = leader_argv(run, master_port=4242)
    assert argv[:3] == [sys.executable, "-m", "probes.load.locust_main"]
    joined = " ".join(argv)
    assert "--headless --users 8 --spawn-rate 4 --run-time 3s" in joined
    assert f"{USER_RATE_ARG} 5.0" in joined  # 40 req/s shared by 8 users
    assert "--master --expect-workers 2" in joined
    assert "--master-bind-host 127.0.0.1 --master-bind-port 4242" in joined
    assert argv[-2:] == ["--think-time", "1"]
    worker = worker_argv(run, "127.0.0.1", 4242)
    assert "--worker --master-host 127.0.0.1 --master-port 4242" in " ".join(worker)
    assert "--headless" not in worker
    standalone = leader_argv(LocustRun(role="standalone", scenario=tmp_path / "s.py", host="http://h"))
    assert "--master" not in standalone and USER_RATE_ARG not in standalone


def test_deadline_bounds_every_role(tmp_path: Path) -> None:
    base = {"scenario": tmp_path / "s.py", "run_time": 10.0}
    standalone = LocustRun(role="standalone", **base).deadline_seconds()
    local = LocustRun(role="local", workers=2, **base).deadline_seconds()
    assert standalone is not None and local is not None and 10 < standalone < local < 120
    assert LocustRun(role="worker", **base).deadline_seconds() is None


def test_plugin_config_env_roundtrip(monkeypatch: pytest.MonkeyPatch) -> None:
    config = PluginConfig(scenario="search", region="eu", users=3, metrics_host="127.0.0.1", metrics_port=0,
                          abort_thresholds=["error_rate<1%"])
    for key, value in config.to_env().items():
        monkeypatch.setenv(key, value)
    assert PluginConfig.from_env() == config
    monkeypatch.delenv(ENV_VAR)
    assert PluginConfig.from_env() is None


def test_cli_side_never_imports_locust() -> None:
    """Locust monkey-patches sockets at import; only the Locust child may import it."""
    import subprocess

    code = (
        "import sys, probes.load.command, probes.load.report, probes.load.launcher, probes.load.thresholds, "
        "probes.load.locust_metrics, probes.load.scenario_files; "
        "bad = [m for m in ('locust', 'gevent') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_master_listens_on_loopback_unless_told_otherwise() -> None:
    options = command._options(parse(*OK, "--master", "--expect-workers", "2"))
    assert options.master_bind_host == "127.0.0.1"
    wide = command._options(parse(*OK, "--master", "--expect-workers", "2", "--master-bind-host", "0.0.0.0"))
    assert wide.master_bind_host == "0.0.0.0"


def test_hostile_numbers_exit_2_from_the_cli_without_a_traceback() -> None:
    from tests.support.processes import run_cli

    for flag, text in (("--run-time", "99999999999999999999d"), ("--spawn-rate", "nan"),
                       ("--threshold", "p95<" + "9" * 400)):
        proc = run_cli("load", *OK, flag, text, timeout=30)
        assert proc.returncode == 2, (flag, proc.stderr)
        assert "Traceback" not in proc.stderr and flag in proc.stderr
