"""The runner against a fake Prometheus (in-process) and the real demo app's fault API: baseline, watch,
revert, resolution, bounds, and the checks that stop a drill before anything is injected."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from probes.asgi_server import AsgiServer
from probes.drills.command import run_and_report
from probes.drills.conduct import Runner
from probes.drills.results import Report
from probes.drills.spec import parse
from probes.errors import ConfigError

CONFIG_YAML = """
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - {job_name: demo-api, scrape_interval: 1s}
"""


class FakePrometheus:
    """Answers like Prometheus; HighErrorRate is pending, then firing, while the target has a fault."""

    def __init__(self, target: str, *, busy: bool = False) -> None:
        self.target = target
        self.busy = busy
        self.polls_with_fault = 0

    async def _fault_active(self) -> bool:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.target}/-/faults", headers={"Authorization": "Bearer T"})
        return bool(response.json()["faults"])

    def app(self) -> Starlette:
        def ok(data: Any) -> Response:
            return JSONResponse({"status": "success", "data": data})

        async def buildinfo(request: Request) -> Response:
            return ok({"version": "2.42.0"})

        async def rules(request: Request) -> Response:
            rule = {"type": "alerting", "name": "HighErrorRate", "query": "rate(x[5m]) > 0.05", "duration": 2,
                    "labels": {"severity": "critical"}, "annotations": {}, "alerts": [], "health": "ok"}
            return ok({"groups": [{"name": "demo-api", "file": "r.yml", "interval": 1, "rules": [rule]}]})

        async def config(request: Request) -> Response:
            return ok({"yaml": CONFIG_YAML})

        async def alerts(request: Request) -> Response:
            labels = {"alertname": "HighErrorRate", "job": "demo-api", "severity": "critical"}
            if self.busy:
                return ok({"alerts": [{"labels": labels, "state": "firing", "activeAt": "x", "value": "1"}]})
            if not await self._fault_active():
                self.polls_with_fault = 0
                return ok({"alerts": []})
            self.polls_with_fault += 1
            state = "pending" if self.polls_with_fault < 3 else "firing"
            return ok({"alerts": [{"labels": labels, "state": state, "activeAt": "x", "value": "1"}]})

        async def query(request: Request) -> Response:
            # Every series the drill waits for is there; requests arrive 10 per second.
            value = "10" if request.query_params["query"].startswith("sum(rate(") else "1"
            return ok({"resultType": "vector", "result": [{"metric": {}, "value": [0, value]}]})

        return Starlette(routes=[
            Route("/api/v1/status/buildinfo", buildinfo), Route("/api/v1/rules", rules),
            Route("/api/v1/status/config", config), Route("/api/v1/alerts", alerts),
            Route("/api/v1/query", query),
        ])


def _drills(prometheus: str, target: str, alert: str = "HighErrorRate", labels: str = "{severity: critical}",
            within: str = "6s") -> str:
    return f"""
prometheus: {prometheus}
poll_interval: 50ms
drills:
  - name: errors
    fault:
      injector: target
      control: {target}
      token: T
      spec: {{type: error, match: {{path: "^/api/search"}}}}
      ttl: 30s
    expect: [{{alert: {alert}, labels: {labels}, within: {within}}}]
    resolve_within: 5s
  - name: other
    fault:
      injector: target
      control: {target}
      token: ${{DRILL_UNIT_UNSET_TOKEN}}
      spec: {{type: error}}
    expect: [{{alert: {alert}}}]
"""


def _with_servers(body: Callable[[str, str, FakePrometheus], Awaitable[None]], *, busy: bool = False) -> None:
    from probes.demo.app import create_app

    async def main() -> None:
        target = AsgiServer(create_app(admin_token="T"), "127.0.0.1", 0)
        await target.start()
        fake = FakePrometheus(target.url, busy=busy)
        prometheus = AsgiServer(fake.app(), "127.0.0.1", 0)
        await prometheus.start()
        try:
            await body(prometheus.url, target.url, fake)
        finally:
            await prometheus.stop()
            await target.stop()

    asyncio.run(main())


async def _faults(target: str) -> list[Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{target}/-/faults", headers={"Authorization": "Bearer T"})
    result: list[Any] = response.json()["faults"]
    return result


def test_drill_passes_reverts_and_resolves() -> None:
    async def body(prometheus: str, target: str, fake: FakePrometheus) -> None:
        out = io.StringIO()
        report = await Runner(parse(_drills(prometheus, target), "d.yaml", select=["errors"]), out).run(["errors"])
        [drill] = report.drills
        assert drill.passed, out.getvalue()
        [alert] = drill.alerts
        assert alert.pending is not None and alert.firing is not None and alert.pending <= alert.firing
        assert alert.resolved is not None and drill.reverted is not None
        assert alert.bound is not None and alert.bound.firing == 0.1 + 2 * 1 + 1 + 2  # request gap, 2 scrapes
        # The fake fires after three polls, sooner than `for` allows a real Prometheus: outside the bound.
        assert alert.firing < 2 and alert.within_bound is False
        assert await _faults(target) == []
        assert "HighErrorRate pending" in out.getvalue() and "fault reverted" in out.getvalue()

    _with_servers(body)


def test_alert_already_firing_means_nothing_is_injected() -> None:
    async def body(prometheus: str, target: str, fake: FakePrometheus) -> None:
        loaded = parse(_drills(prometheus, target), "d.yaml", select=["errors"])
        report = await Runner(loaded, io.StringIO()).run(["errors"])
        [drill] = report.drills
        assert not drill.passed and not drill.injected
        assert drill.error is not None and "already active before injection" in drill.error
        assert await _faults(target) == []

    _with_servers(body, busy=True)


@pytest.mark.parametrize(("alert", "labels", "message"), [
    ("NoSuchAlert", "{}", "d.yaml:12: drills[0].expect[0].alert: no alerting rule 'NoSuchAlert' in Prometheus "
                          "(known: HighErrorRate)"),
    ("HighErrorRate", "{severity: info}", "d.yaml:12: drills[0].expect[0].labels: no rule 'HighErrorRate' has these"),
])
def test_unknown_alert_is_a_config_error_before_injecting(alert: str, labels: str, message: str) -> None:
    async def body(prometheus: str, target: str, fake: FakePrometheus) -> None:
        with pytest.raises(ConfigError) as info:
            await Runner(parse(_drills(prometheus, target, alert, labels), "d.yaml", select=["errors"]),
                         io.StringIO()).run(["errors"])
        assert info.value.messages[0].startswith(message)
        assert await _faults(target) == []

    _with_servers(body)


def test_run_and_report_exit_codes(tmp_path: Any) -> None:
    async def body(prometheus: str, target: str, fake: FakePrometheus) -> None:
        loaded = parse(_drills(prometheus, target), "d.yaml", select=["errors"])
        assert await run_and_report(loaded, ["errors"], report_json=str(tmp_path / "r.json"),
                                    junit=str(tmp_path / "j.xml"), report_html=str(tmp_path / "r.html")) == 0
        assert (tmp_path / "r.json").exists() and (tmp_path / "j.xml").exists() and (tmp_path / "r.html").exists()

    _with_servers(body)


def test_unknown_drill_name_is_a_usage_error(tmp_path: Any) -> None:
    import argparse

    from probes.drills.command import handle
    from probes.errors import UsageError

    path = tmp_path / "d.yaml"
    path.write_text(_drills("http://127.0.0.1:1", "http://127.0.0.1:1"))
    args = argparse.Namespace(config=str(path), drill=["nope"], report_json=None, junit=None, report_html=None)
    with pytest.raises(UsageError, match="unknown drill nope; the file has: errors, other"):
        handle(args)


def test_unselected_drills_need_no_environment_variables() -> None:
    text = _drills("http://127.0.0.1:1", "http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="environment variable DRILL_UNIT_UNSET_TOKEN is not set"):
        parse(text, "d.yaml", env={})
    loaded = parse(text, "d.yaml", env={}, select=["errors"])
    assert [d.name for d in loaded.spec.drills] == ["errors", "other"]


def test_within_shorter_than_the_bound_is_refused_before_injecting() -> None:
    async def body(prometheus: str, target: str, fake: FakePrometheus) -> None:
        loaded = parse(_drills(prometheus, target, within="4s"), "d.yaml", select=["errors"])
        with pytest.raises(ConfigError) as info:
            await Runner(loaded, io.StringIO()).run(["errors"])
        [message] = info.value.messages
        assert message.startswith("d.yaml:12: drills[0].expect[0].within: within 4s is shorter than the "
                                  "computed bound for HighErrorRate: 5.1s = request gap 0.1s")
        assert "for 2s (rule HighErrorRate" in message and "scrape 1s (Prometheus config" in message
        assert await _faults(target) == []

    _with_servers(body)


def test_report_passed_needs_no_interruption() -> None:
    assert Report().passed
    assert not Report(interrupted="SIGINT").passed
