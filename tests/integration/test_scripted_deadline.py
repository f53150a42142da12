"""A scripted probe has one deadline for all its steps, against a real slow server: the step that runs
out of time fails with `timeout`, and the run ends within the probe's timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web

from tests.support.httpserver import run_agent, serve_aiohttp


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "0.6")))
    return web.json_response({"status": "ok"})


def test_the_steps_share_the_probe_timeout(tmp_path: Path) -> None:
    app = web.Application()
    app.router.add_get("/slow", _slow)
    with serve_aiohttp(app) as url:
        config = tmp_path / "agent.yaml"
        config.write_text(f"""
probes:
  - name: slow-flow
    type: scripted
    interval: 10s
    timeout: 1s
    steps:
      - {{name: first, request: {{url: "{url}/slow?s=0.6"}}}}
      - {{name: second, request: {{url: "{url}/slow?s=0.6"}}}}
      - {{name: cleanup, always_run: true, request: {{url: "{url}/slow?s=0"}}}}
""")
        start = time.monotonic()
        (results,), _ = run_agent(str(config))
        elapsed = time.monotonic() - start
    (result,) = results
    assert (result.success, result.reason) == (False, "timeout")
    assert result.message.startswith("step second: timed out after 0.")
    assert "the probe's 1s timeout covers all steps" in result.message
    first, second, cleanup = result.steps
    assert first.success and 0.55 < first.duration_seconds < 0.9
    assert second.reason == "timeout" and second.duration_seconds < 0.5
    assert (cleanup.success, cleanup.reason) == (False, "timeout")  # nothing left for it either
    assert elapsed < 3  # agent start-up and shutdown included
