"""The agent's status page, probe pages, plain-text debug view and "run now", over HTTP against a real
agent probing the demo search API (the browser tests look at the same pages in Chromium)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.processes import wait_until
from tests.support.status import API_KEY, DemoAgent, demo_agent, probe_names

HISTORY = 5
ROW = re.compile(r'<tr class="state-[a-z]+" data-probe="(?P<probe>[^"]+)" data-state="(?P<state>[a-z]+)">')


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoAgent]:
    with demo_agent(tmp_path_factory.mktemp("status"), history=HISTORY) as running:
        yield running


def rows(demo: DemoAgent) -> list[tuple[str, str]]:
    page = httpx.get(demo.url + "/", timeout=10)
    assert page.status_code == 200
    return [(m["probe"], m["state"]) for m in ROW.finditer(page.text)]


def debug(demo: DemoAgent, probe: str) -> str:
    response = httpx.get(f"{demo.url}/probes/{probe}", params={"debug": "true"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_every_probe_runs_soon_after_start_and_is_listed(demo: DemoAgent) -> None:
    # hourly-search runs every hour, yet its first run comes within seconds of the start.
    wait_until(lambda: all(state != "pending" for _, state in rows(demo)), 12, what="a first run of every probe")
    listed = rows(demo)
    assert sorted(name for name, _ in listed) == sorted(probe_names())
    assert {state for _, state in listed} <= {"up", "degraded"}, listed
    page = httpx.get(demo.url + "/").text
    assert '<meta http-equiv="refresh"' in page
    assert "<svg class=\"spark\"" in page
    assert not re.search(r"(src|href)=['\"]https?://", page), "the page must not load external assets"


def test_history_is_bounded_by_agent_history(demo: DemoAgent) -> None:
    def runs_shown() -> int:
        found = re.search(r"of the last (\d+) runs", debug(demo, "api-health"))
        return int(found.group(1)) if found else 0

    wait_until(lambda: runs_shown() >= HISTORY, 20, what=f"{HISTORY} runs of api-health")
    assert runs_shown() == HISTORY
    page = httpx.get(demo.url + "/probes/api-health").text
    assert f'aria-label="last {HISTORY} runs: 0 failed"' in page


def test_debug_view_shows_the_exchange_with_secrets_redacted(demo: DemoAgent) -> None:
    text = debug(demo, "hourly-search")
    assert "type: search" in text
    assert re.search(r"^> GET http://127\.0\.0\.1:\d+/api/search\?", text, re.M), text
    assert "> X-Api-Key: <redacted>" in text
    assert "< HTTP 200" in text and "< content-type: application/json" in text.lower()
    assert re.search(r"^body \(\d+ bytes", text, re.M)
    assert "phases:" in text and "processing" in text
    assert API_KEY not in text
    assert API_KEY not in httpx.get(demo.url + "/probes/hourly-search").text


def test_unknown_probe_is_404(demo: DemoAgent) -> None:
    assert httpx.get(demo.url + "/probes/no-such-probe").status_code == 404
    assert httpx.get(demo.url + "/probes/no-such-probe", params={"debug": "true"}).status_code == 404
    assert httpx.post(demo.url + "/probes/no-such-probe/run").status_code == 404


def test_run_now_returns_the_result_and_adds_a_run(demo: DemoAgent) -> None:
    def count() -> int:
        found = re.search(r"of the last (\d+) runs", debug(demo, "hourly-search"))
        assert found is not None
        return int(found.group(1))

    before = count()
    response = httpx.post(demo.url + "/probes/hourly-search/run", timeout=10)
    assert response.status_code == 200
    result = response.json()
    assert result["probe"] == "hourly-search" and result["success"] is True
    assert "exchanges" not in result  # the debug record stays in the debug view (size)
    assert count() == before + 1
    # /api/results stays small too.
    assert all("exchanges" not in r for r in httpx.get(demo.url + "/api/results").json())


def test_a_failing_scripted_probe_goes_first_and_its_debug_view_names_the_step(demo: DemoAgent) -> None:
    demo.faults.add(type="error", status=503, probability=1.0, match={"path": "^/api/search", "method": "GET"},
                    ttl="2m")
    try:
        wait_until(lambda: dict(rows(demo)).get("login-then-search") == "down", 20,
                   what="login-then-search to go down")
        listed = rows(demo)
        states = [state for _, state in listed]
        first_up = states.index("up") if "up" in states else len(states)
        assert all(state == "down" for state in states[:first_up]), listed
        assert "login-then-search" in [name for name, _ in listed[:first_up]]
        text = debug(demo, "login-then-search")
        assert "state: DOWN" in text
        assert re.search(r"^  search +FAILED .* 503 +status 503", text, re.M), text
        assert "reason: status" in text
        assert "Authorization: <redacted>" in text
        assert '"access_token":"<redacted>"' in text  # the token the login step extracted
        assert "=== last failure ===\nthe last run (above)" in text
    finally:
        demo.faults.clear()
    wait_until(lambda: dict(rows(demo)).get("login-then-search") == "up", 20, what="login-then-search to recover")
    text = debug(demo, "login-then-search")
    failure = text.split("=== last failure ===", 1)[1]
    assert "FAILED at" in failure and "status 503" in failure  # the last failure outlives the recovery
