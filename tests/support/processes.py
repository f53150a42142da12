"""Start real `probe-agent ...` processes (and other binaries) for integration tests, and always stop them.

Server commands print `probe-agent: <what> listening on <URL>` to stdout once they accept connections;
`started()` waits for those lines and hands back the URLs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

LISTENING = re.compile(r"probe-agent: (?P<what>[\w .-]+?) listening on (?P<url>\S+)")


@dataclass
class Started:
    proc: subprocess.Popen[str]
    urls: dict[str, str]
    output: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.output)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "probes", *args]


def run_cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, input=input_text)


@contextlib.contextmanager
def started(cmd: Sequence[str], *, expect: Sequence[str], timeout: float = 30,
            env: dict[str, str] | None = None, cwd: str | None = None) -> Iterator[Started]:
    """Run `cmd`, wait until it printed a `listening on` line for each name in `expect`."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, cwd=cwd,
                            start_new_session=True)
    result = Started(proc=proc, urls={})
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            result.output.append(line)
            match = LISTENING.search(line)
            if match:
                result.urls[match.group("what")] = match.group("url")
                if all(name in result.urls for name in expect):
                    ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(timeout) or not all(name in result.urls for name in expect):
            raise RuntimeError(f"{cmd!r} did not start within {timeout}s:\n{result.text()}")
        yield result
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[Any], grace: float = 10) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def wait_until(predicate: object, timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def once_results(config: object, *extra: str, expect_code: int | None = None) -> dict[str, dict[str, Any]]:
    """`probe-agent once --format json` on a config file: the results by probe name."""
    proc = run_cli("once", "--config", str(config), "--format", "json", *extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    if expect_code is not None:
        assert proc.returncode == expect_code, proc.stderr
    return {r["probe"]: r for r in json.loads(proc.stdout)}
