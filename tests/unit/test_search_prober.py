"""The search prober's own checks: hits and total, golden ids within the top k, the server's `took`,
and rotating queries."""

from __future__ import annotations

import asyncio

from probes.agent.config_file import parse_config
from probes.probers.base import RunContext
from probes.probers.search import SearchProbeConfig, SearchProber
from probes.result import ProbeResult
from tests.support.fake_http import FakeHttp, response


def prober(yaml_body: str) -> SearchProber:
    text = f"probes:\n  - name: s\n    type: search\n    url: http://api.test/api/search\n{yaml_body}"
    probe = parse_config(text, "agent.yaml", env={}).probes[0]
    assert isinstance(probe, SearchProbeConfig)
    return SearchProber(probe)


def run(p: SearchProber, http: FakeHttp, run_index: int = 0) -> ProbeResult:
    return asyncio.run(p.run(RunContext(run=run_index, timeout=2.0, http=http)))  # type: ignore[arg-type]


def answer(ids: list[str], total: int | None = None, took: float = 5) -> FakeHttp:
    body = {"total": len(ids) if total is None else total, "took_ms": took,
            "hits": [{"id": i, "score": 1.0} for i in ids]}
    return FakeHttp(lambda m, u, kw: response(200, body))


def hits_sample(result: ProbeResult) -> float:
    return next(s.value for s in result.samples if s.name == "probe_search_hits")


def test_hits_are_counted_from_the_total_and_checked_against_min_hits() -> None:
    ok = run(prober("    expect: {min_hits: 2}\n"), answer(["a", "b", "c"], total=120))
    assert ok.success and hits_sample(ok) == 120
    few = run(prober("    expect: {min_hits: 2}\n"), answer(["a"]))
    assert (few.success, few.reason, few.message) == (False, "assertion", "1 hits, expected at least 2")
    assert hits_sample(few) == 1  # exported even when the check fails


def test_golden_ids_must_be_within_the_top_k() -> None:
    p = prober("    expect: {top_k_contains: [sku-1], top_k: 2}\n")
    assert run(p, answer(["sku-9", "sku-1", "sku-3"])).success
    missed = run(p, answer(["sku-9", "sku-3", "sku-1"]))
    assert (missed.success, missed.reason) == (False, "assertion") and "sku-1" in missed.message


def test_server_took_over_its_limit_is_a_latency_failure() -> None:
    result = run(prober("    expect: {max_took_ms: 50}\n"), answer(["a"], took=80))
    assert (result.success, result.reason) == (False, "latency")


def test_queries_rotate_run_by_run() -> None:
    p = prober("    queries: [laptop, phone]\n")
    sent = []
    for index in range(3):
        http = answer(["a"])
        run(p, http, run_index=index)
        sent.append(http.calls[0][2]["params"]["q"])
    assert sent == ["laptop", "phone", "laptop"]
