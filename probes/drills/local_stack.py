"""A throwaway Prometheus + Alertmanager on loopback: generated configs, temp data dirs, short intervals.

Used by the end-to-end tests and by `probe-agent demo --drill`. The binaries come from `PROMETHEUS_BIN` /
`ALERTMANAGER_BIN`, else `/usr/bin/prometheus` and `/usr/bin/prometheus-alertmanager` (Debian's packages),
else the PATH.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from probes.assets import RULES_DIR
from probes.errors import CannotRun
from probes.ports import free_port


def find_binary(env_var: str, default: str, name: str) -> str:
    chosen = os.environ.get(env_var)
    if chosen:  # asked for by name: a wrong path is an error, not a reason to quietly use another binary
        if os.path.isfile(chosen) and os.access(chosen, os.X_OK):
            return chosen
        raise CannotRun(f"{env_var}={chosen} is not an executable file")
    for candidate in (default, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise CannotRun(f"{name} not found: install Debian's {name} package or set {env_var}")


def prometheus_bin() -> str:
    return find_binary("PROMETHEUS_BIN", "/usr/bin/prometheus", "prometheus")


def alertmanager_bin() -> str:
    return find_binary("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager", "prometheus-alertmanager")


def bundled_rules_dir() -> Path:
    """The rules shipped in the package, or the folder `PROBE_AGENT_RULES_DIR` names (to drill your own)."""
    directory = Path(os.environ.get("PROBE_AGENT_RULES_DIR") or RULES_DIR)
    if not directory.is_dir():
        raise CannotRun(f"alert rules not found in {directory}: set PROBE_AGENT_RULES_DIR to a folder of rule files")
    return directory


_RANGE = re.compile(r"\[(\d+[smhdwy])(\s*:\s*\d*[smhdwy]*)?\]")


def shorten_rules(source: Path, target: Path, for_: str = "2s", range_: str | None = "10s") -> list[Path]:
    """Copy every rule file from `source` into `target`, scaled down in time for a fast drill.

    Each alert's `for:` becomes `for_`, and each range window (`[5m]`) becomes `range_`, so that an alert
    also resolves within seconds of the revert instead of when a five-minute window has drained. The
    expressions are otherwise exactly as shipped: the drill tests the rules users deploy, only faster.
    """
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted([*source.glob("*.yml"), *source.glob("*.yaml")]):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in data.get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" in rule and rule.get("for"):
                    rule["for"] = for_
                rule.pop("keep_firing_for", None)
                if range_ is not None:
                    rule["expr"] = _RANGE.sub(f"[{range_}]", str(rule["expr"]))
        out = target / path.name
        out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        written.append(out)
    return written


def _static_target(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "scheme": parts.scheme or "http",
        "metrics_path": parts.path or "/metrics",
        "static_configs": [{"targets": [parts.netloc]}],
    }


class LocalStack:
    """`with LocalStack(...) as stack:` -> `stack.prometheus_url`, `stack.alertmanager_url`."""

    def __init__(
        self,
        *,
        scrape: dict[str, str],
        rule_files: list[Path],
        receiver_url: str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        group_wait: str = "1s",
        group_interval: str = "1s",
        with_alertmanager: bool = True,
        wait_for_scrapes: bool = True,
    ) -> None:
        self.scrape = scrape
        self.rule_files = rule_files
        self.receiver_url = receiver_url
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.with_alertmanager = with_alertmanager
        # False: return as soon as Prometheus is ready, as a CI stack would (the drill must then wait).
        self.wait_for_scrapes = wait_for_scrapes
        self.workdir: Path | None = None
        self.prometheus_url = ""
        self.alertmanager_url: str | None = None
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alertmanager_config(self) -> dict[str, Any]:
        receiver: dict[str, Any] = {"name": "drill"}
        if self.receiver_url:
            receiver["webhook_configs"] = [{"url": self.receiver_url, "send_resolved": True}]
        return {
            "route": {
                "receiver": "drill",
                "group_by": ["alertname"],
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": "1h",
            },
            "receivers": [receiver],
        }

    def prometheus_config(self, rule_files: list[Path], alertmanager_port: int | None) -> dict[str, Any]:
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, **_static_target(url)} for job, url in self.scrape.items()],
        }
        if alertmanager_port is not None:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
            }
        return config

    def start(self) -> None:
        prometheus, alertmanager = prometheus_bin(), alertmanager_bin() if self.with_alertmanager else None
        self.workdir = Path(tempfile.mkdtemp(prefix="probe-agent-stack-"))
        try:
            am_port = None
            if alertmanager is not None:
                am_port = self._start_alertmanager(alertmanager)
            self._start_prometheus(prometheus, am_port)
            if self.wait_for_scrapes:
                self.wait_for_first_scrapes()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, args: list[str], port: int) -> bool:
        assert self.workdir is not None
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._procs.append(proc)
        url = f"http://127.0.0.1:{port}/-/ready"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code == 200:
                    return True
            time.sleep(0.1)
        raise CannotRun(f"{name} did not become ready within 30s: {self.log_tail(name)}")

    def log_tail(self, name: str) -> str:
        assert self.workdir is not None
        with contextlib.suppress(OSError):
            return (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
        return ""

    def _start_alertmanager(self, binary: str) -> int:
        assert self.workdir is not None
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.alertmanager_config(), sort_keys=False))
        for _ in range(3):  # another process may take the port between free_port() and the bind
            port = free_port()
            args = [
                binary,
                f"--config.file={config}",
                f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ]
            if self._spawn("alertmanager", args, port):
                self.alertmanager_url = f"http://127.0.0.1:{port}"
                return port
        raise CannotRun(f"alertmanager did not start: {self.log_tail('alertmanager')}")

    def _start_prometheus(self, binary: str, am_port: int | None) -> None:
        assert self.workdir is not None
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.prometheus_config(self.rule_files, am_port), sort_keys=False))
        for _ in range(3):
            port = free_port()
            args = [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                "--web.enable-lifecycle",
            ]
            if self._spawn("prometheus", args, port):
                self.prometheus_url = f"http://127.0.0.1:{port}"
                return
        raise CannotRun(f"prometheus did not start: {self.log_tail('prometheus')}")

    def wait_for_first_scrapes(self, timeout: float = 30) -> None:
        """Block until every target was scraped once (up or down).

        Prometheus applies discovered targets at most every 5 s, so the first scrape comes seconds after
        /-/ready; a drill injected before it would have no baseline sample for a rate().
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                targets = httpx.get(f"{self.prometheus_url}/api/v1/targets", timeout=2).json()["data"]
                scraped = {t["labels"].get("job") for t in targets["activeTargets"] if t["health"] != "unknown"}
                if set(self.scrape) <= scraped:
                    return
            time.sleep(0.2)
        raise CannotRun(f"Prometheus did not scrape {', '.join(self.scrape)} within {timeout:g}s")

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self._procs.clear()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
