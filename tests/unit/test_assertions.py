from __future__ import annotations

import asyncio

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from probes.config.models import Expect
from probes.errors import ProbeFailed
from probes.probers._http.client import HttpResponse
from probes.probers._http.expect import ResponseView, Verdict, check_latency, check_response


def evaluate(expect: Expect, view: ResponseView, elapsed: float) -> Verdict:
    """What a prober does with a response: the checks, then the latency verdict."""
    try:
        asyncio.run(check_response(expect, view))
    except ProbeFailed as failed:
        return Verdict(False, failed.reason, failed.message)
    return check_latency(expect, elapsed)

def _resp(body: bytes = b'{"status": "ok", "items": [1, 2, 3]}', status: int = 200,
          headers: dict[str, str] | None = None) -> ResponseView:
    return ResponseView(HttpResponse(status=status, headers=CIMultiDictProxy(CIMultiDict(headers or {})),
                                     body=body, url="http://x/", elapsed=0.01))


def _expect(**kw: object) -> Expect:
    return Expect.model_validate(kw)


def test_default_status_is_any_2xx() -> None:
    assert evaluate(_expect(), _resp(status=204), 0.01).success
    verdict = evaluate(_expect(), _resp(status=301), 0.01)
    assert (verdict.success, verdict.reason) == (False, "status")


def test_status_is_checked_before_content_and_latency() -> None:
    verdict = evaluate(_expect(status=[200], body_matches="nope", max_latency="1ms"), _resp(status=500), 5.0)
    assert verdict.reason == "status"


def test_latency_failure_and_degraded() -> None:
    assert evaluate(_expect(max_latency="100ms"), _resp(), 0.2).reason == "latency"
    degraded = evaluate(_expect(max_latency="1s", degraded_latency="100ms"), _resp(), 0.2)
    assert degraded.success and degraded.degraded


@pytest.mark.parametrize(("check", "ok"), [
    ({"path": "$.items", "contains": 2}, True),
    ({"path": "$.items", "contains": 9}, False),
    ({"path": "$.items[*]", "all_equal": 1}, False),
    ({"path": "$.status", "matches": "^o"}, True),
    ({"path": "$.status", "gt": 1}, False),
    ({"path": "$.nothing", "exists": False}, True),
    ({"path": "$.status", "not_equals": "ok"}, False),
])
def test_json_operators(check: dict[str, object], ok: bool) -> None:
    assert evaluate(_expect(json=[check]), _resp(), 0.01).success is ok


def test_json_check_needs_exactly_one_operator() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _expect(json=[{"path": "$.a", "equals": 1, "gt": 0}])
    with pytest.raises(ValueError, match="exactly one"):
        _expect(json=[{"path": "$.a"}])


def test_equals_null_is_an_operator() -> None:
    verdict = evaluate(_expect(json=[{"path": "$.v", "equals": None}]), _resp(b'{"v": null}'), 0.01)
    assert verdict.success


def test_header_names_are_case_insensitive() -> None:
    verdict = evaluate(_expect(headers={"Content-Type": "json"}), _resp(headers={"content-type": "application/json"}),
                       0.01)
    assert verdict.success


def test_schema() -> None:
    schema = {"type": "object", "required": ["status"], "properties": {"items": {"type": "array",
                                                                                 "items": {"type": "string"}}}}
    verdict = evaluate(_expect(schema=schema), _resp(), 0.01)
    assert verdict.reason == "assertion" and "$['items'][0]" in verdict.message
