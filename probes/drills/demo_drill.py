"""`probe-agent demo --drill`: the whole chain on one machine, with real Prometheus and Alertmanager.

A local stack scrapes the demo target and the agent with 1 s intervals and the bundled rules (scaled down
in time, see `local_stack.shorten_rules`); the drill makes /api/search answer 503 through the target's
fault API and expects HighErrorRate (white-box) and ProbeFailing (black-box) to fire, reach the receiver
and resolve after the revert.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

import httpx

from probes.drills import report
from probes.drills.conduct import Runner
from probes.drills.local_stack import LocalStack, bundled_rules_dir, shorten_rules
from probes.drills.spec import DrillFile, LoadedDrills
from probes.errors import CannotRun, UsageError
from probes.ports import free_port

DEMO_SEARCH_PROBE = "search-laptop-canary"


async def generate_traffic(url: str, stop: asyncio.Event, every: float = 0.1) -> None:
    """Search requests as users would send them, so a white-box error ratio has something to count."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                await client.get(url, params={"q": "laptop"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


def demo_drills(prometheus: str, alertmanager: str | None, receiver_port: int, target_url: str,
                admin_token: str, agent_config: str | None = None) -> DrillFile:
    return DrillFile.model_validate({
        "prometheus": prometheus,
        "agent_config": agent_config,
        "alertmanager": alertmanager,
        "receiver": {"listen": f"127.0.0.1:{receiver_port}"},
        "drills": [{
            "name": "demo-search-errors",
            "fault": {"injector": "target", "control": target_url, "token": admin_token, "ttl": "2m",
                      "spec": {"type": "error", "status": 503, "match": {"path": "^/api/search"}}},
            "expect": [
                {"alert": "HighErrorRate", "labels": {"job": "demo-api"}, "within": "30s", "notified": True},
                {"alert": "ProbeFailing", "labels": {"probe": DEMO_SEARCH_PROBE}, "within": "30s",
                 "notified": True},
            ],
            "resolve_within": "60s",
        }],
    })


async def run_demo_drill(target_url: str, agent_url: str, admin_token: str, agent_config: str | None = None) -> int:
    """Start a local stack around the running demo target and agent, drill it, print the report."""
    target_url, agent_url = target_url.rstrip("/"), agent_url.rstrip("/")
    try:
        with tempfile.TemporaryDirectory(prefix="probe-agent-demo-drill-") as directory:
            rules = shorten_rules(bundled_rules_dir(), Path(directory) / "rules")
            receiver_port = free_port()
            stack = LocalStack(scrape={"demo-api": f"{target_url}/metrics", "probe-agent": f"{agent_url}/metrics"},
                               rule_files=rules, receiver_url=f"http://127.0.0.1:{receiver_port}/alerts")
            print("drill: starting Prometheus and Alertmanager (1s scrape and evaluation, for: 2s)", flush=True)
            await asyncio.to_thread(stack.start)
            stop = asyncio.Event()
            traffic = asyncio.create_task(generate_traffic(f"{target_url}/api/search", stop))
            try:
                print(f"drill: Prometheus {stack.prometheus_url}  Alertmanager {stack.alertmanager_url}",
                      flush=True)
                # A few scrapes of normal traffic first: a rate needs samples from before the fault.
                await asyncio.sleep(2)
                spec = demo_drills(stack.prometheus_url, stack.alertmanager_url, receiver_port, target_url,
                                   admin_token, agent_config)
                result = await Runner(LoadedDrills(spec, None)).run()
            finally:
                stop.set()
                await traffic
                await asyncio.to_thread(stack.stop)
    except (CannotRun, UsageError) as exc:
        print(f"error: {exc}", flush=True)
        return exc.exit_code
    print(report.summary(result), flush=True)
    if result.interrupted:
        return 130
    return 0 if result.passed else 1
