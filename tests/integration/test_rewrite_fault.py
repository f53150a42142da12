"""The `rewrite` fault on the demo target (in-app) and through the proxy: JSON answers edited by path,
lengths fixed, everything else passed through untouched."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.faults import Proxy, Target, Upstream, big_body, running_proxy, running_target, running_upstream

REVERSE = [{"path": "$.hits", "op": "reverse"}]


@pytest.fixture(scope="module")
def running() -> Iterator[Target]:
    with running_target() as target:
        yield target


@pytest.fixture
def target(running: Target) -> Iterator[Target]:
    yield running
    running.faults.clear()


def ids(response: httpx.Response) -> list[str]:
    return [hit["id"] for hit in response.json()["hits"]]


def test_the_target_rewrites_its_own_answers(target: Target) -> None:
    before = target.http.get("/api/search?q=laptop")
    fault = target.faults.add(type="rewrite", match={"path": "^/api/search"}, rewrite=REVERSE)
    after = target.http.get("/api/search?q=laptop")
    assert after.status_code == 200
    assert ids(after) == list(reversed(ids(before))) != ids(before)
    assert after.headers["x-probe-fault"] == fault
    assert int(after.headers["content-length"]) == len(after.content)
    # Other paths answer as before, and the fault goes as it came.
    assert "x-probe-fault" not in target.http.get("/api/items/sku-00042").headers
    target.faults.clear()
    assert ids(target.http.get("/api/search?q=laptop")) == ids(before)


def test_dropping_hits_changes_the_length(target: Target) -> None:
    before = target.http.get("/api/search?q=laptop")
    target.faults.add(type="rewrite", rewrite=[{"path": "$.hits", "op": "drop_first", "count": 3},
                                               {"path": "$.total", "op": "set", "value": 0}])
    after = target.http.get("/api/search?q=laptop")
    assert ids(after) == ids(before)[3:]
    assert after.json()["total"] == 0
    assert int(after.headers["content-length"]) == len(after.content) < len(before.content)


def test_an_invalid_rewrite_is_rejected(target: Target) -> None:
    response = target.http.post("/-/faults", headers=target.faults.headers,
                                json={"type": "rewrite", "rewrite": [{"path": "$.hits", "op": "drop"}]})
    assert response.status_code == 422
    assert "rewrite.0: op drop needs an index" in response.json()["detail"]
    assert target.faults.list() == []


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as running:
        yield running


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[Proxy]:
    with running_proxy(upstream.url) as running:
        yield running


def test_the_proxy_rewrites_json_and_passes_anything_else(proxy: Proxy) -> None:
    fault = proxy.faults.add(type="rewrite", rewrite=[{"path": "$.hits[0].id", "op": "set", "value": "sku-99999"}])
    search = proxy.http.get("/api/search")
    assert search.json() == {"total": 1, "hits": [{"id": "sku-99999"}]}
    assert search.headers["x-probe-fault"] == fault
    assert int(search.headers["content-length"]) == len(search.content)
    size = 300 * 1024
    big = proxy.http.get(f"/big?bytes={size}")
    assert big.content == big_body(size)
    assert "x-probe-fault" not in big.headers
