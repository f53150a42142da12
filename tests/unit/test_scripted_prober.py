"""The scripted prober with an in-process fake client: variables, extract forms, optional / always_run /
skipped steps, failure messages, one deadline for all steps, phases and certificate expiry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from probes.agent.config_file import parse_config
from probes.errors import ProbeFailed
from probes.probers._http.certs import not_after
from probes.probers._http.client import HttpResponse
from probes.probers.base import RunContext
from probes.probers.scripted import ScriptedProbeConfig, ScriptedProber, as_text, compile_template
from probes.result import ProbeResult
from tests.support.fake_http import PHASES, FakeHttp, response
from tests.support.tls import der_expiring_in


def prober(steps_yaml: str, timeout: str = "5s", env: dict[str, str] | None = None) -> ScriptedProber:
    text = f"probes:\n  - name: flow\n    type: scripted\n    timeout: {timeout}\n    steps:\n{steps_yaml}"
    probe = parse_config(text, "agent.yaml", env=env or {}).probes[0]
    assert isinstance(probe, ScriptedProbeConfig)
    return ScriptedProber(probe)


def run(p: ScriptedProber, http: FakeHttp, timeout: float = 5.0) -> ProbeResult:
    return asyncio.run(p.run(RunContext(run=0, timeout=timeout, http=http)))  # type: ignore[arg-type]


LOGIN_SEARCH = """\
      - name: login
        request: {method: POST, url: "http://api.test/auth/token", json: {user: probe}}
        extract: {token: "$.access_token"}
      - name: search
        request:
          url: "http://api.test/api/search"
          params: {q: phone, exact: true}
          headers: {Authorization: "Bearer ${token}"}
        expect: {status: [200]}
"""


def login_search(method: str, url: str, kwargs: dict[str, Any]) -> HttpResponse:
    if url.endswith("/auth/token"):
        return response(body={"access_token": "t-123"})
    if not url.endswith("/api/search"):
        return response()
    ok = (kwargs.get("headers") or {}).get("Authorization") == "Bearer t-123"
    return response(200 if ok else 401, {"total": 3})


# --- templates -------------------------------------------------------------------------------------

def test_a_value_without_variables_is_passed_through_untouched() -> None:
    assert compile_template("http://x/${HOME}", frozenset({"token"})) is None
    assert compile_template({"a": ["b", 1]}, frozenset({"token"})) is None


def test_templates_render_text_and_keep_json_types_for_a_whole_value() -> None:
    names = frozenset({"id", "token"})
    body = compile_template({"id": "${id}", "note": "id=${id}", "list": ["${token}", 2]}, names, keep_type=True)
    assert body is not None
    assert body({"id": 42, "token": "t"}) == {"id": 42, "note": "id=42", "list": ["t", 2]}
    url = compile_template("http://x/items/${id}?t=${token}&lit=${OTHER}", names)
    assert url is not None
    assert url({"id": 7, "token": "abc"}) == "http://x/items/7?t=abc&lit=${OTHER}"


def test_non_string_values_read_as_json_inside_text() -> None:
    assert as_text("s") == "s"
    assert as_text(True) == "true"
    assert as_text({"a": [1]}) == '{"a":[1]}'


# --- flows -----------------------------------------------------------------------------------------

def test_a_token_from_the_first_step_authorises_the_second() -> None:
    http = FakeHttp(login_search)
    result = run(prober(LOGIN_SEARCH), http)
    assert result.success, result.message
    assert [s.step for s in result.steps] == ["login", "search"]
    assert all(s.success for s in result.steps)
    _, _, search_args = http.calls[1]
    assert search_args["headers"]["Authorization"] == "Bearer t-123"
    assert search_args["params"] == {"q": "phone", "exact": "true"}
    assert http.calls[0][2]["json"] == {"user": "probe"}
    assert result.status_code == 200
    assert result.message.startswith("2 steps in ")


def test_variables_reach_url_params_headers_json_form_and_body() -> None:
    steps = """\
      - name: one
        request: {url: "http://api.test/one"}
        extract: {id: "$.id", tag: {header: X-Tag}, word: {regex: 'word=(\\w+)', group: 1}}
      - name: url-params-headers-json
        request:
          method: POST
          url: "http://api.test/items/${id}"
          params: {tag: "${tag}"}
          headers: {X-Word: "${word}"}
          json: {id: "${id}", label: "${tag}-${word}"}
      - name: form
        request: {method: POST, url: "http://api.test/form", form: {word: "${word}"}}
      - name: body
        request: {method: POST, url: "http://api.test/body", body: "id=${id}"}
"""

    def handler(method: str, url: str, kwargs: dict[str, Any]) -> HttpResponse:
        return response(body='{"id": 17, "text": "word=banana"}', headers={"x-tag": "blue"})

    http = FakeHttp(handler)
    result = run(prober(steps), http)
    assert result.success, result.message
    _, url, args = http.calls[1]
    assert url == "http://api.test/items/17"
    assert args["params"] == {"tag": "blue"}
    assert args["headers"] == {"X-Word": "banana"}
    assert args["json"] == {"id": 17, "label": "blue-banana"}
    assert http.calls[2][2]["data"] == {"word": "banana"}
    assert http.calls[3][2]["data"] == b"id=17"


def test_environment_variables_keep_working_beside_extracted_ones() -> None:
    steps = LOGIN_SEARCH.replace('headers: {Authorization: "Bearer ${token}"}',
                                 'headers: {Authorization: "Bearer ${token}", X-Region: "${REGION}"}')
    http = FakeHttp(login_search)
    assert run(prober(steps, env={"REGION": "eu-west-1", "token": "from-env"}), http).success
    assert http.calls[1][2]["headers"] == {"Authorization": "Bearer t-123", "X-Region": "eu-west-1"}


def test_a_failing_second_step_names_the_step_and_skips_the_rest() -> None:
    steps = LOGIN_SEARCH.replace("Bearer ${token}", "Bearer ${token}-tampered") + """\
      - name: details
        request: {url: "http://api.test/api/items/1"}
      - name: logout
        always_run: true
        request: {method: POST, url: "http://api.test/auth/logout"}
"""
    http = FakeHttp(login_search)
    result = run(prober(steps), http)
    assert not result.success
    assert result.reason == "status"
    assert result.message == "step search: status 401, expected one of [200]"
    assert result.status_code == 401
    states = {s.step: (s.success, s.reason) for s in result.steps}
    assert states == {"login": (True, None), "search": (False, "status"), "details": (False, "skipped"),
                      "logout": (True, None)}
    assert [c[1].rsplit("/", 1)[1] for c in http.calls] == ["token", "search", "logout"]


def test_an_optional_step_may_fail_and_the_probe_still_succeeds() -> None:
    steps = LOGIN_SEARCH + """\
      - name: recommendations
        optional: true
        request: {url: "http://api.test/api/recommendations"}
        expect: {status: [200]}
      - name: health
        request: {url: "http://api.test/health"}
"""

    def handler(method: str, url: str, kwargs: dict[str, Any]) -> HttpResponse:
        if url.endswith("recommendations"):
            return response(503)
        return login_search(method, url, kwargs)

    result = run(prober(steps), FakeHttp(handler))
    assert result.success
    assert result.reason is None
    step = result.steps[2]
    assert (step.step, step.success, step.reason, step.optional) == ("recommendations", False, "status", True)
    assert result.steps[3].success
    assert "optional step recommendations failed: status 503" in result.message


def test_a_variable_from_a_failed_optional_step_fails_its_user_with_extract() -> None:
    steps = """\
      - name: find
        optional: true
        request: {url: "http://api.test/api/search"}
        extract: {first: "$.hits[0].id"}
      - name: item
        request: {url: "http://api.test/api/items/${first}"}
"""
    http = FakeHttp(lambda m, u, k: response(body={"hits": []}))
    result = run(prober(steps), http)
    assert not result.success
    assert result.reason == "extract"
    assert result.steps[0].reason == "extract"
    assert "first" in result.steps[0].message and "matched nothing" in result.steps[0].message
    assert result.steps[1].reason == "extract"
    assert result.message == "step item: ${first} is not set: step find, which extracts it, did not succeed"
    assert len(http.calls) == 1  # the step with the unset variable sent nothing


@pytest.mark.parametrize(
    ("rule", "body", "headers", "expected"),
    [
        ('"$.missing"', '{"a": 1}', {}, "extract token: $.missing matched nothing"),
        ('"$.a"', "not json", {}, "extract token: response is not valid JSON"),
        ("{regex: 'token=(\\w+)'}", "nothing here", {}, "extract token: /token=(\\w+)/ matched nothing"),
        ("{regex: 'token'}", "token", {}, "extract token: /token/ has no group 1"),
        ("{header: X-Token}", "{}", {}, "extract token: header X-Token missing"),
    ],
)
def test_an_extract_that_matches_nothing_fails_with_extract(rule: str, body: str, headers: dict[str, str],
                                                            expected: str) -> None:
    steps = f"""\
      - name: login
        request: {{url: "http://api.test/login"}}
        extract: {{token: {rule}}}
"""
    result = run(prober(steps), FakeHttp(lambda m, u, k: response(body=body, headers=headers)))
    assert not result.success
    assert result.reason == "extract"
    assert result.steps[0].message.startswith(expected)


def test_expect_is_checked_before_extract_so_a_wrong_status_is_reported_as_status() -> None:
    steps = """\
      - name: login
        request: {url: "http://api.test/login"}
        extract: {token: "$.access_token"}
"""
    result = run(prober(steps), FakeHttp(lambda m, u, k: response(500, {"error": "boom"})))
    assert (result.reason, result.message) == ("status", "step login: status 500, expected 2xx")


def test_a_connection_error_is_the_step_reason() -> None:
    def refuse(method: str, url: str, kwargs: dict[str, Any]) -> HttpResponse:
        raise ProbeFailed("connection", "cannot connect: Connection refused")

    result = run(prober(LOGIN_SEARCH), FakeHttp(refuse))
    assert (result.reason, result.message) == ("connection", "step login: cannot connect: Connection refused")
    assert result.steps[1].reason == "skipped"


def test_every_step_shares_one_deadline() -> None:
    steps = """\
      - name: slow
        request: {url: "http://api.test/slow"}
      - name: next
        request: {url: "http://api.test/next"}
"""

    async def slow(method: str, url: str, kwargs: dict[str, Any]) -> HttpResponse:
        if url.endswith("slow"):
            await asyncio.sleep(0.15)
        return response()

    http = FakeHttp(slow)
    result = run(prober(steps, timeout="1s"), http, timeout=0.2)
    assert result.success
    first, second = (call[2]["timeout"] for call in http.calls)
    assert first == pytest.approx(0.2, abs=0.01)
    assert second < 0.06  # what the first step left, not a fresh 0.2 s


def test_a_step_with_no_time_left_does_not_start() -> None:
    steps = """\
      - name: slow
        request: {url: "http://api.test/slow"}
      - name: next
        request: {url: "http://api.test/next"}
"""

    async def slow(method: str, url: str, kwargs: dict[str, Any]) -> HttpResponse:
        await asyncio.sleep(0.12)
        return response()

    result = run(prober(steps, timeout="1s"), FakeHttp(slow), timeout=0.1)
    assert not result.success
    assert result.steps[1].reason == "timeout"
    assert "timeout was used up" in result.steps[1].message


def test_phases_and_status_add_up_over_steps_and_the_earliest_certificate_wins() -> None:
    soon, later = der_expiring_in(days=3), der_expiring_in(days=300)

    def handler(method: str, url: str, kwargs: dict[str, Any]) -> HttpResponse:
        if url.endswith("/auth/token"):
            return response(body={"access_token": "t-123"}, cert_der=later)
        return response(body={"total": 1}, cert_der=soon)

    result = run(prober(LOGIN_SEARCH), FakeHttp(handler))
    assert result.success
    assert result.phases == pytest.approx({k: 2 * v for k, v in PHASES.items()})
    assert result.duration_seconds == pytest.approx(2 * 0.007)  # the steps' request time: phases add up to it
    assert result.cert_expiry == not_after(soon)


def test_a_slow_step_makes_the_probe_degraded_and_max_latency_fails_it() -> None:
    steps = """\
      - name: search
        request: {url: "http://api.test/api/search"}
        expect: {degraded_latency: 5ms, max_latency: 1s}
"""
    result = run(prober(steps), FakeHttp(lambda m, u, k: response(elapsed=0.05)))
    assert result.success and result.degraded
    assert result.message.startswith("step search degraded: took 50ms")
    failing = run(prober(steps.replace("max_latency: 1s", "max_latency: 10ms")),
                  FakeHttp(lambda m, u, k: response(elapsed=0.05)))
    assert (failing.success, failing.reason) == (False, "latency")


def test_every_http_assertion_works_per_step() -> None:
    steps = """\
      - name: search
        request: {url: "http://api.test/api/search"}
        expect:
          status: [200]
          body_matches: "laptop"
          body_not_matches: "error"
          headers: {content-type: "application/json"}
          json: [{path: "$.total", gt: 0}]
          schema: {type: object, required: [total]}
"""
    ok = response(body={"total": 1, "hits": ["laptop"]}, headers={"Content-Type": "application/json"})
    assert run(prober(steps), FakeHttp(lambda m, u, k: ok)).success
    bad = response(body={"total": 0, "hits": ["laptop"]}, headers={"Content-Type": "application/json"})
    result = run(prober(steps), FakeHttp(lambda m, u, k: bad))
    assert (result.reason, result.message) == ("assertion", "step search: $.total is 0, expected > 0")
