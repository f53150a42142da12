"""Injectors: our fault API (against the real demo app), a fake Toxiproxy, shell commands; and the watchdog
that reverts at the TTL when the drill died without reverting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from probes.asgi_server import AsgiServer
from probes.drills import injectors
from probes.drills.spec import CommandFault, FaultApiFault, ToxiproxyFault
from probes.errors import CannotRun, UsageError


async def _until(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:  # noqa: ASYNC110 - polling another process' effect
        await asyncio.sleep(0.1)


def _closed_port_url() -> str:
    from probes.ports import free_port

    return f"http://127.0.0.1:{free_port()}"


class FakeToxiproxy:
    """The part of Toxiproxy's HTTP API the injector uses."""

    def __init__(self) -> None:
        self.toxics: dict[str, dict[str, Any]] = {}

    def app(self) -> Starlette:
        async def proxy(request: Request) -> Response:
            if request.path_params["proxy"] != "search-api":
                return JSONResponse({"error": "proxy not found"}, status_code=404)
            return JSONResponse({"name": "search-api", "listen": "127.0.0.1:26379", "enabled": True})

        async def toxics(request: Request) -> Response:
            if request.method == "GET":
                return JSONResponse(list(self.toxics.values()))
            body = await request.json()
            if body["name"] in self.toxics:
                return JSONResponse({"error": "toxic already exists"}, status_code=409)
            self.toxics[body["name"]] = body
            return JSONResponse(body)

        async def toxic(request: Request) -> Response:
            if self.toxics.pop(request.path_params["toxic"], None) is None:
                return JSONResponse({"error": "toxic not found"}, status_code=404)
            return Response(status_code=204)

        return Starlette(routes=[
            Route("/proxies/{proxy}", proxy),
            Route("/proxies/{proxy}/toxics", toxics, methods=["GET", "POST"]),
            Route("/proxies/{proxy}/toxics/{toxic}", toxic, methods=["DELETE"]),
        ])


def _serve(app: Any, body: Callable[[str, httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        server = AsgiServer(app, "127.0.0.1", 0)
        await server.start()
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                await body(server.url, client)
        finally:
            await server.stop()

    asyncio.run(main())


def _toxic_fault(url: str, ttl: float = 60, proxy: str = "search-api") -> ToxiproxyFault:
    return ToxiproxyFault.model_validate({"injector": "toxiproxy", "control": url, "ttl": ttl, "spec": {
        "proxy": proxy, "type": "latency", "attributes": {"latency": 1000, "jitter": 0}}})


def test_toxiproxy_creates_and_deletes_a_toxic() -> None:
    fake = FakeToxiproxy()

    async def body(url: str, client: httpx.AsyncClient) -> None:
        injector = injectors.ToxiproxyInjector(_toxic_fault(url), client)
        await injector.check()
        name = await injector.inject(None)
        assert fake.toxics[name]["type"] == "latency"
        assert fake.toxics[name]["attributes"] == {"latency": 1000, "jitter": 0}
        assert fake.toxics[name]["stream"] == "downstream" and fake.toxics[name]["toxicity"] == 1.0
        watchdog = injector._watchdog.proc
        assert watchdog is not None and watchdog.poll() is None
        await injector.revert()
        assert fake.toxics == {}
        assert watchdog.poll() is not None  # the watchdog is gone with the fault
        await injector.revert()  # idempotent

    _serve(fake.app(), body)


def test_toxiproxy_watchdog_removes_the_toxic_at_the_ttl_when_the_drill_died() -> None:
    fake = FakeToxiproxy()

    async def body(url: str, client: httpx.AsyncClient) -> None:
        injector = injectors.ToxiproxyInjector(_toxic_fault(url, ttl=1), client)
        await injector.inject(None)
        assert len(fake.toxics) == 1
        await _until(lambda: not fake.toxics, 10)
        assert fake.toxics == {}
        await injector.revert()  # 404 now: already gone, which is fine

    _serve(fake.app(), body)


def test_toxiproxy_preflight() -> None:
    fake = FakeToxiproxy()

    async def body(url: str, client: httpx.AsyncClient) -> None:
        with pytest.raises(UsageError, match="no proxy 'nope'"):
            await injectors.ToxiproxyInjector(_toxic_fault(url, proxy="nope"), client).check()
        with pytest.raises(CannotRun, match="unreachable"):
            await injectors.ToxiproxyInjector(_toxic_fault(_closed_port_url()), client).check()

    _serve(fake.app(), body)


def _api_fault(url: str, token: str = "T") -> FaultApiFault:
    return FaultApiFault.model_validate({"injector": "target", "control": url, "token": token, "ttl": "30s",
                                         "spec": {"type": "error", "status": 503, "match": {"path": "^/api"}}})


def test_fault_api_injector_against_the_demo_app() -> None:
    from probes.demo.app import create_app

    async def body(url: str, client: httpx.AsyncClient) -> None:
        injector = injectors.FaultApiInjector(_api_fault(url), client)
        await injector.check()
        fault_id = await injector.inject(None)
        listed = (await client.get(f"{url}/-/faults", headers={"Authorization": "Bearer T"})).json()["faults"]
        assert [f["id"] for f in listed] == [fault_id]
        assert (await client.get(f"{url}/api/search?q=x")).status_code == 503
        await injector.revert()
        listed = (await client.get(f"{url}/-/faults", headers={"Authorization": "Bearer T"})).json()["faults"]
        assert listed == []
        with pytest.raises(UsageError, match=r"rejected the token \(403\)"):
            await injectors.FaultApiInjector(_api_fault(url, token="wrong"), client).check()
        with pytest.raises(CannotRun, match="unreachable"):
            await injectors.FaultApiInjector(_api_fault(_closed_port_url()), client).check()

    _serve(create_app(admin_token="T"), body)


def test_fault_api_off_is_a_usage_error() -> None:
    from probes.demo.app import create_app

    async def body(url: str, client: httpx.AsyncClient) -> None:
        with pytest.raises(UsageError, match="no fault API"):
            await injectors.FaultApiInjector(_api_fault(url), client).check()

    _serve(create_app(admin_token=None), body)


def _command(tmp_path: Path, inject: str, revert: str, ttl: float = 60, timeout: float = 5) -> CommandFault:
    return CommandFault.model_validate({"injector": "command", "inject": inject, "revert": revert,
                                        "ttl": ttl, "timeout": timeout})


def test_command_injector_runs_inject_and_revert(tmp_path: Path) -> None:
    flag = tmp_path / "down"
    fault = _command(tmp_path, f'echo "$FAULT_TTL_SECONDS" > {flag}', f"rm {flag}")

    async def main() -> None:
        injector = injectors.CommandInjector(fault)
        await injector.inject(None)
        assert flag.read_text().strip() == "60"
        await injector.revert()
        assert not flag.exists()

    asyncio.run(main())


def test_command_failures_and_timeouts(tmp_path: Path) -> None:
    async def main() -> None:
        failing = injectors.CommandInjector(_command(tmp_path, "echo nope >&2; exit 3", "true"))
        with pytest.raises(injectors.InjectError, match="inject command exited 3: nope"):
            await failing.inject(None)
        await failing.revert()  # a failed inject still gets its revert
        slow = injectors.CommandInjector(_command(tmp_path, "sleep 30", "true", timeout=0.5))
        started = time.monotonic()
        with pytest.raises(injectors.InjectError, match="timed out"):
            await slow.inject(None)
        assert time.monotonic() - started < 5
        await slow.revert()

    asyncio.run(main())


def test_command_watchdog_reverts_at_the_ttl(tmp_path: Path) -> None:
    flag = tmp_path / "down"
    fault = _command(tmp_path, f"touch {flag}", f"rm -f {flag}", ttl=1)

    async def main() -> None:
        injector = injectors.CommandInjector(fault)
        await injector.inject(None)
        assert flag.exists()
        await _until(lambda: not flag.exists(), 10)
        assert not flag.exists()
        injector._watchdog.cancel()

    asyncio.run(main())


def test_describe_hides_the_token() -> None:
    described = injectors.describe(_api_fault("http://127.0.0.1:1", token="secret"))
    assert "token" not in described and described["injector"] == "target"
    assert "secret" not in str(described)
    assert described["ttl"] == "30s" and "ttl" not in described["spec"]


@pytest.mark.parametrize("fault", [
    {"injector": "target", "control": "http://127.0.0.1:1", "token": "t", "spec": {"type": "error"}},
    {"injector": "proxy", "control": "http://127.0.0.1:1", "token": "t", "spec": {"type": "error"}},
    {"injector": "toxiproxy", "spec": {"proxy": "es", "type": "latency"}},
    {"injector": "command", "inject": "true", "revert": "true"},
], ids=lambda f: f["injector"])
def test_every_injector_a_drill_file_may_name_builds_one_that_injects_and_reverts(fault: dict[str, Any]) -> None:
    from probes.drills.spec import INJECTORS, Drill

    drill = Drill.model_validate({"name": "d", "fault": fault, "expect": [{"alert": "A"}]})
    client = httpx.AsyncClient()
    built = injectors.build(drill.fault, client)
    asyncio.run(client.aclose())
    assert callable(built.inject) and callable(built.revert)
    assert fault["injector"] in INJECTORS  # the names the drill file's errors list
