"""`probe-agent diff` against stand-in agents: an older agent whose /api/results lacks region (read from
its /metrics instead), something that is not an agent, no answers to compare, a bad invocation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from probes.fingerprint import answer_details
from tests.support.httpserver import serve_aiohttp
from tests.support.processes import run_cli


def fake_agent(region: str, ids: list[str], *, with_identity: bool = True) -> web.Application:
    result: dict[str, Any] = {"probe": "search-laptop", "type": "search", "success": True, "reason": None,
                              "details": answer_details([{"id": i} for i in ids], len(ids), id_field="id",
                                                        top_k=10, with_total=False)}
    if with_identity:
        result.update(region=region, agent=f"agent-{region}")

    async def results(request: web.Request) -> web.Response:
        return web.json_response([result])

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=f'probe_agent_info{{version="0.1",region="{region}",agent="old-{region}"}} 1\n')

    app = web.Application()
    app.router.add_get("/api/results", results)
    app.router.add_get("/metrics", metrics)
    return app


@pytest.fixture(scope="module")
def agents() -> Iterator[dict[str, str]]:
    ids = ["a", "b", "c"]
    with serve_aiohttp(fake_agent("eu", ids)) as eu, serve_aiohttp(fake_agent("us", ids)) as us, \
            serve_aiohttp(fake_agent("ap", ["a", "c", "b"], with_identity=False)) as old, \
            serve_aiohttp(web.Application()) as nothing:
        yield {"eu": eu, "us": us, "old": old, "nothing": nothing}


def test_an_agent_without_region_in_its_results_is_named_from_its_metrics(agents: dict[str, str]) -> None:
    proc = run_cli("diff", "--agents", agents["eu"], agents["us"], agents["old"], "--format", "json")
    assert proc.returncode == 1, proc.stderr
    [probe] = json.loads(proc.stdout)["probes"]
    odd = next(a for a in probe["answers"] if not a["majority"])
    assert (odd["regions"], odd["agents"]) == (["ap"], ["old-ap"])
    assert odd["moved"] == [{"id": "b", "from": 2, "to": 3}, {"id": "c", "from": 3, "to": 2}]
    assert odd["kendall_tau"] == 0.3333  # rounded to 4 places in JSON


def test_agreeing_agents_exit_0(agents: dict[str, str]) -> None:
    proc = run_cli("diff", "--agents", agents["eu"], agents["us"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "search-laptop: agree: eu, us (2 agents)"


def test_something_that_is_not_an_agent_exits_3(agents: dict[str, str]) -> None:
    proc = run_cli("diff", "--agents", agents["eu"], agents["nothing"])
    assert proc.returncode == 3
    assert f"cannot fetch results from {agents['nothing']}: /api/results answered 404" in proc.stderr


def test_no_answers_to_compare_exits_3(agents: dict[str, str]) -> None:
    proc = run_cli("diff", "--agents", agents["eu"], "--probe", "nope")
    assert proc.returncode == 3
    assert "no search answers named nope to compare" in proc.stderr


def test_agents_are_required() -> None:
    proc = run_cli("diff")
    assert proc.returncode == 2
    assert "--agents" in proc.stderr and "Traceback" not in proc.stderr
