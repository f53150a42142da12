"""The demo search API as probes, load scenarios and alert rules see it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.faults import Target, running_target
from tests.support.metrics import exact


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with running_target() as running:
        yield running


def test_search_returns_total_took_and_ranked_hits(target: Target) -> None:
    response = target.http.get("/api/search", params={"q": "laptop", "limit": 10})
    assert response.status_code == 200
    body = response.json()
    assert body["total"] > 100
    assert isinstance(body["took_ms"], float)
    assert len(body["hits"]) == 10
    assert set(body["hits"][0]) == {"id", "title", "score", "category", "price"}
    assert "sku-00042" in [hit["id"] for hit in body["hits"]]


def test_search_is_deterministic_and_pages(target: Target) -> None:
    def page(offset: int) -> list[str]:
        response = target.http.get("/api/search", params={"q": "phone", "limit": 5, "offset": offset})
        return [hit["id"] for hit in response.json()["hits"]]

    assert page(0) == page(0)
    whole = target.http.get("/api/search", params={"q": "phone", "limit": 10}).json()["hits"]
    assert page(0) + page(5) == [hit["id"] for hit in whole]


def test_search_filters_by_category_and_empty_query_matches_all(target: Target) -> None:
    body = target.http.get("/api/search", params={"q": "", "category": "tablets", "limit": 100}).json()
    assert body["total"] > 0
    assert {hit["category"] for hit in body["hits"]} == {"tablets"}
    assert target.http.get("/api/search").json()["total"] == 3000


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_search_rejects_a_bad_limit(target: Target, limit: str) -> None:
    response = target.http.get("/api/search", params={"q": "x", "limit": limit})
    assert response.status_code == 422
    assert "limit" in response.text


def test_items_and_categories(target: Target) -> None:
    item = target.http.get("/api/items/sku-00042").json()
    assert (item["id"], item["category"]) == ("sku-00042", "laptops")
    assert target.http.get("/api/items/sku-99999").status_code == 404
    categories = target.http.get("/api/categories").json()["categories"]
    assert {"laptops", "phones"} <= {c["name"] for c in categories}
    assert sum(c["count"] for c in categories) == 3000


def test_health_endpoints(target: Target) -> None:
    health = target.http.get("/health").json()
    assert health["status"] == "healthy"
    assert [c["status"] for c in health["components"]] == ["healthy", "healthy"]
    assert target.http.get("/health/live").status_code == 200
    ready = target.http.get("/health/ready")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")


def test_login_then_search_with_the_issued_token(target: Target) -> None:
    login = target.http.post("/auth/token", json={"user": "probe"})
    assert login.status_code == 200
    body = login.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)
    authorized = {"Authorization": f"Bearer {body['access_token']}"}
    assert target.http.get("/api/search?q=phone", headers=authorized).json()["total"] > 0
    forged = target.http.get("/api/search?q=phone", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401
    assert target.http.post("/auth/token", json={}).status_code == 422


def test_metrics_count_requests_by_route_template_and_status(target: Target) -> None:
    before = target.http.get("/metrics").text
    labels = {"method": "GET", "endpoint": "/api/items/{id}", "status": "404"}
    start = exact(before, "http_requests_total", labels) or 0.0
    for missing in ("sku-99998", "sku-99999"):
        target.http.get(f"/api/items/{missing}")
    after = target.http.get("/metrics").text
    assert exact(after, "http_requests_total", labels) == start + 2
    histogram = {"method": "GET", "endpoint": "/api/items/{id}"}
    assert (exact(after, "http_request_duration_seconds_count", histogram) or 0) >= 2
    assert "sku-99999" not in after  # raw paths never become label values


def test_each_app_has_its_own_metrics() -> None:
    with running_target() as first, running_target() as second:
        first.http.get("/health")
        labels = {"method": "GET", "endpoint": "/health", "status": "200"}
        assert exact(first.http.get("/metrics").text, "http_requests_total", labels) == 1
        assert exact(second.http.get("/metrics").text, "http_requests_total", labels) is None
