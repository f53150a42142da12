"""Benchmark of `probe-agent load` (issue 5): run by hand, not collected by pytest.

    python tests/benchmarks/bench_load.py [--seconds 10] [--users 20] [--repeat 2] [--json out.json]

Against nginx on a free loopback port (a temp config serving static JSON shaped like the demo API),
with the bundled `search` scenario and the same user count everywhere:

1. bare `locust` headless, run by hand, vs `probe-agent load` (with --metrics-listen, scraped every
   second): the wrapper and its metrics must keep >= 0.95 of Locust's requests/s;
2. `probe-agent load --workers 2` vs `--workers 1`: >= 1.6x the requests/s on a 2-core machine;
3. wrk on the search endpoint, as the physical reference of what the machine can push.

Runs alternate and repeat because other work on the machine adds noise: the verdict uses the median
over rounds of the ratio of adjacent runs (same conditions); best-of figures are printed too. Each run
also reports requests per CPU-second of the load generator (all its processes, from rusage of the
waited-for children): that efficiency barely moves with contention, so the wrapper ratio is also
given on it. Scaling over workers needs idle cores and can only be judged on a quiet machine: the
load average is printed before and after.
Exit 0 when both ratios hold, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from probes.ports import free_port

REPO = Path(__file__).resolve().parents[2]
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
WRK = os.environ.get("WRK_BIN", "/usr/bin/wrk")

SEARCH_JSON = json.dumps({
    "total": 2, "took_ms": 1,
    "hits": [
        {"id": "sku-00042", "title": "Aurora Pro 14 Laptop", "score": 7.1, "category": "laptops", "price": 1299.0},
        {"id": "sku-00007", "title": "Nimbus Neo Phone", "score": 3.2, "category": "phones", "price": 699.0},
    ],
})  # fmt: skip
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    default_type application/json;
    location /api/search {{ return 200 '{search}'; }}
    location /api/categories {{ return 200 '{{"categories":[{{"name":"laptops"}},{{"name":"phones"}}]}}'; }}
    location /api/items/ {{ return 200 '{{"id":"sku-00042","title":"Aurora Pro 14 Laptop"}}'; }}
    location /health {{ return 200 '{{"status":"healthy","components":[]}}'; }}
  }}
}}
"""


@contextlib.contextmanager
def nginx() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-nginx-"))
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, search=SEARCH_JSON))
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(workdir)], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {proc.stderr.read() if proc.stderr else ''!r}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def bare_locust(url: str, users: int, seconds: int) -> tuple[float, int]:
    """Locust as a user runs it by hand; rps computed like Locust's own total (first stat to last request)."""
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "scenarios/search.py", "--headless", "-u", str(users),
         "-r", str(users), "-t", f"{seconds}s", "--host", url, "--only-summary", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    entries = json.loads(done.stdout)
    requests = sum(entry["num_requests"] for entry in entries)
    start = min(entry["start_time"] for entry in entries)
    last = max(entry["last_request_timestamp"] or 0 for entry in entries)
    return requests / (last - start), requests


def _scrape_forever(output: list[str], stop: threading.Event) -> None:
    """Scrape /metrics every second, as Prometheus would, so its cost is part of the measurement."""
    url = None
    while not stop.is_set():
        if url is None:
            for line in list(output):
                if match := re.search(r"load metrics listening on (\S+)", line):
                    url = match.group(1)
        else:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url, timeout=2).read()
        stop.wait(1.0 if url else 0.1)


def probe_agent(
    url: str, users: int, seconds: int, workers: int | None = None, metrics: bool = True
) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "load.json"
        argv = [sys.executable, "-m", "probes", "load", "--scenario", "search", "--host", url,
                "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s",
                "--report-json", str(report)]  # fmt: skip
        if workers:
            argv += ["--workers", str(workers)]
        if metrics:
            argv += ["--metrics-listen", "127.0.0.1:0"]
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        output: list[str] = []
        stop = threading.Event()
        scraper = threading.Thread(target=_scrape_forever, args=(output, stop), daemon=True)
        scraper.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
        proc.wait(seconds + 120)
        stop.set()
        scraper.join(5)
        if not report.exists():
            raise RuntimeError("probe-agent load wrote no report:\n" + "".join(output[-30:]))
        stats = json.loads(report.read_text())["stats"]
        return float(stats["rps"]), int(stats["requests"])


def wrk(url: str, seconds: int, connections: int) -> float:
    done = subprocess.run(
        [WRK, "-t", "2", "-c", str(connections), "-d", f"{seconds}s", f"{url}/api/search?q=laptop&limit=10"],
        capture_output=True, text=True, timeout=seconds + 30,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{done.stdout}{done.stderr}")
    return float(match.group(1))


def best(runs: list[float]) -> float:
    return max(runs)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(run: Callable[[str], tuple[float, int]], url: str) -> tuple[float, float]:
    """(requests/s, requests per CPU-second of every process the run started)."""
    before = children_cpu()
    rps, requests = run(url)
    cpu = children_cpu() - before
    return rps, requests / cpu if cpu > 0 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    names = ("locust", "probe_agent", "workers_1", "workers_2")
    rps: dict[str, list[float]] = {name: [] for name in names}
    efficiency: dict[str, list[float]] = {name: [] for name in names}
    runs: list[tuple[str, Callable[[str], tuple[float, int]]]] = [
        ("locust", lambda url: bare_locust(url, options.users, options.seconds)),
        ("probe_agent", lambda url: probe_agent(url, options.users, options.seconds)),
        ("workers_1", lambda url: probe_agent(url, options.users, options.seconds, workers=1, metrics=False)),
        ("workers_2", lambda url: probe_agent(url, options.users, options.seconds, workers=2, metrics=False)),
    ]
    load_before = os.getloadavg()
    print(f"{os.cpu_count()} cores, {options.users} users, {options.seconds}s per run, best of {options.repeat}; "
          f"load average {load_before[0]:.2f}")
    with nginx() as url:
        for round_number in range(options.repeat):
            for name, run in runs:
                value, per_cpu = measured(run, url)
                rps[name].append(value)
                efficiency[name].append(per_cpu)
                print(f"  round {round_number + 1}: {name:<12} {value:10.1f} req/s {per_cpu:10.1f} req/CPU-s",
                      flush=True)
        reference = wrk(url, options.seconds, connections=options.users)
    load_after = os.getloadavg()
    top = {name: best(values) for name, values in rps.items()}
    eff = {name: best(values) for name, values in efficiency.items()}
    wrapper_ratio = top["probe_agent"] / top["locust"]
    wrapper_cpu_ratio = eff["probe_agent"] / eff["locust"]
    scale_ratio = top["workers_2"] / top["workers_1"]
    print(f"bare locust             {top['locust']:10.1f} req/s  {eff['locust']:8.1f} req/CPU-s")
    print(f"probe-agent load        {top['probe_agent']:10.1f} req/s  {eff['probe_agent']:8.1f} req/CPU-s  "
          f"best-of ratio {wrapper_ratio:.3f}, per CPU {wrapper_cpu_ratio:.3f}")
    print(f"probe-agent --workers 1 {top['workers_1']:10.1f} req/s  {eff['workers_1']:8.1f} req/CPU-s")
    print(f"probe-agent --workers 2 {top['workers_2']:10.1f} req/s  {eff['workers_2']:8.1f} req/CPU-s  "
          f"best-of ratio {scale_ratio:.3f}")
    paired = [w2 / w1 for w1, w2 in zip(rps["workers_1"], rps["workers_2"], strict=True)]
    paired_wrapper = [pa / lo for lo, pa in zip(rps["locust"], rps["probe_agent"], strict=True)]
    median_wrapper, median_workers = statistics.median(paired_wrapper), statistics.median(paired)
    print("per round (adjacent runs, same conditions): wrapper "
          + ", ".join(f"{r:.3f}" for r in paired_wrapper) + "; workers " + ", ".join(f"{r:.3f}" for r in paired))
    print(f"median per-round ratios: wrapper {median_wrapper:.3f} (goal >= 0.95), "
          f"workers {median_workers:.3f} (goal >= 1.6)")
    print(f"wrk (reference)         {reference:10.1f} req/s")
    print(f"load average after {load_after[0]:.2f}")
    if options.json:
        summary = {
            "cores": os.cpu_count(), "users": options.users, "seconds": options.seconds,
            "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
            "rps": {name: round(value, 1) for name, value in top.items()},
            "requests_per_cpu_second": {name: round(value, 1) for name, value in eff.items()},
            "runs": {name: [round(v, 1) for v in values] for name, values in rps.items()},
            "wrk_rps": round(reference, 1),
            "wrapper_ratio": round(wrapper_ratio, 3),
            "wrapper_cpu_ratio": round(wrapper_cpu_ratio, 3),
            "workers_ratio": round(scale_ratio, 3),
            "per_round_wrapper_ratio": [round(r, 3) for r in paired_wrapper],
            "per_round_workers_ratio": [round(r, 3) for r in paired],
            "median_wrapper_ratio": round(median_wrapper, 3),
            "median_workers_ratio": round(median_workers, 3),
        }  # fmt: skip
        options.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if median_wrapper >= 0.95 and median_workers >= 1.6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
