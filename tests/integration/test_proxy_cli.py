"""`probe-agent proxy` in front of `probe-agent target`, as a drill against a real service would set it up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time

import httpx
import pytest

from tests.support.metrics import exact
from tests.support.processes import cli, run_cli, started

PROMTOOL = os.environ.get("PROMTOOL_BIN", "/usr/bin/promtool")


def test_proxy_in_front_of_the_demo_target() -> None:
    with started(cli("target", "--listen", "127.0.0.1:0"), expect=["target"]) as target:
        upstream = target.urls["target"]
        command = cli("proxy", "--listen", "127.0.0.1:0", "--upstream", upstream, "--token", "T")
        with started(command, expect=["proxy", "control"]) as proxy:
            proxy_url, control_url = proxy.urls["proxy"], proxy.urls["control"]
            assert control_url.startswith("http://127.0.0.1:")
            assert httpx.get(f"{proxy_url}/api/search?q=laptop").json()["hits"][0]["id"] == "sku-00042"

            auth = {"Authorization": "Bearer T"}
            fault = {"type": "error", "status": 503, "match": {"path": "^/api/search"}, "ttl": "30s"}
            created = httpx.post(f"{control_url}/-/faults", json=fault, headers=auth)
            assert created.status_code == 201
            assert httpx.get(f"{proxy_url}/api/search?q=laptop").status_code == 503
            assert httpx.get(f"{upstream}/api/search?q=laptop").status_code == 200  # the target itself is fine

            metrics = httpx.get(f"{control_url}/metrics").text
            assert exact(metrics, "probe_proxy_active_faults") == 1
            assert exact(metrics, "probe_proxy_requests_total", {"outcome": "error"}) == 1
            assert exact(metrics, "probe_proxy_requests_total", {"outcome": "forwarded"}) == 1

            if os.access(PROMTOOL, os.X_OK):
                lint = subprocess.run([PROMTOOL, "check", "metrics"], input=metrics, capture_output=True, text=True)
                assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")

            # A request held by a timeout fault must not hold up the shutdown for the fault's TTL.
            hold = {"type": "timeout", "match": {"path": "^/health"}, "ttl": "10m"}
            assert httpx.post(f"{control_url}/-/faults", json=hold, headers=auth).status_code == 201
            held = threading.Thread(target=_ignore_errors, args=(f"{proxy_url}/health",), daemon=True)
            held.start()
            time.sleep(0.3)
            start = time.monotonic()
            os.killpg(proxy.proc.pid, signal.SIGTERM)
            assert proxy.proc.wait(10) == 0
            assert time.monotonic() - start < 5
            assert "Traceback" not in proxy.text()


def _ignore_errors(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(url, timeout=30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "127.0.0.1:0", "--upstream", "ftp://x"], "invalid --upstream 'ftp://x'"),
        (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:8000"], "invalid --upstream"),
        (["--listen", "bad", "--upstream", "http://127.0.0.1:8000"], "invalid listen address"),
        (["--upstream", "http://127.0.0.1:8000"], "--listen"),
    ],
)
def test_bad_invocations_are_usage_errors(args: list[str], message: str) -> None:
    result = run_cli("proxy", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
