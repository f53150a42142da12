"""Live Prometheus metrics of a running load test, read from Locust's own stats at scrape time.

Nothing is recorded per request: the collector turns Locust's counters and its rounded response-time
histogram into Prometheus families when scraped, so `--metrics-listen` costs the load generator
nothing between scrapes. Duck-typed on the runner, so it needs no Locust import (and unit tests can
feed it a fake runner).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RUN_LABELS = ["scenario", "region"]
REQUEST_LABELS = [*RUN_LABELS, "method", "name"]


def histogram_buckets(response_times: dict[Any, int]) -> list[tuple[str, float]]:
    """Cumulative Prometheus buckets from Locust's {rounded_ms: count} dict."""
    counts = [0] * (len(BUCKETS_SECONDS) + 1)
    for rounded_ms, count in response_times.items():
        seconds = float(rounded_ms) / 1000
        for index, upper in enumerate(BUCKETS_SECONDS):
            if seconds <= upper:
                counts[index] += count
                break
        else:
            counts[-1] += count
    buckets: list[tuple[str, float]] = []
    running = 0
    for upper, count in zip((*BUCKETS_SECONDS, float("inf")), counts, strict=True):
        running += count
        buckets.append(("+Inf" if upper == float("inf") else repr(upper), float(running)))
    return buckets


class LoadCollector(Collector):
    def __init__(self, runner: Callable[[], Any], scenario: str, region: str) -> None:
        self._runner = runner
        self._run_labels = [scenario, region]

    def collect(self) -> Iterator[Metric]:
        runner = self._runner()
        requests = CounterMetricFamily(
            "probe_load_requests", "Requests made by the load test, by request name.", labels=REQUEST_LABELS
        )
        failures = CounterMetricFamily(
            "probe_load_failures", "Failed requests of the load test, by request name.", labels=REQUEST_LABELS
        )
        latency = HistogramMetricFamily(
            "probe_load_request_duration_seconds",
            "Response times of the load test, by request name (Locust's 2-significant-digit buckets).",
            labels=REQUEST_LABELS,
        )
        users = GaugeMetricFamily("probe_load_users", "Simulated users currently running.", labels=RUN_LABELS)
        rps = GaugeMetricFamily(
            "probe_load_requests_per_second",
            "Current request rate over Locust's sliding window.",
            labels=RUN_LABELS,
        )
        workers = GaugeMetricFamily(
            "probe_load_workers", "Workers connected to the master (0 when running alone).", labels=RUN_LABELS
        )
        if runner is not None:
            stats = runner.stats
            for entry in list(stats.entries.values()):
                labels = [*self._run_labels, str(entry.method or ""), str(entry.name)]
                requests.add_metric(labels, entry.num_requests)
                failures.add_metric(labels, entry.num_failures)
                latency.add_metric(
                    labels,
                    buckets=histogram_buckets(dict(entry.response_times)),
                    sum_value=entry.total_response_time / 1000,
                )
            users.add_metric(self._run_labels, runner.user_count)
            rps.add_metric(self._run_labels, stats.total.current_rps)
            clients = getattr(runner, "clients", None)
            workers.add_metric(self._run_labels, len(clients) if clients is not None else 0)
        yield from (requests, failures, latency, users, rps, workers)
