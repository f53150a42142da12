"""Fault proxy overhead benchmark (issue #6, "Performance"): latency added by `probe-agent proxy` with no
fault active, against calling the upstream directly, in the same run.

Run from the repository root (loopback only; about 30 s, `--quick` about 10 s):

    python tests/benchmarks/bench_proxy.py [--quick] [--requests N] [--no-wrk]

Set-up: nginx (Debian `nginx-light`, a static JSON `/health`) on a free loopback port — or, without
nginx, `probe-agent target` — and `probe-agent proxy` in front of it, each in its own process.

Measured:

1. Sequential requests from this process, alternating direct / through the proxy so that drift hits
   both alike, in two client modes: one kept-alive connection (the proxy's own cost per request), and a
   new TCP connection per request (what a probe does by default; the proxy keeps its upstream
   connections alive, so this is the cost a probe sees). p50 and p99 of each, and the overhead.
2. (informational, when /usr/bin/wrk exists) wrk with 1 thread and 8 connections for a few seconds
   against each: p50/p99 and requests/s under concurrency.

Target: p50 overhead <= 1 ms. Exit 0 when met, 1 when not. Every process started is stopped at the end,
on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.common import Processes, free_port, processes, start_nginx, wait_http  # noqa: E402

TARGET_P50_OVERHEAD_MS = 1.0
WRK_BIN = os.environ.get("WRK_BIN", "/usr/bin/wrk")


def start_upstream(procs: Processes) -> tuple[str, str]:
    """(base URL, path) of the upstream: nginx if possible, else the demo target."""
    try:
        _, base = start_nginx(procs, "nginx")
        return base, "/health"
    except RuntimeError as exc:
        print(f"nginx unavailable ({str(exc).splitlines()[0]}); using the demo target as the upstream")
    port = free_port()
    target = procs.start("target", [sys.executable, "-m", "probes", "target", "--listen", f"127.0.0.1:{port}"],
                         cwd=str(REPO))
    target.wait_for_output("target listening on", 30)
    return f"http://127.0.0.1:{port}", "/health"


def start_proxy(procs: Processes, upstream: str) -> str:
    port = free_port()
    proxy = procs.start(
        "proxy",
        [sys.executable, "-m", "probes", "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
         "--token", "bench"],
        cwd=str(REPO),
    )
    line = proxy.wait_for_output("proxy listening on", 30)
    url = line.split("listening on", 1)[1].strip()
    wait_http(f"{url}/health")
    return url


class KeptAlive:
    """One HTTP/1.1 connection reused for every request."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)

    def __call__(self, path: str) -> None:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")


class FreshConnection:
    """A new TCP connection per request, closed after it, as a probe does by default."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.request = f"GET {{path}} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"

    def __call__(self, path: str) -> None:
        with socket.create_connection(self.address, timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(self.request.format(path=path).encode())
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        if not received.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected answer {received[:60]!r}")


def measure(direct: Callable[[str], None], proxied: Callable[[str], None], path: str,
            requests: int, warmup: int) -> tuple[list[float], list[float]]:
    direct_ms: list[float] = []
    proxied_ms: list[float] = []
    for index in range(warmup + requests):
        # Alternate which goes first, so neither always runs on a just-woken CPU.
        order = ((direct, direct_ms), (proxied, proxied_ms))
        for call, sink in order if index % 2 == 0 else reversed(order):
            start = time.perf_counter()
            call(path)
            elapsed = (time.perf_counter() - start) * 1000
            if index >= warmup:
                sink.append(elapsed)
    return direct_ms, proxied_ms


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")


def run_wrk(url: str, seconds: int) -> tuple[float, float, float] | None:
    """(p50 ms, p99 ms, requests/s) from wrk --latency, or None if wrk could not run."""
    result = subprocess.run([WRK_BIN, "-t1", "-c8", f"-d{seconds}s", "--latency", url],
                            capture_output=True, text=True, timeout=seconds + 30)
    if result.returncode != 0:
        print(f"wrk failed: {result.stderr.strip()}")
        return None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latencies = {q: float(v) * scale[unit] for q, v, unit in WRK_LATENCY.findall(result.stdout)}
    rate = WRK_RATE.search(result.stdout)
    if "50" not in latencies or "99" not in latencies or rate is None:
        print(f"could not parse wrk output:\n{result.stdout}")
        return None
    return latencies["50"], latencies["99"], float(rate.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter wrk runs")
    parser.add_argument("--requests", type=int, help="measured requests per side and mode (default 5000, quick 1000)")
    parser.add_argument("--no-wrk", action="store_true", help="skip the informational wrk runs")
    args = parser.parse_args()
    requests = args.requests or (1000 if args.quick else 5000)
    warmup = max(100, requests // 10)
    wrk_seconds = 3 if args.quick else 5

    with processes("bench-proxy-") as procs:
        upstream, path = start_upstream(procs)
        proxy = start_proxy(procs, upstream)
        print(f"upstream {upstream}{path}   proxy {proxy}{path}   {requests} requests per side and mode\n")

        rows = []
        for mode, client in (("kept-alive connection", KeptAlive), ("new connection per request", FreshConnection)):
            direct_ms, proxied_ms = measure(client(upstream), client(proxy), path, requests, warmup)
            rows.append((mode, direct_ms, proxied_ms))

        print(f"{'client':<28} {'':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
        verdicts = []
        for mode, direct_ms, proxied_ms in rows:
            for label, values in (("direct", direct_ms), ("proxy", proxied_ms)):
                print(f"{mode if label == 'direct' else '':<28} {label:>8} {percentile(values, 50):8.3f} "
                      f"{percentile(values, 99):8.3f} {statistics.fmean(values):8.3f}")
            p50_over = percentile(proxied_ms, 50) - percentile(direct_ms, 50)
            p99_over = percentile(proxied_ms, 99) - percentile(direct_ms, 99)
            ratio = percentile(proxied_ms, 50) / percentile(direct_ms, 50)
            verdicts.append(p50_over <= TARGET_P50_OVERHEAD_MS)
            print(f"{'':<28} {'overhead':>8} {p50_over:8.3f} {p99_over:8.3f}   "
                  f"p50 ratio proxy/direct {ratio:.2f}   target p50 overhead <= {TARGET_P50_OVERHEAD_MS} ms: "
                  f"{'met' if verdicts[-1] else 'MISSED'}")

        if not args.no_wrk and shutil.which(WRK_BIN):
            print(f"\nwrk -t1 -c8 -d{wrk_seconds}s (informational)")
            direct = run_wrk(f"{upstream}{path}", wrk_seconds)
            proxied = run_wrk(f"{proxy}{path}", wrk_seconds)
            for label, figures in (("direct", direct), ("proxy", proxied)):
                if figures:
                    print(f"  {label:>8}  p50 {figures[0]:.3f} ms  p99 {figures[1]:.3f} ms  {figures[2]:.0f} req/s")
            if direct and proxied:
                print(f"  overhead  p50 {proxied[0] - direct[0]:.3f} ms  p99 {proxied[1] - direct[1]:.3f} ms")

    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
