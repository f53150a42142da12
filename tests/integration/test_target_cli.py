"""`probe-agent target` as a user runs it: one listening line, the token from the environment, clean exits."""

from __future__ import annotations

import os
import signal
import subprocess

import httpx
import pytest

from tests.support.processes import cli, run_cli, started

PROMTOOL = os.environ.get("PROMTOOL_BIN", "/usr/bin/promtool")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_target_serves_announces_itself_and_stops_cleanly(sig: signal.Signals) -> None:
    env = {"PROBE_AGENT_ADMIN_TOKEN": "from-env"}
    with started(cli("target", "--listen", "127.0.0.1:0"), expect=["target"], env=env) as target:
        url = target.urls["target"]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        hits = httpx.get(f"{url}/api/search", params={"q": "laptop"}).json()["hits"]
        assert "sku-00042" in [hit["id"] for hit in hits]
        faults = httpx.get(f"{url}/-/faults", headers={"Authorization": "Bearer from-env"})
        assert faults.json() == {"faults": []}
        if sig == signal.SIGTERM and os.access(PROMTOOL, os.X_OK):
            metrics = httpx.get(f"{url}/metrics").text
            lint = subprocess.run([PROMTOOL, "check", "metrics"], input=metrics, capture_output=True, text=True)
            assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
        os.killpg(target.proc.pid, sig)
        assert target.proc.wait(10) == 0
        lines = [line for line in target.text().splitlines() if "listening on" in line]
        assert lines == [f"probe-agent: target listening on {url}"]
        assert "Traceback" not in target.text()


def test_admin_token_flag_turns_the_fault_api_on() -> None:
    with started(cli("target", "--listen", "127.0.0.1:0", "--admin-token", "flag"), expect=["target"],
                 env={"PROBE_AGENT_ADMIN_TOKEN": ""}) as target:
        url = target.urls["target"]
        assert httpx.get(f"{url}/-/faults", headers={"Authorization": "Bearer flag"}).status_code == 200


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999"])
def test_a_bad_listen_address_is_a_usage_error(listen: str) -> None:
    result = run_cli("target", "--listen", listen)
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr
