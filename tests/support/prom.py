"""Helpers for drill tests: a local Prometheus + Alertmanager, drill files, background traffic, fault lists."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from probes.drills.local_stack import LocalStack, alertmanager_bin, prometheus_bin, shorten_rules
from probes.errors import CannotRun

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"


def require_binaries() -> None:
    try:
        prometheus_bin()
        alertmanager_bin()
    except CannotRun as exc:
        pytest.skip(str(exc))


@contextlib.contextmanager
def local_stack(workdir: Path, scrape: dict[str, str], receiver_url: str | None) -> Iterator[LocalStack]:
    """The shipped rules with `for: 2s` and 10 s windows, 1 s scrape and evaluation, group_wait 1 s."""
    require_binaries()
    rules = shorten_rules(RULES, workdir / "rules")
    with LocalStack(scrape=scrape, rule_files=rules, receiver_url=receiver_url) as stack:
        yield stack


class Traffic:
    """Requests to `url` every `every` seconds in a thread, like users of the API would send."""

    def __init__(self, url: str, every: float = 0.1) -> None:
        self.url = url
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    client.get(self.url)
                self._stop.wait(self.every)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class DemoServices:
    """What a drill test breaks and watches: the demo target, an agent probing it, the proxy before it."""

    target: str
    agent: str
    proxy: str
    proxy_control: str
    agent_config: Path

    def scrape_jobs(self) -> dict[str, str]:
        return {"demo-api": f"{self.target}/metrics", "probe-agent": f"{self.agent}/metrics",
                "via-proxy": f"{self.proxy}/metrics"}


@contextlib.contextmanager
def demo_services(workdir: Path, agent_config: str, token: str, proxy_token: str) -> Iterator[DemoServices]:
    """`probe-agent target` (fault API on `token`), `probe-agent run` with `agent_config` (its `{target}`
    filled in), `probe-agent proxy` in front of the target (control API on `proxy_token`), and steady
    search traffic, all stopped when the block ends."""
    from tests.support.processes import cli, started

    with started(cli("target", "--listen", "127.0.0.1:0", "--admin-token", token), expect=["target"]) as target:
        target_url = target.urls["target"]
        config = workdir / "agent.yaml"
        config.write_text(agent_config.format(target=target_url))
        with started(cli("run", "--config", str(config), "--listen", "127.0.0.1:0"), expect=["agent"]) as agent, \
                started(cli("proxy", "--listen", "127.0.0.1:0", "--upstream", target_url, "--control", "127.0.0.1:0",
                            "--token", proxy_token), expect=["proxy", "control"]) as proxy, \
                Traffic(f"{target_url}/api/search?q=laptop"):
            yield DemoServices(target_url, agent.urls["agent"], proxy.urls["proxy"], proxy.urls["control"], config)


def faults(control_url: str, token: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{control_url}/-/faults", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["faults"]
    return result


def active_alerts(prometheus_url: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = httpx.get(f"{prometheus_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return result


def wait_quiet(prometheus_url: str, timeout: float = 40) -> None:
    """Until no alert is pending or firing: each drill needs a clean baseline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not active_alerts(prometheus_url):
            return
        time.sleep(0.25)
    raise AssertionError(f"alerts still active after {timeout}s: {active_alerts(prometheus_url)}")


def write_drills(path: Path, stack: LocalStack | None, drills: list[dict[str, Any]], *,
                 receiver_port: int | None = None, prometheus: str | None = None) -> Path:
    spec: dict[str, Any] = {"prometheus": prometheus or (stack.prometheus_url if stack else ""), "drills": drills}
    if stack is not None and stack.alertmanager_url:
        spec["alertmanager"] = stack.alertmanager_url
    if receiver_port is not None:
        spec["receiver"] = {"listen": f"127.0.0.1:{receiver_port}"}
    spec["poll_interval"] = "200ms"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def error_fault(control: str, token: str, *, path: str = "^/api/search", ttl: str = "1m",
                injector: str = "target") -> dict[str, Any]:
    return {"injector": injector, "control": control, "token": token, "ttl": ttl,
            "spec": {"type": "error", "status": 503, "match": {"path": path}}}


@contextlib.contextmanager
def pushgateway() -> Iterator[str]:
    """A real Pushgateway on a free loopback port; yields its URL."""
    import os
    import shutil
    import subprocess

    from probes.ports import free_port
    from tests.support.processes import stop, wait_until

    binary = os.environ.get("PUSHGATEWAY_BIN") or shutil.which("prometheus-pushgateway") or \
        "/usr/bin/prometheus-pushgateway"
    if not os.access(binary, os.X_OK):
        pytest.skip("prometheus-pushgateway is not installed")
    port = free_port()
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        return False

    try:
        wait_until(ready, 20, what="the Pushgateway to be ready")
        yield url
    finally:
        stop(proc)
