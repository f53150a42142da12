"""The `elasticsearch` probe type against the fake Elasticsearch (tests/support/es_server.py), through the
official async client: cluster_health, search, freshness, and a misbehaving or absent Elasticsearch."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from probes.probers import build_prober
from probes.probers.base import RunContext
from probes.probers.elasticsearch import ElasticsearchProbeConfig, ElasticsearchProber
from probes.result import ProbeResult
from tests.support.es_server import FakeElasticsearch
from tests.support.processes import wait_until


@pytest.fixture
def es() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch() as server:
        yield server


def probe_config(es_url: str, **fields: Any) -> ElasticsearchProbeConfig:
    config = ElasticsearchProbeConfig.model_validate(
        {"name": "es", "type": "elasticsearch", "hosts": [es_url], "interval": 10.0, "timeout": 2.0,
         **fields})
    return config


async def _run(prober: ElasticsearchProber, timeout: float, runs: int) -> list[ProbeResult]:
    results = []
    try:
        for run in range(runs):
            ctx = RunContext(run=run, timeout=timeout, http=None)  # type: ignore[arg-type]
            results.append(await prober.run(ctx))
    finally:
        await prober.aclose()
    return results


def run_probe(es_url: str, *, timeout: float = 2.0, runs: int = 1, **fields: Any) -> list[ProbeResult]:
    prober = build_prober(probe_config(es_url, timeout=timeout, **fields))
    assert isinstance(prober, ElasticsearchProber)
    return asyncio.run(_run(prober, timeout, runs))


def samples(result: ProbeResult) -> dict[str, float]:
    out = {}
    for s in result.samples:
        key = s.name + "".join(f"{{{k}={v}}}" for k, v in s.labels)
        out[key] = s.value
    return out


# ---- cluster_health ------------------------------------------------------------------------------------


def test_cluster_green_succeeds_with_node_and_shard_metrics(es: FakeElasticsearch) -> None:
    es.health.update(number_of_nodes=5, number_of_data_nodes=4, unassigned_shards=0)
    [result] = run_probe(es.url, check="cluster_health")
    assert result.success and not result.degraded, result
    assert result.status_code == 200
    assert result.target == f"{es.url}/_cluster/health"
    got = samples(result)
    assert got["probe_elasticsearch_cluster_status{color=green}"] == 1
    assert got["probe_elasticsearch_cluster_status{color=yellow}"] == 0
    assert got["probe_elasticsearch_cluster_status{color=red}"] == 0
    assert got["probe_elasticsearch_nodes"] == 5
    assert got["probe_elasticsearch_data_nodes"] == 4
    assert got["probe_elasticsearch_unassigned_shards"] == 0
    assert all(s.help for s in result.samples)


def test_cluster_yellow_succeeds_degraded(es: FakeElasticsearch) -> None:
    es.health.update(status="yellow", unassigned_shards=7, active_shards_percent_as_number=75.0)
    [result] = run_probe(es.url, check="cluster_health")
    assert result.success and result.degraded
    assert samples(result)["probe_elasticsearch_active_shards_ratio"] == 0.75
    assert samples(result)["probe_elasticsearch_cluster_status{color=yellow}"] == 1
    assert samples(result)["probe_elasticsearch_unassigned_shards"] == 7
    assert "yellow" in result.message


def test_cluster_red_fails_with_reason_assertion(es: FakeElasticsearch) -> None:
    es.health.update(status="red", unassigned_shards=12, number_of_nodes=2)
    [result] = run_probe(es.url, check="cluster_health")
    assert not result.success
    assert result.reason == "assertion"
    assert "red" in result.message and "green or yellow" in result.message
    # The metrics are still there: a dashboard shows *why* the cluster is red.
    got = samples(result)
    assert got["probe_elasticsearch_cluster_status{color=red}"] == 1
    assert got["probe_elasticsearch_unassigned_shards"] == 12
    assert got["probe_elasticsearch_nodes"] == 2


def test_cluster_yellow_fails_when_only_green_is_accepted(es: FakeElasticsearch) -> None:
    es.health.update(status="yellow")
    [result] = run_probe(es.url, check="cluster_health", expect={"cluster_status": ["green"]})
    assert not result.success and result.reason == "assertion"


# ---- search ------------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(es: FakeElasticsearch) -> FakeElasticsearch:
    es.visibility_delay = 0.0
    for i, title in enumerate(["red laptop", "blue laptop", "green phone"]):
        es.indices.setdefault("products", {})
        es._store("products", f"sku-{i}", {"title": title, "sku": f"sku-{i}"}, create=True, refresh="true")
    return es


def test_search_query_dsl_min_hits(catalogue: FakeElasticsearch) -> None:
    [ok] = run_probe(catalogue.url, check="search", index="products",
                     query={"match": {"title": "laptop"}}, expect={"min_hits": 2})
    assert ok.success, ok
    assert samples(ok)["probe_search_hits"] == 2
    assert "probe_elasticsearch_took_seconds" in samples(ok)
    [few] = run_probe(catalogue.url, check="search", index="products",
                      query={"match": {"title": "phone"}}, expect={"min_hits": 2})
    assert not few.success and few.reason == "assertion"
    assert "1 hits" in few.message
    assert samples(few)["probe_search_hits"] == 1


def test_search_q_string(catalogue: FakeElasticsearch) -> None:
    [result] = run_probe(catalogue.url, check="search", index="products", q="title:phone")
    assert result.success
    assert samples(result)["probe_search_hits"] == 1


def test_search_max_took_ms(catalogue: FakeElasticsearch) -> None:
    catalogue.took_ms = 250
    [slow] = run_probe(catalogue.url, check="search", index="products", expect={"max_took_ms": 100})
    assert not slow.success and slow.reason == "latency"
    assert samples(slow)["probe_elasticsearch_took_seconds"] == pytest.approx(0.25)
    catalogue.took_ms = 20
    [fast] = run_probe(catalogue.url, check="search", index="products", expect={"max_took_ms": 100})
    assert fast.success


def test_search_missing_index_fails_with_status(es: FakeElasticsearch) -> None:
    [result] = run_probe(es.url, check="search", index="nope")
    assert not result.success and result.reason == "status"
    assert result.status_code == 404
    assert "index_not_found_exception" in result.message


# ---- freshness ---------------------------------------------------------------------------------------


def test_freshness_measures_the_delay_and_deletes_the_canary(es: FakeElasticsearch) -> None:
    es.visibility_delay = 0.4
    [result] = run_probe(es.url, check="freshness", index="probe-canary", timeout=3.0, freshness_poll="50ms")
    assert result.success, result
    freshness = samples(result)["probe_index_freshness_seconds"]
    assert 0.4 <= freshness < 1.2  # the delay, plus at most a poll and a search (loose: shared CI machines)
    assert es.doc_ids("probe-canary") == []
    assert es.count("PUT", r"^/probe-canary/_(doc|create)/es-") == 1
    assert es.count("DELETE", r"^/probe-canary/_doc/es-") == 1


def test_freshness_canary_never_visible_times_out_and_is_deleted(es: FakeElasticsearch) -> None:
    es.visibility_delay = None
    started = time.monotonic()
    [result] = run_probe(es.url, check="freshness", index="probe-canary", timeout=0.6, freshness_poll="50ms")
    assert time.monotonic() - started < 3
    assert not result.success and result.reason == "timeout"
    assert "canary not searchable" in result.message
    # The freshness gauge shows at least the time waited, so a freshness alert fires too.
    assert samples(result)["probe_index_freshness_seconds"] >= 0.5
    assert es.doc_ids("probe-canary") == []
    assert es.count("DELETE", r"^/probe-canary/_doc/es-") == 1


def test_freshness_max_freshness(es: FakeElasticsearch) -> None:
    es.visibility_delay = 0.3
    [result] = run_probe(es.url, check="freshness", index="probe-canary", timeout=2.0, freshness_poll="50ms",
                         expect={"max_freshness": "100ms"})
    assert not result.success and result.reason == "latency"
    assert es.doc_ids("probe-canary") == []


def test_freshness_canary_deleted_when_the_run_is_cancelled(es: FakeElasticsearch) -> None:
    es.visibility_delay = None
    prober = build_prober(probe_config(es.url, check="freshness", index="probe-canary", timeout=5.0,
                                       freshness_poll="50ms"))

    async def scenario() -> None:
        ctx = RunContext(run=0, timeout=5.0, http=None)  # type: ignore[arg-type]
        task = asyncio.create_task(prober.run(ctx))
        await asyncio.to_thread(wait_until, lambda: es.doc_ids("probe-canary"), 3, 0.02, "the canary")
        task.cancel()  # what the scheduler does to an overrunning run
        with pytest.raises(asyncio.CancelledError):
            await task
        await prober.aclose()  # waits for the shielded delete

    asyncio.run(scenario())
    assert es.doc_ids("probe-canary") == []


def test_freshness_canary_left_behind_is_deleted_after_the_next_run(es: FakeElasticsearch) -> None:
    es.visibility_delay = None
    prober = build_prober(probe_config(es.url, check="freshness", index="probe-canary", timeout=0.3,
                                       freshness_poll="50ms"))

    async def scenario() -> tuple[list[str], list[str]]:
        ctx = RunContext(run=0, timeout=0.3, http=None)  # type: ignore[arg-type]
        es.fail(503, method="DELETE", times=1)  # Elasticsearch refuses the first delete
        first = await prober.run(ctx)
        assert first.reason == "timeout"
        after_first = es.doc_ids("probe-canary")
        await prober.run(ctx)
        await prober.aclose()
        return after_first, es.doc_ids("probe-canary")

    after_first, after_second = asyncio.run(scenario())
    assert len(after_first) == 1
    assert after_second == []
    assert es.count("DELETE", r"^/probe-canary/_doc/") == 3


def test_freshness_refused_canary_is_not_deleted(es: FakeElasticsearch) -> None:
    es.fail(429, method="PUT", path="^/probe-canary/_doc/")
    [result] = run_probe(es.url, check="freshness", index="probe-canary")
    assert not result.success and result.reason == "status" and result.status_code == 429
    assert es.count("DELETE", "probe-canary") == 0  # never stored, so nothing to clean up


# ---- a misbehaving Elasticsearch ---------------------------------------------------------------------


def test_es_down_fails_with_connection() -> None:
    with FakeElasticsearch() as es:
        url = es.url
    results = run_probe(url, check="cluster_health", runs=2)
    for result in results:
        assert not result.success and result.reason == "connection", result
        assert "cannot connect" in result.message


def test_es_slow_fails_with_timeout(es: FakeElasticsearch) -> None:
    es.delay = 3.0
    started = time.monotonic()
    [result] = run_probe(es.url, check="cluster_health", timeout=0.3)
    assert time.monotonic() - started < 2
    assert not result.success and result.reason == "timeout"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_es_error_status_fails_with_status(es: FakeElasticsearch, status: int) -> None:
    es.fail(status)
    for check, extra in (("cluster_health", {}), ("search", {"index": "x"}),
                         ("freshness", {"index": "probe-canary"})):
        [result] = run_probe(es.url, check=check, **extra)
        assert not result.success and result.reason == "status", (check, result)
        assert result.status_code == status
        assert f"HTTP {status}" in result.message


def test_not_elasticsearch_fails_with_protocol(es: FakeElasticsearch) -> None:
    es.product_header = False  # any other HTTP server answering 200: the client refuses it
    [result] = run_probe(es.url, check="cluster_health")
    assert not result.success and result.reason == "protocol"
    assert "not Elasticsearch" in result.message


def test_es_goes_away_and_comes_back(es: FakeElasticsearch) -> None:
    prober = build_prober(probe_config(es.url, check="cluster_health", timeout=1.0))

    async def scenario() -> list[ProbeResult]:
        ctx = RunContext(run=0, timeout=1.0, http=None)  # type: ignore[arg-type]
        results = [await prober.run(ctx)]
        await asyncio.to_thread(es.go_away)
        results.append(await prober.run(ctx))
        await asyncio.to_thread(es.come_back)
        results.append(await prober.run(ctx))
        await prober.aclose()
        return results

    up, down, back = asyncio.run(scenario())
    assert up.success and not down.success and back.success, (up, down, back)
    assert down.reason == "connection"


def test_one_client_per_prober(es: FakeElasticsearch) -> None:
    prober = build_prober(probe_config(es.url, check="cluster_health"))
    assert isinstance(prober, ElasticsearchProber)

    async def scenario() -> set[int]:
        ids = set()
        ctx = RunContext(run=0, timeout=1.0, http=None)  # type: ignore[arg-type]
        for _ in range(3):
            await prober.run(ctx)
            ids.add(id(prober._client))
        await prober.aclose()
        return ids

    assert len(asyncio.run(scenario())) == 1


def test_tls_with_ca_file_client_certificate_and_insecure_skip_verify(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca.configure_trust(server)
    server.verify_mode = ssl.CERT_OPTIONAL
    ca_file, client_pem = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.issue_cert("probe-agent").private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    with FakeElasticsearch(ssl_context=server) as es:
        assert es.url.startswith("https://")
        [trusted] = run_probe(es.url, check="cluster_health", tls={"ca_file": str(ca_file)})
        [mutual] = run_probe(es.url, check="cluster_health",
                             tls={"ca_file": str(ca_file), "cert_file": str(client_pem)})
        [untrusted] = run_probe(es.url, check="cluster_health")
        [insecure] = run_probe(es.url, check="cluster_health", tls={"insecure_skip_verify": True})
    assert trusted.success and mutual.success and insecure.success, (trusted, mutual, insecure)
    assert not untrusted.success and untrusted.reason == "tls", untrusted
    assert "certificate" in untrusted.message.lower()
    server.verify_mode = ssl.CERT_REQUIRED
    with FakeElasticsearch(ssl_context=server) as es:
        [anonymous] = run_probe(es.url, check="cluster_health", tls={"ca_file": str(ca_file)})
        [mutual] = run_probe(es.url, check="cluster_health",
                             tls={"ca_file": str(ca_file), "cert_file": str(client_pem)})
    assert mutual.success, mutual
    assert not anonymous.success and anonymous.reason in ("tls", "connection"), anonymous


def test_unusable_tls_files_fail_with_tls_not_a_traceback(tmp_path: Any) -> None:
    [result] = run_probe("https://127.0.0.1:9", check="cluster_health",
                         tls={"ca_file": str(tmp_path / "missing.pem")})
    assert not result.success and result.reason == "tls"


def test_api_key_and_basic_auth_are_sent(es: FakeElasticsearch) -> None:
    run_probe(es.url, check="cluster_health", api_key="c2VjcmV0")
    run_probe(es.url, check="cluster_health", username="probe", password="pw")
    auth = [r.headers.get("authorization") for r in es.requests]
    assert auth == ["ApiKey c2VjcmV0", "Basic cHJvYmU6cHc="]
