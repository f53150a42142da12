"""Search probe extras against a real local server: expect.schema, max_took_ms against took_path,
queries_file rotated run by run, and cache_bust."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.httpserver import run_agent, serve_aiohttp
from tests.support.processes import once_results


class SearchApi:
    """Answers like a search API; `took` and `shape` query parameters choose what it reports."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def search(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.seen.append(query)
        took = float(query.get("took", "3"))
        hits = [{"id": f"sku-{i:05d}", "title": query.get("q", "")} for i in range(3)]
        if query.get("shape") == "broken":
            return web.json_response({"total": "many", "hits": []})
        if query.get("shape") == "es":
            return web.json_response({"took": took, "hits": {"total": {"value": 3}, "hits": hits}})
        return web.json_response({"total": 3, "took_ms": took, "hits": hits})

    def queries(self, probe: str) -> list[dict[str, str]]:
        return [q for q in self.seen if q.get("probe") == probe]


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[SearchApi, str]]:
    state = SearchApi()
    app = web.Application()
    app.router.add_get("/search", state.search)
    with serve_aiohttp(app) as url:
        yield state, url


SCHEMA = """{{type: object, required: [total, hits],
              properties: {{total: {{type: integer, minimum: 0}}, hits: {{type: array}}}}}}"""

PROBES = f"""
defaults: {{{{interval: 30s, timeout: 3s}}}}
probes:
  - name: schema-ok
    type: search
    url: "{{u}}/search"
    params: {{{{probe: schema-ok, q: laptop}}}}
    expect: {{{{schema: {SCHEMA}}}}}
  - name: schema-fail
    type: search
    url: "{{u}}/search"
    params: {{{{probe: schema-fail, q: laptop, shape: broken}}}}
    expect: {{{{schema: {SCHEMA}}}}}
  - name: took-ok
    type: search
    url: "{{u}}/search"
    params: {{{{probe: took-ok, q: laptop, took: 5}}}}
    expect: {{{{max_took_ms: 50}}}}
  - name: took-slow
    type: search
    url: "{{u}}/search"
    params: {{{{probe: took-slow, q: laptop, took: 250}}}}
    expect: {{{{max_took_ms: 100}}}}
  - name: took-path
    type: search
    url: "{{u}}/search"
    params: {{{{probe: took-path, q: laptop, shape: es, took: 7}}}}
    expect: {{{{max_took_ms: 5, took_path: "$.took", total_path: "$.hits.total", hits_path: "$.hits.hits"}}}}
  - name: took-default-paths
    type: search
    url: "{{u}}/search"
    params: {{{{probe: took-default-paths, q: laptop, shape: es, took: 9}}}}
    expect: {{{{max_took_ms: 5, total_path: "$.hits.total", hits_path: "$.hits.hits"}}}}
  - name: rotation
    type: search
    url: "{{u}}/search"
    params: {{{{probe: rotation}}}}
    queries_file: queries.txt
  - name: cache-bust
    type: search
    url: "{{u}}/search"
    params: {{{{probe: cache-bust, q: laptop}}}}
    cache_bust: true
"""


@pytest.fixture(scope="module")
def config(api: tuple[SearchApi, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("search")
    (directory / "queries.txt").write_text("# golden queries\nlaptop\n\nred phone\nusb-c cable\n")
    path = directory / "agent.yaml"
    path.write_text(PROBES.format(u=api[1]))
    return path


@pytest.fixture(scope="module")
def results(config: Path) -> dict[str, dict[str, Any]]:
    return once_results(config, expect_code=1)


def test_a_response_matching_the_schema_passes(results: dict[str, dict[str, Any]]) -> None:
    assert results["schema-ok"]["success"] is True, results["schema-ok"]["message"]


def test_a_response_breaking_the_schema_fails_with_where_and_why(results: dict[str, dict[str, Any]]) -> None:
    failed = results["schema-fail"]
    assert (failed["success"], failed["reason"]) == (False, "assertion")
    assert failed["message"] == "schema: $['total']: 'many' is not of type 'integer'"


def test_max_took_ms_checks_the_server_reported_time(results: dict[str, dict[str, Any]]) -> None:
    assert results["took-ok"]["success"] is True, results["took-ok"]["message"]
    took = {s["name"]: s["value"] for s in results["took-ok"]["samples"]}
    assert took["probe_search_took_seconds"] == pytest.approx(0.005)
    slow = results["took-slow"]
    assert (slow["success"], slow["reason"]) == (False, "latency")
    assert slow["message"] == "server took 250ms, max_took_ms is 100"


def test_took_path_reads_elasticsearch_style_took(results: dict[str, dict[str, Any]]) -> None:
    failed = results["took-path"]
    assert (failed["success"], failed["reason"], failed["message"]) == (
        False, "latency", "server took 7ms, max_took_ms is 5")
    # Without took_path, `took_ms` and then Elasticsearch's `took` are looked for.
    default = results["took-default-paths"]
    assert (default["success"], default["reason"], default["message"]) == (
        False, "latency", "server took 9ms, max_took_ms is 5")


def test_queries_file_rotates_and_cache_bust_makes_every_request_unique(
        api: tuple[SearchApi, str], config: Path) -> None:
    state = api[0]
    state.seen.clear()
    rounds, metrics = run_agent(str(config), times=4)
    assert [q["q"] for q in state.queries("rotation")] == ["laptop", "red phone", "usb-c cable", "laptop"]
    assert all(r.success for results in rounds for r in results if r.probe == "rotation")
    busts = [q.get("_cb") for q in state.queries("cache-bust")]
    assert len(busts) == 4 and None not in busts and len(set(busts)) == 4
    assert all("_cb" not in q for q in state.queries("schema-ok"))
    assert re.search(r'probe_search_took_seconds\{probe="took-ok",[^}]*\} 0\.005\n', metrics)
