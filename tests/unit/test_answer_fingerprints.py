"""probe_search_result_fingerprint from search probes and opted-in scripted steps: what goes into it, the
details kept with the result, the labels on /metrics, the Elasticsearch document, and config mistakes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from probes.agent.config_file import parse_config
from probes.agent.self_metrics import AgentMetrics
from probes.errors import ConfigError
from probes.fingerprint import fingerprint
from probes.identity import AgentIdentity
from probes.probers._http.client import HttpResponse
from probes.probers.base import RunContext
from probes.probers.search import SearchProbeConfig, SearchProber
from probes.result import ProbeResult
from probes.sinks.elasticsearch import to_document
from probes.sinks.prometheus import PrometheusSink
from tests.support.fake_http import FakeHttp, response
from tests.support.metrics import samples
from tests.unit.test_scripted_prober import prober
from tests.unit.test_scripted_prober import run as run_scripted

IDS = [f"sku-{i:05d}" for i in range(12)]
METRIC = "probe_search_result_fingerprint"


def answer(ids: list[str], total: int = 40) -> HttpResponse:
    return response(body={"total": total, "hits": [{"id": i, "title": "x"} for i in ids]})


def search(expect: str = "{}", extra: str = "") -> SearchProber:
    text = f"""probes:
  - name: s
    type: search
    url: http://api.test/api/search
    params: {{q: laptop}}
    expect: {expect}
{extra}"""
    probe = parse_config(text, "agent.yaml", env={}).probes[0]
    assert isinstance(probe, SearchProbeConfig)
    return SearchProber(probe)


def run(p: SearchProber, body: HttpResponse, run_index: int = 0) -> ProbeResult:
    http = FakeHttp(lambda method, url, kwargs: body)
    return asyncio.run(p.run(RunContext(run=run_index, timeout=5, http=http)))  # type: ignore[arg-type]


def exported(result: ProbeResult) -> list[tuple[dict[str, str], float]]:
    identity = AgentIdentity("eu-west-1", "a1")
    sink = PrometheusSink(None, identity, AgentMetrics(identity))
    sink.write(result)
    return samples(sink.render(), METRIC)


def test_the_top_10_ids_in_order_make_the_fingerprint() -> None:
    result = run(search(), answer(IDS))
    assert result.details == {"fingerprint": fingerprint(IDS[:10]), "top_ids": IDS[:10], "total": 40}
    [(labels, value)] = exported(result)
    assert labels == {"probe": "s", "type": "search", "region": "eu-west-1", "agent": "a1"}
    assert int(value) == result.details["fingerprint"]  # exact through the text format
    # Beyond the top 10 nothing counts; within it, order does.
    assert run(search(), answer([*IDS[:10], "other"])).details["fingerprint"] == result.details["fingerprint"]
    swapped = [IDS[1], IDS[0], *IDS[2:]]
    assert run(search(), answer(swapped)).details["fingerprint"] != result.details["fingerprint"]


def test_top_k_and_total_are_configurable() -> None:
    three = search("{fingerprint_top_k: 3}")
    assert run(three, answer(IDS)).details["top_ids"] == IDS[:3]
    assert run(three, answer([*IDS[:3], "x"])).details["fingerprint"] == run(three, answer(IDS)).details["fingerprint"]
    plain, counted = search(), search("{fingerprint_total: true}")
    assert run(plain, answer(IDS, 40)).details["fingerprint"] == run(plain, answer(IDS, 41)).details["fingerprint"]
    assert run(counted, answer(IDS, 40)).details["fingerprint"] != run(counted, answer(IDS, 41)).details["fingerprint"]


def test_a_failed_assertion_still_reports_the_answer_but_a_failed_request_does_not() -> None:
    result = run(search("{min_hits: 100}"), answer(IDS))
    assert not result.success and result.reason == "assertion"
    assert result.details["top_ids"] == IDS[:10] and exported(result)
    down = run(search(), response(503, {"error": "down"}))
    assert down.details == {} and exported(down) == []
    assert "details" not in down.to_dict()


def test_rotating_queries_label_the_answer_with_its_query() -> None:
    p = search(extra="    queries: [laptop, phone]\n")
    second = run(p, answer(IDS), run_index=1)
    assert second.details["query"] == "phone"
    [(labels, _)] = exported(second)
    assert labels["query"] == "phone"


def test_the_elasticsearch_document_keeps_the_answer() -> None:
    result = run(search(), answer(IDS))
    doc = to_document(result, AgentIdentity("eu-west-1", "a1"))
    assert doc["probe"]["details"] == {"fingerprint": fingerprint(IDS[:10]), "top_ids": IDS[:10], "total": 40}


STEPS = """\
      - name: login
        request: {method: POST, url: "http://api.test/auth/token"}
      - name: search
        request: {url: "http://api.test/api/search?q=phone"}
        fingerprint: true
      - name: related
        request: {url: "http://api.test/api/related"}
        fingerprint: {hits_path: "$.results", id_field: sku, top_k: 2, total: true}
"""


def steps_handler(method: str, url: str, kwargs: dict[str, Any]) -> HttpResponse:
    if url.endswith("/api/search?q=phone"):
        return answer(IDS[:3], total=3)
    if url.endswith("/api/related"):
        return response(body={"total": 9, "results": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]})
    return response(body={"access_token": "t"})


def test_scripted_steps_opt_in_and_are_labelled_by_step() -> None:
    result = run_scripted(prober(STEPS), FakeHttp(steps_handler))
    assert result.success, result.message
    assert result.details == {"steps": {
        "search": {"fingerprint": fingerprint(IDS[:3]), "top_ids": IDS[:3], "total": 3},
        "related": {"fingerprint": fingerprint(["a", "b"], 9, with_total=True), "top_ids": ["a", "b"], "total": 9},
    }}
    by_step = {labels["step"]: int(value) for labels, value in exported(result)}
    assert by_step == {"search": fingerprint(IDS[:3]), "related": fingerprint(["a", "b"], 9, with_total=True)}


def test_a_step_without_a_list_of_hits_fails_with_a_clear_message() -> None:
    result = run_scripted(prober(STEPS), FakeHttp(lambda m, u, k: response(body={"hits": "none"})))
    assert not result.success
    assert result.message == "step search: fingerprint: no list of hits at $.hits in the response"
    assert result.samples == [] and exported(result) == []


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("    expect: {fingerprint_top_k: 0}\n", "agent.yaml:6: probes[0].expect.fingerprint_top_k:"),
        ("    expect: {fingerprint_total: maybe}\n", "agent.yaml:6: probes[0].expect.fingerprint_total:"),
    ],
)
def test_search_fingerprint_options_are_checked_at_load(snippet: str, message: str) -> None:
    text = "probes:\n  - name: s\n    type: search\n    url: http://api.test/\n    interval: 10s\n" + snippet
    with pytest.raises(ConfigError) as info:
        parse_config(text, "agent.yaml", env={})
    assert any(line.startswith(message) for line in info.value.messages), info.value.messages


def test_step_fingerprint_options_are_checked_at_load() -> None:
    bad = "      - name: s\n        request: {url: http://api.test/}\n        fingerprint: {hits: $.x}\n"
    with pytest.raises(ConfigError) as info:
        prober(bad)
    expected = "agent.yaml:8: probes[0].steps[0].fingerprint.hits: "
    assert any(line.startswith(expected) for line in info.value.messages), info.value.messages
