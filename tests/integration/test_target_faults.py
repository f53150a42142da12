"""Faults injected into the demo search API through its admin API, as a drill would."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.faults import TOKEN, Target, metric_value, raw_get, running_target, timed_get
from tests.support.processes import cli, started, wait_until


@pytest.fixture(scope="module")
def server() -> Iterator[Target]:
    with running_target() as running:
        yield running


@pytest.fixture
def target(server: Target) -> Iterator[Target]:
    yield server
    server.faults.clear()


# --- the fault API itself


def test_the_fault_api_needs_the_token(target: Target) -> None:
    url = f"{target.url}/-/faults"
    missing = target.http.get(url)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert target.http.post(url, json={"type": "error"}).status_code == 401
    assert target.http.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert target.http.delete(url, headers={"Authorization": "Basic " + TOKEN}).status_code == 401
    assert target.faults.list() == []


def test_without_a_token_the_fault_api_does_not_exist() -> None:
    with running_target(token=None) as bare:
        for method in ("GET", "POST", "DELETE"):
            assert bare.http.request(method, "/-/faults", headers={"Authorization": "Bearer x"}).status_code == 404
        assert bare.http.get("/api/search?q=laptop").status_code == 200


def test_add_list_delete_and_clear(target: Target) -> None:
    first = target.faults.add(type="error", status=502, match={"path": "^/api/items"}, ttl="1m")
    second = target.faults.add(type="latency", latency="10ms")
    listed = {fault["id"]: fault for fault in target.faults.list()}
    assert set(listed) == {first, second}
    assert listed[first]["status"] == 502
    assert listed[first]["match"]["path"] == "^/api/items"
    assert listed[first]["ttl"] == "1m"
    assert listed[first]["expires_at"].endswith("Z")
    assert target.faults.delete(first) == 200
    assert target.faults.delete(first) == 404
    assert [fault["id"] for fault in target.faults.list()] == [second]
    target.faults.clear()
    assert target.faults.list() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"type": "explode"}', "type: Input should be 'latency', 'error', 'abort', 'timeout' or 'unready'"),
        (b'{"type": "error", "ttl": "3h"}', "ttl: must be at most 1h"),
        (b'{"type": "error", "match": {"path": "("}}', "match.path: invalid regular expression"),
        (b'{"type": "error", "probabilty": 0.5}', "probabilty: Extra inputs are not permitted"),
        (b"type: error", "Invalid JSON"),
        (b"", "empty body; send a fault as JSON"),
        # Found in an adversarial round: each of these answered 500, and `ttl: NaN` installed a fault
        # with no lifetime.
        (b'{"type": "error", "ttl": NaN}', "ttl: invalid duration nan"),
        (b'{"type": "error", "ttl": Infinity}', "ttl: invalid duration inf"),
        (b'{"type": "error", "ttl": "99999999999999999999d"}', "ttl: duration"),
        (b'{"type": "latency", "latency": NaN}', "latency: invalid duration nan"),
        (b'{"type": "error", "probability": NaN}', "probability"),
        (b'{"type": "error", "match": {"path": "a{99999999999}"}}', "match.path: invalid regular expression"),
        (b'{"type": "error", "match": {"headers": {"x": "(?:a{1000}){1000}"}}}', "match.headers"),
        (b'[' * 5000 + b']' * 5000, "invalid fault"),
    ],
)
def test_an_invalid_fault_is_rejected_with_a_clear_message(target: Target, body: bytes, message: str) -> None:
    response = target.http.post("/-/faults", content=body, headers=target.faults.headers)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert target.faults.list() == []


def test_an_oversized_fault_body_is_refused_before_it_is_read(target: Target) -> None:
    body = b'{"type": "error", "body": "' + b"x" * (300 * 1024) + b'"}'
    response = target.http.post("/-/faults", content=body, headers=target.faults.headers)
    assert response.status_code == 413
    chunked = target.http.post("/-/faults", content=iter([body[:200_000], body[200_000:]]),
                               headers=target.faults.headers)
    assert chunked.status_code == 413  # no Content-Length to trust: counted while reading
    assert target.faults.list() == []


def test_the_ttl_cap_and_the_number_of_faults_are_configurable() -> None:
    argv = cli("target", "--listen", "127.0.0.1:0", "--admin-token", TOKEN, "--max-fault-ttl", "10m",
               "--max-faults", "2")
    with started(argv, expect=["target"]) as proc, httpx.Client(base_url=proc.urls["target"], timeout=5) as http:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        over = http.post("/-/faults", json={"type": "error", "ttl": "11m"}, headers=headers)
        assert over.status_code == 422 and "ttl: must be at most 10m" in over.json()["detail"]
        for path in ("^/a", "^/b"):
            assert http.post("/-/faults", json={"type": "error", "ttl": "10m", "match": {"path": path}},
                             headers=headers).status_code == 201
        third = http.post("/-/faults", json={"type": "error"}, headers=headers)
        assert third.status_code == 409 and "at most 2" in third.json()["detail"]
        assert len(http.get("/-/faults", headers=headers).json()["faults"]) == 2


def test_faults_never_touch_the_fault_api_or_metrics(target: Target) -> None:
    target.faults.add(type="error", status=500)
    assert target.http.get("/api/search").status_code == 500
    assert target.http.get("/metrics").status_code == 200
    target.faults.clear()  # a drill can always revert


# --- each fault type


def test_error_fault_answers_with_its_status_and_body_and_is_counted(target: Target) -> None:
    target.faults.add(type="error", status=503, body='{"error": "search backend down"}', match={"path": "^/api/search"})
    response = target.http.get("/api/search?q=laptop")
    assert response.status_code == 503
    assert response.json() == {"error": "search backend down"}
    assert target.http.get("/api/items/sku-00042").status_code == 200
    labels = {"method": "GET", "endpoint": "/api/search", "status": "503"}
    assert (metric_value(target.http.get("/metrics").text, "http_requests_total", labels) or 0) >= 1


def test_latency_fault_slows_matching_requests_only(target: Target) -> None:
    target.faults.add(type="latency", latency="300ms", match={"path": "^/api/search"})
    slow, slow_elapsed = timed_get(target.http, f"{target.url}/api/search?q=laptop")
    fast, fast_elapsed = timed_get(target.http, f"{target.url}/health")
    assert slow.status_code == 200 and slow.json()["total"] > 0
    assert 0.3 <= slow_elapsed < 1.5
    assert fast.status_code == 200 and fast_elapsed < 0.25


def test_abort_fault_resets_the_connection(target: Target) -> None:
    target.faults.add(type="abort", match={"path": "^/api/items"})
    with pytest.raises(ConnectionResetError):
        raw_get(target.url, "/api/items/sku-00042")
    with pytest.raises(httpx.TransportError):
        target.http.get("/api/items/sku-00042")
    labels = {"method": "GET", "endpoint": "/api/items/{id}", "status": "444"}
    assert (metric_value(target.http.get("/metrics").text, "http_requests_total", labels) or 0) >= 2


def test_timeout_fault_holds_the_request_until_the_client_gives_up(target: Target) -> None:
    target.faults.add(type="timeout", match={"path": "^/api/search"})
    start = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        target.http.get("/api/search?q=laptop", timeout=0.5)
    assert 0.5 <= time.perf_counter() - start < 1.5
    assert target.http.get("/health").status_code == 200
    labels = {"method": "GET", "endpoint": "/api/search", "status": "499"}
    wait_until(lambda: metric_value(target.http.get("/metrics").text, "http_requests_total", labels),
               timeout=5, what="the abandoned request counted as 499")


def test_a_held_request_is_released_when_the_fault_is_removed(target: Target) -> None:
    import threading

    fault_id = target.faults.add(type="timeout", match={"path": "^/api/search"})
    outcome: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: outcome.append(target.http.get("/api/search?q=phone", timeout=10)))
    worker.start()
    time.sleep(0.3)
    assert not outcome  # still held
    assert target.faults.delete(fault_id) == 200
    worker.join(5)
    assert outcome and outcome[0].status_code == 200 and outcome[0].json()["total"] > 0


def test_unready_fault_fails_readiness_but_not_liveness(target: Target) -> None:
    target.faults.add(type="unready")
    ready = target.http.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert target.http.get("/health").status_code == 503
    assert target.http.get("/health/live").status_code == 200
    assert target.http.get("/api/search?q=laptop").status_code == 200


# --- matching, probability and TTL


def test_match_by_method_and_header(target: Target) -> None:
    target.faults.add(type="error", status=500, match={"method": "POST"})
    target.faults.add(type="error", status=418, match={"headers": {"X-Canary": "^on$"}})
    assert target.http.post("/auth/token", json={"user": "u"}).status_code == 500
    assert target.http.get("/api/search").status_code == 200
    assert target.http.get("/api/search", headers={"x-canary": "on"}).status_code == 418
    assert target.http.get("/api/search", headers={"x-canary": "off"}).status_code == 200


@pytest.mark.parametrize(("probability", "failures"), [(0.0, 0), (1.0, 20)])
def test_probability_zero_and_one(target: Target, probability: float, failures: int) -> None:
    target.faults.add(type="error", status=503, probability=probability)
    with httpx.Client() as client:
        statuses = [client.get(f"{target.url}/api/search").status_code for _ in range(20)]
    assert statuses.count(503) == failures


def test_a_fault_expires_by_its_ttl(target: Target) -> None:
    target.faults.add(type="error", status=503, ttl="1s")
    assert target.http.get("/api/search").status_code == 503
    time.sleep(1.05)
    assert target.http.get("/api/search").status_code == 200
    assert target.faults.list() == []
