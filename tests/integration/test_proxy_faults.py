"""Faults applied by the proxy, driven through its control listener."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.faults import Proxy, Upstream, raw_get, running_proxy, running_upstream, timed_get
from tests.support.metrics import exact


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


def test_the_control_api_needs_the_token(proxy: Proxy) -> None:
    url = f"{proxy.control_url}/-/faults"
    assert httpx.get(url).status_code == 401
    assert httpx.post(url, headers={"Authorization": "Bearer nope"}, json={"type": "abort"}).status_code == 403
    assert proxy.faults.list() == []


def test_without_a_token_the_control_api_has_no_fault_routes(upstream: Upstream) -> None:
    with running_proxy(upstream.url, token=None) as bare:
        assert httpx.get(f"{bare.control_url}/-/faults", headers={"Authorization": "Bearer x"}).status_code == 404
        assert httpx.get(f"{bare.control_url}/metrics").status_code == 200
        assert bare.http.get("/api/search").status_code == 200


def test_faults_are_listed_counted_and_deleted(proxy: Proxy) -> None:
    fault_id = proxy.faults.add(type="error", status=500, match={"path": "^/api/"})
    assert exact(control_metrics(proxy), "probe_proxy_active_faults") == 1
    assert proxy.http.get("/api/search").status_code == 500
    assert proxy.faults.delete(fault_id) == 200
    assert proxy.http.get("/api/search").status_code == 200
    assert exact(control_metrics(proxy), "probe_proxy_active_faults") == 0


def test_latency_fault_delays_then_forwards(proxy: Proxy) -> None:
    proxy.faults.add(type="latency", latency="300ms", match={"path": "^/api/search"})
    slow, slow_elapsed = timed_get(proxy.http, "/api/search")
    fast, fast_elapsed = timed_get(proxy.http, "/health/live")
    assert slow.json()["hits"][0]["id"] == "sku-00042"  # the upstream's answer, late
    assert 0.3 <= slow_elapsed < 1.5
    assert fast.status_code == 200 and fast_elapsed < 0.25


def test_error_fault_answers_in_place_of_the_upstream(proxy: Proxy, upstream: Upstream) -> None:
    proxy.faults.add(type="error", status=429, body="slow down", match={"path": "^/echo"})
    seen = len(upstream.requests)
    response = proxy.http.get("/echo")
    assert (response.status_code, response.text) == (429, "slow down")
    assert response.headers["content-type"].startswith("text/plain")
    assert len(upstream.requests) == seen  # the upstream never saw it
    counted = exact(control_metrics(proxy), "probe_proxy_requests_total", {"outcome": "error"})
    assert counted is not None and counted >= 1


def test_abort_fault_resets_the_client_connection(proxy: Proxy) -> None:
    proxy.faults.add(type="abort", match={"path": "^/api/search"})
    with pytest.raises(ConnectionResetError):
        raw_get(proxy.url, "/api/search")
    with pytest.raises(httpx.TransportError):
        proxy.http.get("/api/search")
    assert proxy.http.get("/health/live").status_code == 200


def test_timeout_fault_holds_until_the_client_gives_up(proxy: Proxy) -> None:
    proxy.faults.add(type="timeout", match={"path": "^/api/search"})
    start = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        proxy.http.get("/api/search", timeout=0.5)
    assert 0.5 <= time.perf_counter() - start < 1.5
    assert proxy.http.get("/health/live").status_code == 200


def test_a_held_request_goes_through_when_its_fault_expires(proxy: Proxy) -> None:
    proxy.faults.add(type="timeout", ttl="1s", match={"path": "^/api/search"})
    response, elapsed = timed_get(proxy.http, "/api/search", timeout=10)
    assert response.status_code == 200
    assert 0.8 <= elapsed < 3  # bounded by the fault's TTL


def test_unready_fault_fails_readiness_only(proxy: Proxy) -> None:
    proxy.faults.add(type="unready")
    ready = proxy.http.get("/health/ready")
    assert (ready.status_code, ready.json()["status"]) == (503, "not_ready")
    assert proxy.http.get("/health/live").status_code == 200
    assert proxy.http.get("/api/search").status_code == 200


def test_match_by_method_and_header(proxy: Proxy) -> None:
    proxy.faults.add(type="error", status=503, match={"method": "PUT", "headers": {"X-Tenant": "^blue$"}})
    assert proxy.http.put("/echo", headers={"X-Tenant": "blue"}).status_code == 503
    assert proxy.http.put("/echo", headers={"X-Tenant": "green"}).status_code == 200
    assert proxy.http.get("/echo", headers={"X-Tenant": "blue"}).status_code == 200


@pytest.mark.parametrize(("probability", "failures"), [(0.0, 0), (1.0, 20)])
def test_probability_zero_and_one(proxy: Proxy, probability: float, failures: int) -> None:
    proxy.faults.add(type="error", status=503, probability=probability)
    statuses = [proxy.http.get("/api/search").status_code for _ in range(20)]
    assert statuses.count(503) == failures


def test_a_fault_expires_by_its_ttl_without_traffic(proxy: Proxy) -> None:
    proxy.faults.add(type="error", status=503, ttl="1s")
    assert proxy.http.get("/api/search").status_code == 503
    time.sleep(1.05)
    # The gauge is read before any request could have swept the fault away.
    assert exact(control_metrics(proxy), "probe_proxy_active_faults") == 0
    assert proxy.faults.list() == []
    assert proxy.http.get("/api/search").status_code == 200


def test_outcomes_are_counted(proxy: Proxy) -> None:
    def counts() -> dict[str, float]:
        text = control_metrics(proxy)
        outcomes = ("forwarded", "latency", "unready")
        return {o: exact(text, "probe_proxy_requests_total", {"outcome": o}) or 0.0 for o in outcomes}

    before = counts()
    proxy.http.get("/api/search")
    proxy.faults.add(type="latency", latency="10ms", match={"path": "^/api"})
    proxy.faults.add(type="unready")
    proxy.http.get("/api/search")
    proxy.http.get("/health/ready")
    after = counts()
    assert {o: after[o] - before[o] for o in after} == {"forwarded": 1, "latency": 1, "unready": 1}


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
