"""The http prober's own logic, with an in-process client: what it sends, how an answer becomes a result."""

from __future__ import annotations

import asyncio
from typing import Any

from probes.agent.config_file import parse_config
from probes.errors import ProbeFailed
from probes.probers.base import RunContext
from probes.probers.http import HttpProbeConfig, HttpProber
from probes.result import ProbeResult
from tests.support.fake_http import PHASES, FakeHttp, response


def prober(yaml_body: str) -> HttpProber:
    text = f"probes:\n  - name: api\n    type: http\n    url: http://api.test/health\n{yaml_body}"
    probe = parse_config(text, "agent.yaml", env={}).probes[0]
    assert isinstance(probe, HttpProbeConfig)
    return HttpProber(probe)


def run(p: HttpProber, http: FakeHttp, timeout: float = 2.0) -> ProbeResult:
    return asyncio.run(p.run(RunContext(run=0, timeout=timeout, http=http)))  # type: ignore[arg-type]


def test_sends_the_configured_request_with_defaults_applied_while_decoding() -> None:
    text = ("defaults: {headers: {X-Team: search}, max_body_bytes: 1024}\n"
            "probes:\n  - {name: api, type: http, url: 'http://api.test/x', method: post, "
            "params: {exact: true, n: 3}, headers: {X-Team: own}, json: {q: 1}}\n")
    probe = parse_config(text, "agent.yaml", env={}).probes[0]
    assert isinstance(probe, HttpProbeConfig)
    http = FakeHttp(lambda m, u, kw: response(200))
    run(HttpProber(probe), http)
    ((method, url, kwargs),) = http.calls
    assert (method, url) == ("POST", "http://api.test/x")
    assert kwargs["params"] == {"exact": "true", "n": "3"}  # YAML booleans as a query string writes them
    assert kwargs["headers"] == {"X-Team": "own"}  # the probe's own header wins over the default
    assert kwargs["max_body_bytes"] == 1024 and kwargs["json"] == {"q": 1}
    assert probe.interval == 30 and probe.timeout == 10  # inherited at decode time, never None


def test_a_good_answer_is_a_success_with_status_phases_and_a_message() -> None:
    result = run(prober("    expect: {status: [200], body_matches: healthy}\n"),
                 FakeHttp(lambda m, u, kw: response(200, {"status": "healthy"}, elapsed=0.012)))
    assert result.success and result.reason is None
    assert result.status_code == 200 and result.phases == PHASES
    assert result.message == "200 in 12.0ms" and result.target == "http://api.test/health"


def test_a_wrong_status_fails_with_reason_status_and_keeps_the_code() -> None:
    result = run(prober(""), FakeHttp(lambda m, u, kw: response(503)))
    assert (result.success, result.reason, result.status_code) == (False, "status", 503)
    assert result.message == "status 503, expected 2xx"


def test_slow_is_degraded_then_failed() -> None:
    p = prober("    expect: {degraded_latency: 100ms, max_latency: 300ms}\n")
    degraded = run(p, FakeHttp(lambda m, u, kw: response(200, elapsed=0.2)))
    assert degraded.success and degraded.degraded
    failed = run(p, FakeHttp(lambda m, u, kw: response(200, elapsed=0.4)))
    assert (failed.success, failed.reason) == (False, "latency")


def test_a_request_that_fails_keeps_its_reason_and_an_http_shaped_result() -> None:
    def refuse(m: str, u: str, kw: dict[str, Any]) -> Any:
        raise ProbeFailed("connection", "cannot connect: Connection refused")

    result = run(prober(""), FakeHttp(refuse))
    assert (result.success, result.reason) == (False, "connection")
    assert result.phases == {} and result.steps is None  # status/phase series stay exported, as 0
