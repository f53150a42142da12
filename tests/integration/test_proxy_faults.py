"""What only the fault proxy does with faults: its own metrics and outcome counters, answering in place
of the upstream, leaving requests in flight alone, and passing on what a rewrite cannot edit.
The fault API and each fault's behaviour are tested on both carriers in test_fault_api_contract.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.faults import Proxy, Upstream, big_body, raw_get, running_proxy, running_upstream
from tests.support.metrics import exact
from tests.support.processes import wait_until


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as running:
        yield running


@pytest.fixture(scope="module")
def running(upstream: Upstream) -> Iterator[Proxy]:
    with running_proxy(upstream.url) as proxy:
        yield proxy


@pytest.fixture
def proxy(running: Proxy) -> Iterator[Proxy]:
    yield running
    running.faults.clear()


def control_metrics(proxy: Proxy) -> str:
    return httpx.get(f"{proxy.control_url}/metrics").text


def active_faults(proxy: Proxy) -> float | None:
    return exact(control_metrics(proxy), "probe_proxy_active_faults")


def test_the_active_faults_gauge_follows_adds_deletes_and_expiry(proxy: Proxy) -> None:
    deleted = proxy.faults.add(type="error", status=500, match={"path": "^/api/"})
    assert active_faults(proxy) == 1
    assert proxy.faults.delete(deleted) == 200
    assert active_faults(proxy) == 0
    proxy.faults.add(type="latency", latency="10ms", ttl="300ms", match={"path": "^/nothing"})
    # No request reaches the proxy meanwhile: the gauge must fall by the TTL alone.
    wait_until(lambda: active_faults(proxy) == 0 and proxy.faults.list() == [], timeout=5,
               what="the expired fault gone from the gauge")


def test_faults_answer_in_place_of_the_upstream(proxy: Proxy, upstream: Upstream) -> None:
    proxy.faults.add(type="error", status=429, body="slow down", match={"path": "^/echo"})
    proxy.faults.add(type="abort", match={"path": "^/api/search"})
    proxy.faults.add(type="unready")
    seen = len(upstream.requests)
    assert proxy.http.get("/echo").status_code == 429
    assert proxy.http.post("/echo", content=b"x").status_code == 429
    with pytest.raises(ConnectionResetError):
        raw_get(proxy.url, "/api/search")
    assert proxy.http.get("/health/ready").status_code == 503
    assert len(upstream.requests) == seen  # the upstream never saw any of them


def test_outcomes_are_counted(proxy: Proxy) -> None:
    outcomes = ("forwarded", "latency", "unready", "error", "abort", "rewrite")

    def counts() -> dict[str, float]:
        text = control_metrics(proxy)
        return {o: exact(text, "probe_proxy_requests_total", {"outcome": o}) or 0.0 for o in outcomes}

    before = counts()
    proxy.http.get("/api/search")
    proxy.faults.add(type="latency", latency="10ms", match={"path": "^/api"})
    proxy.faults.add(type="unready")
    proxy.faults.add(type="error", match={"path": "^/echo"})
    proxy.faults.add(type="abort", match={"path": "^/gone"})
    proxy.faults.add(type="rewrite", match={"path": "^/health/live"},
                     rewrite=[{"path": "$.status", "op": "set", "value": "dead"}])
    proxy.http.get("/api/search")
    proxy.http.get("/health/ready")
    proxy.http.get("/echo")
    with pytest.raises(ConnectionResetError):
        raw_get(proxy.url, "/gone")
    assert proxy.http.get("/health/live").json() == {"status": "dead"}
    after = counts()
    assert {o: after[o] - before[o] for o in outcomes} == {o: 1 for o in outcomes}


def test_requests_in_flight_are_not_disturbed_by_a_new_fault(proxy: Proxy, upstream: Upstream) -> None:
    upstream.gate.clear()
    chunks: list[bytes] = []

    def stream() -> None:
        with httpx.Client(base_url=proxy.url) as client, client.stream("GET", "/gated") as response:
            chunks.extend(response.iter_raw())

    worker = threading.Thread(target=stream)
    worker.start()
    time.sleep(0.2)
    proxy.faults.add(type="abort")
    upstream.gate.set()
    worker.join(5)
    assert b"".join(chunks) == b"first chunk\nsecond chunk\n"


def test_a_rewrite_passes_on_what_is_not_json_untouched(proxy: Proxy) -> None:
    proxy.faults.add(type="rewrite", rewrite=[{"path": "$.hits[0].id", "op": "set", "value": "sku-99999"}])
    assert proxy.http.get("/api/search").json()["hits"] == [{"id": "sku-99999"}]  # the fault is active
    size = 300 * 1024
    big = proxy.http.get(f"/big?bytes={size}")
    assert big.content == big_body(size)
    assert "x-probe-fault" not in big.headers
