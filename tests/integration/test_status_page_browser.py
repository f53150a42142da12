"""The status page as an on-call engineer sees it: headless Chromium against a running agent probing the
demo search API. Screenshots land in a temporary folder, or in docs/screenshots/ (the ones the README
shows) with PROBE_AGENT_SCREENSHOTS=docs/screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import Browser, chromium_binary, headless_chromium
from tests.support.status import DemoAgent, demo_agent, probe_names

pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed "
                                "(tests/run.sh installs the Debian package)")

ROWS = "[...document.querySelectorAll('tr[data-probe]')].map(r => [r.dataset.probe, r.dataset.state])"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoAgent]:
    with demo_agent(tmp_path_factory.mktemp("browser"), history=30) as running:
        yield running


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A test run must not rewrite tracked files: the README's pictures are refreshed only when asked for.
    wanted = os.environ.get("PROBE_AGENT_SCREENSHOTS")
    return Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as chromium:
        yield chromium


def _all_ran(rows: Any) -> bool:
    return bool(rows) and all(state != "pending" for _, state in rows)


def test_status_page_in_a_browser(demo: DemoAgent, browser: Browser, shots: Path) -> None:
    # ?refresh=1: the page reloads itself every second; the test never reloads it.
    browser.goto(demo.url + "/?refresh=1")
    rows = browser.poll(ROWS, _all_ran, 30, what="every probe's first run")
    assert sorted(name for name, _ in rows) == sorted(probe_names())
    assert browser.eval("document.querySelectorAll('svg.spark').length") == len(rows)
    browser.poll(ROWS, lambda rows: all(state == "up" for _, state in rows), 30, what="every probe up")
    # hourly-search has run once (soon after start) and will not run again by itself.
    hourly_runs = browser.eval("document.querySelector('tr[data-probe=\"hourly-search\"] svg title').textContent")
    browser.screenshot(shots / "status-page.png")

    demo.faults.add(type="error", status=503, probability=1.0, match={"path": "^/api/search", "method": "GET"},
                    ttl="2m")
    try:
        rows = browser.poll(ROWS, lambda rows: bool(rows) and dict(rows).get("login-then-search") == "down"
                            and dict(rows).get("search-laptop-canary") == "down", 30,
                            what="login-then-search and search-laptop-canary DOWN, without a reload")
        states = [state for _, state in rows]
        # Failing first: before the fault it was listed after api-health and api-ready.
        assert states == sorted(states, key=lambda s: {"down": 0, "degraded": 1, "pending": 2, "up": 3}[s])
        assert [name for name, _ in rows].index("login-then-search") < states.count("down")
        word = browser.eval("document.querySelector('tr[data-probe=\"login-then-search\"] .badge').textContent")
        assert word == "DOWN"
        colour = browser.eval("getComputedStyle(document.querySelector("
                              "'tr[data-probe=\"login-then-search\"] .badge')).backgroundColor")
        assert colour == "rgb(197, 34, 31)"  # red
        browser.screenshot(shots / "status-page-failing.png")

        # The probe's page: the failing step and the reason, from the debug record.
        browser.eval("document.querySelector('tr[data-probe=\"login-then-search\"] a').click()")
        browser.poll("location.pathname", lambda p: p == "/probes/login-then-search", 10, what="the probe page")
        browser.poll("document.readyState", lambda s: s == "complete", 10, what="the probe page to load")
        # The last run is the failure (the fault is still on), so the page shows it under "Last run".
        failed_step = browser.eval("[...document.querySelectorAll('#last-run tr[data-step]')]"
                                   ".filter(r => r.className === 'state-down').map(r => r.innerText)")
        assert len(failed_step) == 1 and failed_step[0].startswith("search"), failed_step
        assert "503" in failed_step[0] and "status" in failed_step[0]
        failure = browser.eval("document.querySelector('#last-run').innerText")
        assert "reason: status" in failure and "Authorization: <redacted>" in failure
        browser.screenshot(shots / "probe-page-failing.png")

        # "Run now" on a probe that would not run for an hour: the page changes to show the new run.
        browser.goto(demo.url + "/probes/hourly-search?refresh=0")
        assert browser.eval("document.querySelector('#state').dataset.state") == "up"
        assert browser.eval("document.querySelector('svg.spark title').textContent") == hourly_runs
        browser.eval("document.querySelector('#run-now button').click()")
        state = browser.poll("document.querySelector('#state') && document.querySelector('#state').dataset.state",
                             lambda s: s == "down", 15, what="hourly-search to show DOWN after Run now")
        assert state == "down"
        assert browser.eval("document.querySelector('svg.spark title').textContent") != hourly_runs
        browser.screenshot(shots / "probe-page-run-now.png")
    finally:
        demo.faults.clear()

    browser.goto(demo.url + "/probes/login-then-search?debug=true")
    text = browser.eval("document.body.innerText")
    assert text.startswith("probe: login-then-search") and "=== last failure ===" in text
    browser.screenshot(shots / "debug-text.png", full_page=False)
