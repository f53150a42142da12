"""Small helpers shared by the benchmark scripts: free loopback ports, child processes that are always
stopped, a throw-away nginx, process CPU time and RSS from /proc, and Prometheus text parsing.

Everything binds to 127.0.0.1. Every process started through `Processes` runs in its own session and
is stopped (SIGTERM, then SIGKILL) when the `Processes` block ends, whatever ended it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script from tests/benchmarks/: the repo root holds the shared test helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from probes.ports import free_port
from tests.support.metrics import all_samples
from tests.support.processes import stop as stop_process_group

LOOPBACK = "127.0.0.1"
NGINX_BIN = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
BLACKBOX_BIN = os.environ.get("BLACKBOX_BIN", "/usr/bin/prometheus-blackbox-exporter")
PROMTOOL_BIN = os.environ.get("PROMTOOL_BIN", "/usr/bin/promtool")
CLK_TCK = os.sysconf("SC_CLK_TCK")
HEALTH_BODY = '{"status": "healthy", "components": [{"name": "search", "status": "healthy"}]}'


# ---------------------------------------------------------------------------------------------- /proc


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of the process (all its threads, not its children), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads, not its children), in seconds."""
    return sum(cpu_split(pid))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def system_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    everything = sum(fields[:8])  # guest time is already counted in user
    return (everything - idle) / CLK_TCK, everything / CLK_TCK


def busy_share(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Share of all cores' time that was busy between two `system_cpu()` readings."""
    spent = after[1] - before[1]
    return (after[0] - before[0]) / spent if spent > 0 else math.nan


# ------------------------------------------------------------------------------------------ processes


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_output(self, needle: str, timeout: float) -> str:
        """Wait until the child printed a line containing `needle`; returns that line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                if needle in line:
                    return line
            if not self.alive():
                break
            time.sleep(0.05)
        raise RuntimeError(
            f"{self.name} did not print {needle!r} within {timeout}s "
            f"(exit code {self.proc.poll()}):\n{self.log()[-3000:]}"
        )


@dataclass
class Processes:
    """Starts children in their own sessions, logging to files in a temp dir; `stop_all` stops them."""

    workdir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Child:
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                list(cmd),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def stop(self, child: Child, grace: float = 5.0) -> None:
        proc = child.proc
        stop_process_group(proc, grace)
        # Anything the child left behind in its session (nginx workers) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            with contextlib.suppress(Exception):
                self.stop(child)


@contextlib.contextmanager
def processes(prefix: str = "bench-") -> Iterator[Processes]:
    """A `Processes` registry whose children are stopped when the block ends, even on Ctrl-C or SIGTERM."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    registry = Processes(workdir)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield registry
    finally:
        # Ctrl-C twice must not leave children behind: ignore further interrupts while stopping.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            registry.stop_all()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous)
            shutil.rmtree(workdir, ignore_errors=True)


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                resp.read()
                return
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {last}")


def http_get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


# ---------------------------------------------------------------------------------------------- nginx

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000;
    server {{
        listen {host}:{port} backlog=4096;
        location = /health {{
            default_type application/json;
            return 200 '{body}';
        }}
        location / {{ return 404; }}
    }}
}}
"""


def start_nginx(procs: Processes, name: str = "nginx") -> tuple[Child, str]:
    """nginx serving a static JSON `/health` (containing "healthy") on a free loopback port.
    Returns the child and the base URL."""
    if not os.access(NGINX_BIN, os.X_OK):
        raise RuntimeError(f"{NGINX_BIN} not found (Debian package nginx-light); set NGINX_BIN")
    conf_dir = procs.workdir / name
    conf_dir.mkdir()
    port = free_port()
    conf = conf_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=conf_dir, host=LOOPBACK, port=port, body=HEALTH_BODY))
    child = procs.start(name, [NGINX_BIN, "-p", str(conf_dir), "-c", str(conf), "-e", str(conf_dir / "error.log")])
    base = f"http://{LOOPBACK}:{port}"
    try:
        wait_http(f"{base}/health")
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{child.log()}{(conf_dir / 'error.log').read_text(errors='replace')}") from None
    return child, base


# ------------------------------------------------------------------------------------ blackbox_exporter

BLACKBOX_CONF = """\
modules:
  http_2xx_body:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      valid_status_codes: []
      fail_if_body_not_matches_regexp: ["healthy"]
"""


def start_blackbox(procs: Processes, name: str = "blackbox") -> tuple[Child, str]:
    if not os.access(BLACKBOX_BIN, os.X_OK):
        raise RuntimeError(f"{BLACKBOX_BIN} not found (Debian package prometheus-blackbox-exporter)")
    conf = procs.workdir / f"{name}.yml"
    conf.write_text(BLACKBOX_CONF)
    port = free_port()
    child = procs.start(
        name,
        [
            BLACKBOX_BIN,
            f"--config.file={conf}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--log.level=warn",
        ],
    )
    base = f"http://{LOOPBACK}:{port}"
    wait_http(f"{base}/-/healthy")
    return child, base


# ------------------------------------------------------------------------------------- the agent


def agent_cli_works() -> bool:
    """`python -m probes --help` works (all subcommand modules are present)."""
    done = subprocess.run([sys.executable, "-m", "probes", "--help"], capture_output=True, timeout=60)
    return done.returncode == 0


# Used when the CLI cannot start yet: exactly what `probe-agent run` does, without argument parsing.
IN_PROCESS_AGENT = """\
import asyncio, sys
from probes.agent.agent import Agent, Overrides
from probes.agent.serve import serve, setup_logging
setup_logging()
agent = Agent.from_file(sys.argv[1], Overrides(listen=sys.argv[2]))
raise SystemExit(asyncio.run(serve(agent)))
"""


def start_agent(
    procs: Processes, config: Path, name: str, use_cli: bool, repo: Path, prelude: str = ""
) -> tuple[Child, str]:
    """The agent on a free port; `prelude` (Python code run first, e.g. installing uvloop) implies the
    in-process launcher."""
    listen = f"{LOOPBACK}:0"
    if use_cli and not prelude:
        cmd = [sys.executable, "-m", "probes", "run", "--config", str(config), "--listen", listen]
    else:
        cmd = [sys.executable, "-c", prelude + "\n" + IN_PROCESS_AGENT, str(config), listen]
    child = procs.start(name, cmd, cwd=str(repo), env={"PYTHONPATH": str(repo)})
    line = child.wait_for_output("agent listening on", timeout=60)
    return child, line.rsplit(" ", 1)[-1].rstrip("/")


# ------------------------------------------------------------------------------------ Prometheus text


@functools.lru_cache(maxsize=8)
def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in a Prometheus text exposition (cached: a large scrape is
    read by several figures)."""
    return all_samples(text)


def total(text: str, name: str, **match: str) -> float:
    return sum(
        v for n, labels, v in samples(text) if n == name and all(labels.get(k) == want for k, want in match.items())
    )


def buckets(text: str, name: str) -> dict[float, float]:
    """Cumulative bucket counts of histogram `name` (summed over label sets), by upper bound."""
    out: dict[float, float] = {}
    for n, labels, v in samples(text):
        if n == f"{name}_bucket":
            le = float(labels["le"])
            out[le] = out.get(le, 0.0) + v
    return out


def quantile_from_buckets(before: dict[float, float], after: dict[float, float], q: float) -> tuple[float, float]:
    """Estimate quantile q of the observations between two scrapes of a cumulative histogram.
    Returns (estimate by linear interpolation inside the bucket, as PromQL does; the bucket's upper bound)."""
    bounds = sorted(after)
    delta = [after[b] - before.get(b, 0.0) for b in bounds]
    count = delta[-1] if delta else 0.0
    if count <= 0:
        return math.nan, math.nan
    rank = q * count
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, delta, strict=True):
        if cumulative >= rank:
            if math.isinf(bound):
                return lower, bound
            inside = cumulative - below
            share = (rank - below) / inside if inside else 1.0
            return lower + (bound - lower) * share, bound
        lower, below = bound, cumulative
    return lower, math.inf


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
