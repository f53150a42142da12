"""The Elasticsearch results sink against the fake Elasticsearch: documents and their fields, the daily
index and template, partial bulk failures, an outage and recovery, and a `write` that never blocks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from probes.agent.self_metrics import AgentMetrics
from probes.identity import AgentIdentity
from probes.result import ProbeResult, Sample
from probes.sinks import build_sink
from probes.sinks.elasticsearch import ElasticsearchSink, ElasticsearchSinkConfig
from tests.support.es_server import FakeElasticsearch

T = TypeVar("T")
IDENTITY = AgentIdentity(region="eu-west-1", agent="agent-7")


@pytest.fixture
def es() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch() as server:
        yield server


def sink_config(es: FakeElasticsearch, **fields: Any) -> ElasticsearchSinkConfig:
    defaults: dict[str, Any] = {"hosts": [es.url], "flush_interval": "50ms", "retry_backoff": "50ms",
                                "max_backoff": "200ms", "timeout": "1s", "max_retries": 3}
    return ElasticsearchSinkConfig.model_validate({**defaults, **fields})


def result(probe: str = "api", success: bool = True, **fields: Any) -> ProbeResult:
    base: dict[str, Any] = {"probe": probe, "type": "http", "success": success, "duration_seconds": 0.1234}
    return ProbeResult(**{**base, **fields})


def run_with_sink(config: ElasticsearchSinkConfig,
                  body: Callable[[ElasticsearchSink, AgentMetrics], Awaitable[T]]) -> T:
    metrics = AgentMetrics(IDENTITY)

    async def main() -> T:
        sink = build_sink("elasticsearch", config, IDENTITY, metrics)
        assert isinstance(sink, ElasticsearchSink)
        await sink.start()
        try:
            return await body(sink, metrics)
        finally:
            await sink.aclose()

    return asyncio.run(main())


def dropped(metrics: AgentMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "probe_agent_sink_dropped_total", {"region": "eu-west-1", "agent": "agent-7", "sink": "elasticsearch"})
    return value or 0.0


def queue_gauge(metrics: AgentMetrics) -> float | None:
    return metrics.registry.get_sample_value(
        "probe_agent_sink_queue_size", {"region": "eu-west-1", "agent": "agent-7", "sink": "elasticsearch"})


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_documents_arrive_with_ecs_fields_in_the_daily_index(es: FakeElasticsearch) -> None:
    started = datetime(2026, 3, 4, 23, 59, 59, 250000, tzinfo=UTC).timestamp()
    ok = result("api-health", started_at=started, status_code=200, target="http://127.0.0.1:8000/health",
                samples=[Sample("probe_search_hits", 12.0), Sample("x", 1.0, (("color", "green"),))])
    bad = result("api-search", success=False, reason="status", message="HTTP 503", status_code=503,
                 degraded=False, started_at=started + 1)

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> None:
        sink.write(ok)
        sink.write(bad)
        await eventually(lambda: len(es.docs("probe-results-*")) == 2, what="two documents")

    run_with_sink(sink_config(es), body)
    # The day is the run's (UTC), not the flush's: 23:59:59 and 00:00:00 go to different indices.
    assert sorted(es.indices) == ["probe-results-2026.03.04", "probe-results-2026.03.05"]
    [up] = es.docs("probe-results-2026.03.04")
    assert up["@timestamp"] == "2026-03-04T23:59:59.250Z"
    assert up["monitor"] == {"id": "api-health", "name": "api-health", "type": "http", "status": "up",
                             "duration": {"us": 123400}}
    assert up["observer"] == {"name": "agent-7", "geo": {"name": "eu-west-1"}}
    assert up["http"] == {"response": {"status_code": 200}}
    assert up["url"] == {"full": "http://127.0.0.1:8000/health"}
    assert up["probe"] == {"degraded": False, "attempts": 1, "samples": {"probe_search_hits": 12.0}}
    assert "error" not in up
    [down] = es.docs("probe-results-2026.03.05")
    assert down["monitor"]["status"] == "down"
    assert down["error"] == {"type": "status", "message": "HTTP 503"}
    assert down["http"]["response"]["status_code"] == 503
    template = es.templates["probe-results"]
    assert template["index_patterns"] == ["probe-results-*"]
    assert template["template"]["mappings"]["properties"]["monitor"]["properties"]["status"] == {"type": "keyword"}


def test_batches_are_bulk_requests(es: FakeElasticsearch) -> None:
    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> None:
        for i in range(25):
            sink.write(result(f"p{i}"))
        await eventually(lambda: len(es.docs()) == 25, what="25 documents")
        await eventually(lambda: queue_gauge(metrics) == 0, what="an empty queue")

    run_with_sink(sink_config(es, batch_size=10, flush_interval="1s"), body)
    assert es.count("PUT", r"^/_bulk$") + es.count("POST", r"^/_bulk$") == 3


def test_partial_bulk_failure_retries_retryable_and_drops_the_rest(es: FakeElasticsearch) -> None:
    es.reject_bulk(429, lambda _index, doc: doc["monitor"]["name"].startswith("busy"), times=4)
    es.reject_bulk(400, lambda _index, doc: doc["monitor"]["name"] == "bad")

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> float:
        for name in ("ok-1", "busy-1", "bad", "busy-2", "ok-2"):
            sink.write(result(name))
        await eventually(lambda: len(es.docs()) == 4, what="four documents")
        await eventually(lambda: dropped(metrics) == 1, what="one drop")
        return dropped(metrics)

    assert run_with_sink(sink_config(es), body) == 1
    names = sorted(d["monitor"]["name"] for d in es.docs())
    assert names == ["busy-1", "busy-2", "ok-1", "ok-2"]
    assert es.count("PUT", "_bulk") + es.count("POST", "_bulk") >= 3  # the busy ones were sent again


def test_retryable_item_gives_up_after_max_retries(es: FakeElasticsearch) -> None:
    es.reject_bulk(503, lambda _index, doc: doc["monitor"]["name"] == "doomed")

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> None:
        sink.write(result("doomed"))
        sink.write(result("fine"))
        await eventually(lambda: dropped(metrics) == 1, what="the drop")

    run_with_sink(sink_config(es, max_retries=2), body)
    assert [d["monitor"]["name"] for d in es.docs()] == ["fine"]
    assert es.count("PUT", "_bulk") + es.count("POST", "_bulk") == 3  # first try + 2 retries


def test_whole_bulk_request_503_is_an_outage_not_a_loss(es: FakeElasticsearch) -> None:
    es.fail(503, path="_bulk", times=3)

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> float:
        sink.write(result("a"))
        await eventually(lambda: len(es.docs()) == 1, what="the document")
        return dropped(metrics)

    assert run_with_sink(sink_config(es, max_retries=0), body) == 0


def test_outage_and_recovery_within_the_queue_bound(es: FakeElasticsearch) -> None:
    es.go_away()

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> None:
        for i in range(30):
            sink.write(result(f"r{i:02d}"))
        assert dropped(metrics) == 10  # beyond queue_size: counted, not kept
        assert queue_gauge(metrics) == 20
        await asyncio.sleep(0.5)  # a few failed rounds with backoff
        assert es.docs() == []
        await asyncio.to_thread(es.come_back)
        await eventually(lambda: len(es.docs()) == 20, what="the queued results")
        await asyncio.sleep(0.1)
        assert len(es.docs()) == 20
        assert dropped(metrics) == 10
        assert queue_gauge(metrics) == 0

    run_with_sink(sink_config(es, queue_size=20, batch_size=5), body)
    assert sorted(d["monitor"]["name"] for d in es.docs()) == [f"r{i:02d}" for i in range(20)]


def test_write_never_blocks_while_elasticsearch_hangs(es: FakeElasticsearch) -> None:
    es.delay = 30.0  # accepts connections, never answers in time

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> tuple[list[float], float]:
        await asyncio.sleep(0.2)  # the first bulk (or template) request is now hanging
        times = []
        for i in range(2000):  # more than queue_size: the later writes are drops
            t0 = time.perf_counter()
            sink.write(result(f"p{i}"))
            times.append(time.perf_counter() - t0)
        # The event loop stays free too: nothing in the sink waits synchronously.
        t0 = time.perf_counter()
        await asyncio.sleep(0.05)
        return sorted(times), time.perf_counter() - t0 - 0.05

    times, lag = run_with_sink(sink_config(es, queue_size=500, timeout="5s"), body)
    # Loose bounds: a blocking write would wait for the 5s bulk timeout; a busy shared machine can
    # still deschedule the process for a moment, so the slowest write is only bounded far from that.
    assert times[int(len(times) * 0.99)] < 0.05
    assert times[-1] < 1.0
    assert sum(times) < 2.0
    assert lag < 0.5


def test_template_403_is_logged_once_and_writing_goes_on(es: FakeElasticsearch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    es.fail(403, path="^/_index_template/")

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> None:
        sink.write(result("a"))
        await eventually(lambda: len(es.docs()) == 1, what="the document")
        sink.write(result("b"))
        await eventually(lambda: len(es.docs()) == 2, what="the second document")

    with caplog.at_level(logging.WARNING, logger="probes.sinks.elasticsearch"):
        run_with_sink(sink_config(es), body)
    assert es.count("PUT", "^/_index_template/") == 1
    assert sum("not allowed to create index template" in r.message for r in caplog.records) == 1


def test_existing_template_is_left_alone(es: FakeElasticsearch) -> None:
    es.templates["probe-results"] = {"index_patterns": ["probe-results-*"], "mine": True}

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> None:
        sink.write(result("a"))
        await eventually(lambda: len(es.docs()) == 1, what="the document")

    run_with_sink(sink_config(es), body)
    assert es.templates["probe-results"]["mine"] is True


def test_no_template_when_disabled(es: FakeElasticsearch) -> None:
    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> None:
        sink.write(result("a"))
        await eventually(lambda: len(es.docs()) == 1, what="the document")

    run_with_sink(sink_config(es, create_template=False, index="history"), body)
    assert es.templates == {}
    assert [name[:8] for name in es.indices] == ["history-"]


def test_close_while_elasticsearch_is_away_counts_what_is_lost(es: FakeElasticsearch) -> None:
    es.go_away()

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> AgentMetrics:
        for i in range(7):
            sink.write(result(f"r{i}"))
        await asyncio.sleep(0.1)
        return metrics

    started = time.monotonic()
    metrics = run_with_sink(sink_config(es), body)
    assert time.monotonic() - started < 4
    assert dropped(metrics) == 7
    assert queue_gauge(metrics) == 0


def test_unusable_tls_files_drop_and_count(tmp_path: Any) -> None:
    config = ElasticsearchSinkConfig.model_validate(
        {"hosts": ["https://127.0.0.1:9"], "tls": {"ca_file": str(tmp_path / "missing.pem")}})

    async def body(sink: ElasticsearchSink, metrics: AgentMetrics) -> float:
        sink.write(result("a"))
        return dropped(metrics)

    assert run_with_sink(config, body) == 1
