"""What only the demo target does with faults: it counts the requests they answered or cut off in its own
white-box metrics, so that drills of the usual alert rules (HighErrorRate, ServiceDown) see them.
The fault API and each fault's behaviour are tested on both carriers in test_fault_api_contract.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.faults import TOKEN, Target, raw_get, running_target
from tests.support.metrics import exact
from tests.support.processes import cli, started, wait_until


@pytest.fixture(scope="module")
def server() -> Iterator[Target]:
    with running_target() as running:
        yield running


@pytest.fixture
def target(server: Target) -> Iterator[Target]:
    yield server
    server.faults.clear()


def test_requests_a_fault_answered_or_cut_off_are_counted(target: Target) -> None:
    def counted(endpoint: str, status: str) -> float:
        labels = {"method": "GET", "endpoint": endpoint, "status": status}
        return exact(target.http.get("/metrics").text, "http_requests_total", labels) or 0.0

    before = {"error": counted("/api/search", "503"), "abort": counted("/api/items/{id}", "444"),
              "timeout": counted("/api/categories", "499")}
    target.faults.add(type="error", status=503, match={"path": "^/api/search"})
    target.faults.add(type="abort", match={"path": "^/api/items"})
    target.faults.add(type="timeout", match={"path": "^/api/categories"})

    assert target.http.get("/api/search?q=laptop").status_code == 503
    with pytest.raises(ConnectionResetError):
        raw_get(target.url, "/api/items/sku-00042")
    with pytest.raises(httpx.ReadTimeout):
        target.http.get("/api/categories", timeout=0.2)

    assert counted("/api/search", "503") == before["error"] + 1
    assert counted("/api/items/{id}", "444") == before["abort"] + 1  # closed without an answer, as nginx logs it
    wait_until(lambda: counted("/api/categories", "499") == before["timeout"] + 1,
               timeout=5, what="the abandoned request counted as 499")

# --- hostile input to the fault API (found in an adversarial round: each answered 500, and `ttl: NaN`
# installed a fault with no lifetime)


@pytest.mark.parametrize(
    ("body", "message"),
    [
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
def test_hostile_fault_bodies_get_a_422_and_install_nothing(target: Target, body: bytes, message: str) -> None:
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
