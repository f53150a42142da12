"""Helpers for `probe-agent load` integration tests: the demo target, faults on it, scrapes, leftovers."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import cli, started

ADMIN_TOKEN = "load-tests-token"


@dataclass
class Target:
    url: str
    token: str

    def add_fault(self, spec: dict[str, object]) -> str:
        request = urllib.request.Request(
            f"{self.url}/-/faults",
            data=json.dumps(spec).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.load(response)["id"])

    def clear_faults(self) -> None:
        request = urllib.request.Request(
            f"{self.url}/-/faults", method="DELETE", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5):
            pass


@contextlib.contextmanager
def demo_target() -> Iterator[Target]:
    """The real demo search API (`probe-agent target`) on a free loopback port, with its fault API on."""
    with started(cli("target", "--listen", "127.0.0.1:0", "--admin-token", ADMIN_TOKEN), expect=["target"]) as proc:
        yield Target(url=proc.urls["target"].rstrip("/"), token=ADMIN_TOKEN)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def sample_value(text: str, metric: str, labels: dict[str, str]) -> float | None:
    """The value of one sample in Prometheus text format, matched on its name and a subset of labels."""
    for line in text.splitlines():
        if not line.startswith(metric + "{") and line.split(" ")[0] != metric:
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{key}="{val}"' in head for key, val in labels.items()):
            return float(value)
    return None


MARKER_VAR = "PROBE_AGENT_LOAD_TEST_RUN"


def run_marker() -> dict[str, str]:
    """An environment entry that every process of one test run inherits, so leftovers can be found."""
    return {MARKER_VAR: uuid.uuid4().hex}


def leftover_processes(marker: dict[str, str]) -> list[int]:
    """Pids of live processes (Locust master or workers) that carry `marker` in their environment."""
    needle = "{}={}".format(*next(iter(marker.items()))).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                status = (entry / "status").read_text()
                if "State:\tZ" not in status:
                    pids.append(int(entry.name))
    return pids
