"""An endurance run of a real agent, shared by the bounded test and the longer benchmark: many probes at
a short interval against the demo API (`probe-agent target`), hot reloads alternating two configs
(POST /-/reload), and an Elasticsearch results sink that keeps going away and coming back. The agent's
RSS and open file descriptors are sampled all along; runs, missed runs and reloads are counted from its
own metrics and answers."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.es_server import FakeElasticsearch
from tests.support.metrics import samples, scrape
from tests.support.processes import Started, cli, started

EXTRA_PROBES = 10
"""Probes that exist only in the second config: each reload adds or removes them (and their series)."""


@dataclass
class Figures:
    probes: int
    interval: float
    seconds: float = 0.0
    rss_mb: list[float] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    warm_rss_mb: float = 0.0
    warm_fds: int = 0
    reloads_sent: int = 0
    reloads_ok: int = 0
    reload_errors: list[str] = field(default_factory=list)
    reload_seconds: list[float] = field(default_factory=list)
    runs: int = 0
    missed: int = 0
    runs_last_window: dict[str, float] = field(default_factory=dict)
    es_outages: int = 0
    es_docs: int = 0
    es_dropped: float = 0.0
    leftover_extra_series: int = 0
    probes_configured: float = 0.0

    def summary(self) -> list[str]:
        rss, fds = self.rss_mb, self.fds
        reload_ms = sorted(self.reload_seconds)
        p50 = reload_ms[len(reload_ms) // 2] * 1000 if reload_ms else float("nan")
        slowest = reload_ms[-1] * 1000 if reload_ms else float("nan")
        return [
            f"{self.probes} probes at {self.interval * 1000:.0f} ms for {self.seconds:.0f} s",
            f"RSS MB: start {rss[0]:.1f}, after warm-up {self.warm_rss_mb:.1f}, end {rss[-1]:.1f}, "
            f"peak {max(rss):.1f}",
            f"open fds: start {fds[0]}, after warm-up {self.warm_fds}, end {fds[-1]}, peak {max(fds)}",
            f"runs {self.runs} ({self.runs / max(self.seconds, 1):.0f}/s), missed (overlap) {self.missed}; "
            f"slowest probe in the last window: {min(self.runs_last_window.values(), default=0):.0f} runs",
            f"reloads: {self.reloads_ok}/{self.reloads_sent} answered 200 (p50 {p50:.0f} ms, slowest {slowest:.0f} ms)"
            + (f"; errors: {self.reload_errors[:3]}" if self.reload_errors else ""),
            f"Elasticsearch outages {self.es_outages}; documents received {self.es_docs}; "
            f"sink dropped {self.es_dropped:.0f}",
            "RSS MB every ~5 s: " + " ".join(f"{v:.0f}" for v in rss[::10]),
            "open fds every ~5 s: " + " ".join(str(v) for v in fds[::10]),
        ]


def _config(target: str, es: str, probes: int, interval: float, variant: int, max_concurrency: int) -> str:
    entries: list[dict[str, Any]] = []
    for i in range(probes):
        entry: dict[str, Any] = {"name": f"p{i:04d}", "type": "http", "url": f"{target}/health"}
        if variant and i % 2:
            entry["expect"] = {"status": [200, 204]}  # a changed probe is rebuilt on every reload
        entries.append(entry)
    if variant:
        entries += [{"name": f"extra-{i}", "type": "http", "url": f"{target}/health"} for i in range(EXTRA_PROBES)]
    return yaml.safe_dump({
        "agent": {"region": "endurance", "id": "e1", "listen": "127.0.0.1:0", "max_concurrency": max_concurrency},
        "defaults": {"interval": f"{interval * 1000:.0f}ms", "timeout": f"{interval * 1000 * 0.9:.0f}ms"},
        "probes": entries,
        "sinks": {"elasticsearch": {"hosts": [es], "index": "endurance", "flush_interval": "250ms",
                                    "queue_size": 50_000, "batch_size": 2_000, "max_backoff": "1s",
                                    "timeout": "2s"}},
    }, sort_keys=False)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _post(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _total(text: str, name: str, **labels: str) -> float:
    return sum(v for _, v in samples(text, name, **labels))


def _runs_by_probe(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, v in samples(text, "probe_runs_total"):
        out[labels["probe"]] = out.get(labels["probe"], 0.0) + v
    return out


@contextlib.contextmanager
def _sampler(pid: int, figures: Figures, every: float = 0.5) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                figures.rss_mb.append(_rss_mb(pid))
                figures.fds.append(_fds(pid))
            stop.wait(every)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def run_endurance(workdir: Path, *, probes: int = 500, interval: float = 0.1, seconds: float = 30,
                  reloads: int = 200, es_flap: float = 4.0, warmup: float = 5.0,
                  max_concurrency: int = 100) -> Figures:
    """Everything it starts is stopped when it returns."""
    figures = Figures(probes=probes, interval=interval)
    with FakeElasticsearch() as es, started(cli("target", "--listen", "127.0.0.1:0"), expect=["target"]) as target:
        configs = [_config(target.urls["target"], es.url, probes, interval, v, max_concurrency) for v in (0, 1)]
        path = workdir / "agent.yaml"
        path.write_text(configs[0])
        with started(cli("run", "--config", str(path)), expect=["agent"], timeout=60) as agent:
            _drive(agent, path, configs, es, figures, seconds=seconds, reloads=reloads, es_flap=es_flap,
                   warmup=warmup)
    return figures


def _drive(agent: Started, path: Path, configs: list[str], es: FakeElasticsearch, figures: Figures, *,
           seconds: float, reloads: int, es_flap: float, warmup: float) -> None:
    url = agent.urls["agent"]
    pid = agent.proc.pid
    with _sampler(pid, figures):
        time.sleep(warmup)
        # One reload cycle first, so the figures after warm-up include both configs' probers.
        for variant in (1, 0):
            path.write_text(configs[variant])
            _post(url + "/-/reload")
        time.sleep(1.0)
        figures.warm_rss_mb, figures.warm_fds = _rss_mb(pid), _fds(pid)
        before = scrape(url + "/metrics")
        start = time.monotonic()
        next_flap = start + es_flap
        gap = seconds / max(reloads, 1)
        mid_window: dict[str, float] = {}
        for index in range(reloads):
            variant = 1 if index % 2 == 0 else 0  # 200 reloads end on the first config
            path.write_text(configs[variant])
            sent = time.monotonic()
            status, body = _post(url + "/-/reload")
            figures.reload_seconds.append(time.monotonic() - sent)
            figures.reloads_sent += 1
            if status == 200:
                figures.reloads_ok += 1
            else:
                figures.reload_errors.append(f"{status}: {body[:200]}")
            now = time.monotonic()
            if now >= next_flap:
                if es.listening:
                    es.go_away()
                    figures.es_outages += 1
                else:
                    es.come_back()
                with es._lock:  # the fake keeps every document; the count is what matters here
                    figures.es_docs += sum(len(docs) for docs in es.indices.values())
                    es.indices.clear()
                next_flap = now + es_flap
            if not mid_window and now - start >= seconds - 10:
                mid_window = _runs_by_probe(scrape(url + "/metrics"))
            time.sleep(max(0.0, start + gap * (index + 1) - time.monotonic()))
        if not es.listening:
            es.come_back()
        time.sleep(max(0.0, start + seconds - time.monotonic()))
        time.sleep(2.0)  # let the sink deliver what it held through the last outage
        after = scrape(url + "/metrics")
        figures.seconds = time.monotonic() - start
    with es._lock:
        figures.es_docs += sum(len(docs) for docs in es.indices.values())
    figures.runs = int(_total(after, "probe_runs_total") - _total(before, "probe_runs_total"))
    figures.missed = int(_total(after, "probe_agent_missed_runs_total")
                         - _total(before, "probe_agent_missed_runs_total"))
    end_runs = _runs_by_probe(after)
    figures.runs_last_window = {p: end_runs.get(p, 0.0) - mid_window.get(p, 0.0)
                                for p in end_runs if p.startswith("p")}
    figures.es_dropped = _total(after, "probe_agent_sink_dropped_total")
    figures.leftover_extra_series = len([s for s in samples(after, "probe_success")
                                         if s[0]["probe"].startswith("extra-")])
    figures.probes_configured = _total(after, "probe_agent_probes")
