"""The fault API contract, run against both carriers: the demo target (faults applied in the app, API on
its own port) and the fault proxy (faults applied in front of an upstream, API on its control port).

A drill must not care which one it talks to, so every test here runs on both. What only one carrier
does (its metrics, the proxy's forwarding) is tested in test_target_faults.py / test_proxy_faults.py.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.faults import TOKEN, FaultClient, raw_get, running_proxy, running_target, running_upstream, timed_get

# Paths both data paths serve: the demo target itself, and the test upstream behind the proxy.
SEARCH = "/api/search?q=laptop"
OTHER = "/health/live"  # matched by none of the faults below unless a test says so


@dataclass
class Carrier:
    """What the shared tests need of a carrier: its fault API, its data path and its /metrics."""

    name: str
    url: str  # the data path
    faults: FaultClient
    http: httpx.Client  # base_url = url
    metrics_url: str
    post_path: str  # a POST the carrier answers with 200 when no fault is active
    post_json: dict[str, Any] | None = None

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, **kwargs: Any) -> httpx.Response:
        return self.http.post(self.post_path, json=self.post_json, **kwargs)

    def fault_api(self, method: str, suffix: str = "", **kwargs: Any) -> httpx.Response:
        """A raw call to /-/faults, for the status codes FaultClient would assert away."""
        return self.http.request(method, self.faults.url + suffix, **kwargs)

    def metrics(self) -> httpx.Response:
        return self.http.get(self.metrics_url)


StartCarrier = Callable[[str | None], AbstractContextManager[Carrier]]


@contextlib.contextmanager
def target_carrier(token: str | None) -> Iterator[Carrier]:
    with running_target(token) as target:
        yield Carrier("target", target.url, target.faults, target.http, f"{target.url}/metrics",
                      "/auth/token", {"user": "probe"})


@contextlib.contextmanager
def proxy_carrier(upstream_url: str, token: str | None) -> Iterator[Carrier]:
    with running_proxy(upstream_url, token) as proxy:
        yield Carrier("proxy", proxy.url, proxy.faults, proxy.http, f"{proxy.control_url}/metrics", "/echo")


@pytest.fixture(scope="module", params=["target", "proxy"])
def start_carrier(request: pytest.FixtureRequest) -> Iterator[StartCarrier]:
    if request.param == "target":
        yield target_carrier
    else:
        with running_upstream() as upstream:
            yield functools.partial(proxy_carrier, upstream.url)


@pytest.fixture(scope="module")
def running(start_carrier: StartCarrier) -> Iterator[Carrier]:
    with start_carrier(TOKEN) as carrier:
        yield carrier


@pytest.fixture
def carrier(running: Carrier) -> Iterator[Carrier]:
    yield running
    running.faults.clear()


def hit_ids(response: httpx.Response) -> list[str]:
    return [hit["id"] for hit in response.json()["hits"]]


def stable(response: httpx.Response) -> dict[str, Any]:
    """The JSON answer without the target's per-request timing, which differs between two calls."""
    body: dict[str, Any] = response.json()
    body.pop("took_ms", None)
    return body


# --- the fault API itself


def test_the_fault_api_needs_the_token(carrier: Carrier) -> None:
    kept = carrier.faults.add(type="latency", latency="1ms", match={"path": "^/nothing"})
    missing = carrier.fault_api("GET")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert carrier.fault_api("POST", json={"type": "error"}).status_code == 401
    assert carrier.fault_api("DELETE", headers={"Authorization": "Basic " + TOKEN}).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert carrier.fault_api("GET", headers=wrong).status_code == 403
    assert carrier.fault_api("POST", headers=wrong, json={"type": "abort"}).status_code == 403
    assert carrier.fault_api("DELETE", headers=wrong).status_code == 403
    assert carrier.fault_api("DELETE", f"/{kept}", headers=wrong).status_code == 403
    # None of the refused calls changed anything.
    assert [fault["id"] for fault in carrier.faults.list()] == [kept]
    assert carrier.get(SEARCH).status_code == 200


def test_without_a_token_the_fault_api_does_not_exist(start_carrier: StartCarrier) -> None:
    with start_carrier(None) as bare:
        for method in ("GET", "POST", "DELETE"):
            assert bare.fault_api(method, headers={"Authorization": "Bearer x"}).status_code == 404
        assert bare.fault_api("DELETE", "/abc", headers={"Authorization": "Bearer x"}).status_code == 404
        assert bare.get(SEARCH).status_code == 200
        assert bare.metrics().status_code == 200


def test_add_list_delete_and_clear(carrier: Carrier) -> None:
    first = carrier.faults.add(type="error", status=502, match={"path": "^/api/items"}, ttl="1m")
    second = carrier.faults.add(type="latency", latency="10ms")
    listed = {fault["id"]: fault for fault in carrier.faults.list()}
    assert set(listed) == {first, second}
    assert listed[first]["type"] == "error"
    assert listed[first]["status"] == 502
    assert listed[first]["match"]["path"] == "^/api/items"
    assert listed[first]["ttl"] == "1m"
    assert listed[first]["expires_at"].endswith("Z")
    assert listed[second]["ttl"] == "2m"  # the default: every fault expires
    assert carrier.faults.delete(first) == 200
    assert carrier.faults.delete(first) == 404
    assert [fault["id"] for fault in carrier.faults.list()] == [second]
    carrier.faults.clear()
    assert carrier.faults.list() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"type": "explode"}',
         "type: Input should be 'latency', 'error', 'abort', 'timeout', 'unready' or 'rewrite'"),
        (b'{"type": "error", "ttl": "3h"}', "ttl: must be at most 1h"),
        (b'{"type": "error", "match": {"path": "("}}', "match.path: invalid regular expression"),
        (b'{"type": "error", "probabilty": 0.5}', "probabilty: Extra inputs are not permitted"),
        (b'{"type": "rewrite", "rewrite": [{"path": "$.hits", "op": "drop"}]}', "rewrite.0: op drop needs an index"),
        (b"type: error", "Invalid JSON"),
        (b"", "empty body; send a fault as JSON"),
    ],
)
def test_an_invalid_fault_is_rejected_with_a_clear_message(carrier: Carrier, body: bytes, message: str) -> None:
    response = carrier.fault_api("POST", content=body, headers=carrier.faults.headers)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert carrier.faults.list() == []


def test_faults_never_touch_the_fault_api_or_metrics(carrier: Carrier) -> None:
    carrier.faults.add(type="abort")  # every path
    with pytest.raises(httpx.TransportError):
        carrier.get(SEARCH)
    assert carrier.metrics().status_code == 200
    assert len(carrier.faults.list()) == 1
    carrier.faults.clear()  # a drill can always revert
    assert carrier.get(SEARCH).status_code == 200


# --- each fault type


def test_error_fault_answers_with_its_status_and_body(carrier: Carrier) -> None:
    as_json = carrier.faults.add(type="error", status=503, body='{"error": "search backend down"}',
                                 match={"path": "^/api/search"})
    as_text = carrier.faults.add(type="error", status=429, body="slow down", match={"method": "POST"})
    default = carrier.faults.add(type="error", status=502, match={"path": "^/health/ready"})

    response = carrier.get(SEARCH)
    assert response.status_code == 503
    assert response.json() == {"error": "search backend down"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-probe-fault"] == as_json

    response = carrier.post()
    assert (response.status_code, response.text) == (429, "slow down")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["x-probe-fault"] == as_text

    response = carrier.get("/health/ready")
    assert response.status_code == 502
    assert response.json() == {"error": "injected fault", "fault": default}

    assert carrier.get(OTHER).status_code == 200


def test_latency_fault_slows_matching_requests_only(carrier: Carrier) -> None:
    before = carrier.get(SEARCH)
    carrier.faults.add(type="latency", latency="300ms", match={"path": "^/api/search"})
    slow, slow_elapsed = timed_get(carrier.http, SEARCH)
    fast, fast_elapsed = timed_get(carrier.http, OTHER)
    assert slow.status_code == 200
    assert hit_ids(slow) == hit_ids(before) != []  # the real answer, late
    assert 0.3 <= slow_elapsed < 1.5
    assert fast.status_code == 200 and fast_elapsed < 0.25


def test_abort_fault_resets_the_connection(carrier: Carrier) -> None:
    carrier.faults.add(type="abort", match={"path": "^/api/search"})
    with pytest.raises(ConnectionResetError):
        raw_get(carrier.url, SEARCH)
    with pytest.raises(httpx.TransportError):
        carrier.get(SEARCH)
    assert carrier.get(OTHER).status_code == 200


def test_timeout_fault_holds_the_request_until_the_client_gives_up(carrier: Carrier) -> None:
    carrier.faults.add(type="timeout", match={"path": "^/api/search"})
    start = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        carrier.get(SEARCH, timeout=0.5)
    assert 0.5 <= time.perf_counter() - start < 1.5
    assert carrier.get(OTHER).status_code == 200


def test_unready_fault_fails_readiness_but_not_liveness(carrier: Carrier) -> None:
    carrier.faults.add(type="unready")
    ready = carrier.get("/health/ready")
    assert (ready.status_code, ready.json()["status"]) == (503, "not_ready")
    assert carrier.get("/health").status_code == 503
    assert carrier.get("/health/live").status_code == 200
    assert carrier.get(SEARCH).status_code == 200


def test_rewrite_fault_edits_json_answers_by_path(carrier: Carrier) -> None:
    before = carrier.get(SEARCH)
    fault = carrier.faults.add(type="rewrite", match={"path": "^/api/search"}, rewrite=[
        {"path": "$.hits", "op": "reverse"},
        {"path": "$.hits[0].id", "op": "set", "value": "sku-99999"},
        {"path": "$.total", "op": "set", "value": 0},
    ])
    after = carrier.get(SEARCH)
    assert after.status_code == 200
    expected = stable(before)
    expected["hits"] = list(reversed(expected["hits"]))
    expected["hits"][0]["id"] = "sku-99999"
    expected["total"] = 0
    assert stable(after) == expected  # those edits and nothing else
    assert after.headers["x-probe-fault"] == fault
    assert int(after.headers["content-length"]) == len(after.content)
    # Other paths answer as before, and the fault goes as it came.
    assert "x-probe-fault" not in carrier.get(OTHER).headers
    carrier.faults.clear()
    assert stable(carrier.get(SEARCH)) == stable(before)


def test_a_rewrite_that_drops_hits_shortens_the_answer(carrier: Carrier) -> None:
    before = carrier.get(SEARCH)
    carrier.faults.add(type="rewrite", rewrite=[{"path": "$.hits", "op": "drop_first", "count": 1},
                                                {"path": "$.total", "op": "set", "value": 0}])
    after = carrier.get(SEARCH)
    assert hit_ids(after) == hit_ids(before)[1:]
    assert after.json()["total"] == 0
    assert int(after.headers["content-length"]) == len(after.content) < len(before.content)


# --- matching, probability and TTL


def test_match_by_method_and_header(carrier: Carrier) -> None:
    canary = carrier.faults.add(type="error", status=418, match={"headers": {"X-Canary": "^on$"}})
    blue_posts = carrier.faults.add(type="error", status=503,
                                    match={"method": "post", "headers": {"X-Tenant": "^blue$"}})
    deletes = carrier.faults.add(type="error", status=500, match={"method": "DELETE"})

    answered = carrier.get(SEARCH, headers={"x-canary": "on"})  # header names match in any case
    assert (answered.status_code, answered.headers["x-probe-fault"]) == (418, canary)
    assert carrier.get(SEARCH, headers={"x-canary": "off"}).status_code == 200

    answered = carrier.post(headers={"X-Tenant": "blue"})
    assert (answered.status_code, answered.headers["x-probe-fault"]) == (503, blue_posts)
    assert carrier.post(headers={"X-Tenant": "green"}).status_code == 200
    assert carrier.post().status_code == 200  # every condition must hold
    assert carrier.get(SEARCH, headers={"X-Tenant": "blue"}).status_code == 200

    answered = carrier.http.delete(SEARCH)
    assert (answered.status_code, answered.headers["x-probe-fault"]) == (500, deletes)
    assert carrier.get(SEARCH).status_code == 200


@pytest.mark.parametrize(("probability", "failures"), [(0.0, 0), (1.0, 20)])
def test_probability_zero_and_one(carrier: Carrier, probability: float, failures: int) -> None:
    carrier.faults.add(type="error", status=503, probability=probability)
    statuses = [carrier.get(SEARCH).status_code for _ in range(20)]
    assert statuses.count(503) == failures
    assert statuses.count(200) == 20 - failures


def test_a_fault_goes_by_its_ttl_or_when_deleted_and_releases_what_it_held(carrier: Carrier) -> None:
    start = time.perf_counter()
    carrier.faults.add(type="error", status=503, ttl="1s", match={"path": "^/health/ready"})
    carrier.faults.add(type="timeout", ttl="1s", match={"path": "^/health/live"})
    kept = carrier.faults.add(type="timeout", match={"path": "^/api/search"})  # the default TTL: 2m
    outcome: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: outcome.append(carrier.get(SEARCH, timeout=10)))
    worker.start()
    assert carrier.get("/health/ready").status_code == 503

    held = carrier.get(OTHER, timeout=10)  # held until its fault's TTL, then answered
    assert held.status_code == 200
    assert 0.95 <= time.perf_counter() - start < 3
    assert [fault["id"] for fault in carrier.faults.list()] == [kept]
    assert carrier.get("/health/ready").status_code == 200
    assert not outcome  # still held by the fault that has not expired

    assert carrier.faults.delete(kept) == 200
    worker.join(5)
    assert outcome and outcome[0].status_code == 200 and hit_ids(outcome[0]) != []
