"""The --metrics-listen collector, fed a fake Locust runner (no Locust import in pytest)."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from probes.load.locust_metrics import LoadCollector, histogram_buckets


def test_histogram_buckets_are_cumulative_seconds() -> None:
    buckets = dict(histogram_buckets({1: 5, 3: 2, 40: 1, 20000: 1}))
    assert buckets["0.001"] == 5
    assert buckets["0.005"] == 7
    assert buckets["0.05"] == 8
    assert buckets["10.0"] == 8
    assert buckets["+Inf"] == 9


def fake_runner() -> SimpleNamespace:
    search = SimpleNamespace(name="search", method="GET", num_requests=10, num_failures=1,
                             response_times={2: 6, 12: 4}, total_response_time=60)
    total = SimpleNamespace(current_rps=42.5)
    stats = SimpleNamespace(entries={("search", "GET"): search}, total=total)
    return SimpleNamespace(stats=stats, user_count=3, clients={"a": 1, "b": 2})


def test_collector_families_and_labels() -> None:
    registry = CollectorRegistry()
    registry.register(LoadCollector(fake_runner, "search", "eu-west-1"))
    text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    run = {"scenario": "search", "region": "eu-west-1"}
    (requests,) = families["probe_load_requests"].samples
    assert requests.labels == {**run, "method": "GET", "name": "search"} and requests.value == 10
    assert families["probe_load_failures"].samples[0].value == 1
    samples = families["probe_load_request_duration_seconds"].samples
    hist = {(s.name, s.labels.get("le")): s.value for s in samples}
    assert hist[("probe_load_request_duration_seconds_bucket", "0.0025")] == 6
    assert hist[("probe_load_request_duration_seconds_count", None)] == 10
    assert hist[("probe_load_request_duration_seconds_sum", None)] == 0.06
    assert families["probe_load_users"].samples[0].value == 3
    assert families["probe_load_requests_per_second"].samples[0].value == 42.5
    assert families["probe_load_workers"].samples[0].value == 2


def test_collector_before_the_runner_exists() -> None:
    registry = CollectorRegistry()
    registry.register(LoadCollector(lambda: None, "health", ""))
    assert b"probe_load_users" in generate_latest(registry)
