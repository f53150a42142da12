"""What only the demo target does with faults: it counts the requests they answered or cut off in its own
white-box metrics, so that drills of the usual alert rules (HighErrorRate, ServiceDown) see them.
The fault API and each fault's behaviour are tested on both carriers in test_fault_api_contract.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.faults import Target, raw_get, running_target
from tests.support.metrics import exact
from tests.support.processes import wait_until


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
