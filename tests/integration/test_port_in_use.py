"""A port that is already taken: every command that listens says so in one line and exits 3, before it
starts anything else (no traceback, no Locust run, no fault injected)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import run_cli


@pytest.fixture
def taken() -> Iterator[str]:
    """A port some other program is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def _assert_one_line(args: list[str], taken: str) -> None:
    proc = run_cli(*args, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: cannot listen on {taken}: address already in use"]


def test_run(tmp_path: Path, taken: str) -> None:
    (tmp_path / "agent.yaml").write_text("probes: []\n")
    _assert_one_line(["run", "--config", str(tmp_path / "agent.yaml"), "--listen", taken], taken)


def test_demo_with_an_address_given(taken: str) -> None:
    _assert_one_line(["demo", "--listen", taken, "--duration", "1"], taken)


def test_target(taken: str) -> None:
    _assert_one_line(["target", "--listen", taken], taken)


def test_proxy_listen(taken: str) -> None:
    _assert_one_line(["proxy", "--listen", taken, "--upstream", "http://127.0.0.1:9"], taken)


def test_proxy_control(taken: str) -> None:
    _assert_one_line(["proxy", "--listen", "127.0.0.1:0", "--control", taken, "--upstream", "http://127.0.0.1:9"],
                     taken)


def test_drill_receiver(tmp_path: Path, taken: str) -> None:
    spec = tmp_path / "drills.yaml"
    spec.write_text(f"""
prometheus: http://127.0.0.1:9
receiver: {{listen: "{taken}"}}
drills:
  - name: d
    fault: {{injector: target, control: "http://127.0.0.1:9", token: t, spec: {{type: error, status: 503}}, ttl: 1m}}
    expect: [{{alert: ProbeFailing, within: 1m}}]
""")
    _assert_one_line(["drill", "--config", str(spec)], taken)


def test_load_metrics_listen(taken: str) -> None:
    _assert_one_line(["load", "--scenario", "health", "--host", "http://127.0.0.1:9", "--users", "1",
                      "--run-time", "1s", "--metrics-listen", taken], taken)
