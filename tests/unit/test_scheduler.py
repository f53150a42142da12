"""The scheduler with real asyncio and APScheduler, and probers that only sleep: intervals, no overlap of
a probe with itself (a skipped run is counted), the global concurrency cap, removal, shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

from probes.agent.config_file import parse_config
from probes.agent.scheduler import Scheduler
from probes.agent.self_metrics import AgentMetrics
from probes.identity import AgentIdentity
from probes.probers.base import Prober, RunContext
from probes.result import ProbeResult


class Sleeper(Prober):
    running = 0
    peak = 0

    def __init__(self, config: Any, seconds: float) -> None:
        super().__init__(config)
        self.seconds = seconds
        self.runs = 0

    async def run(self, ctx: RunContext) -> ProbeResult:
        cls = type(self)
        cls.running += 1
        cls.peak = max(cls.peak, cls.running)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            cls.running -= 1
        self.runs += 1
        return ProbeResult(self.name, "http", True, self.seconds)


def probers(count: int, interval: str, seconds: float) -> dict[str, Prober]:
    lines = "".join(f"  - {{name: p{i}, type: http, url: 'http://x.test/', interval: {interval}, "
                    f"timeout: {interval}}}\n" for i in range(count))
    configs = parse_config(f"probes:\n{lines}", "agent.yaml", env={}).probes
    return {c.name: Sleeper(c, seconds) for c in configs}


def metrics() -> AgentMetrics:
    return AgentMetrics(AgentIdentity("r", "a"))


def missed(m: AgentMetrics, probe: str) -> float:
    return m.missed_runs.labels("r", "a", probe)._value.get()  # type: ignore[no-any-return]


async def _run_for(scheduler: Scheduler, probes: dict[str, Prober], seconds: float) -> None:
    scheduler.set_probes(probes, set(probes))
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.shutdown()


def test_runs_repeat_on_their_interval_and_results_are_delivered() -> None:
    delivered: list[str] = []
    probes = probers(2, "200ms", 0.01)
    asyncio.run(_run_for(Scheduler(metrics(), None, 10, lambda r: delivered.append(r.probe)),  # type: ignore[arg-type]
                         probes, 1.5))
    for prober in probes.values():
        assert isinstance(prober, Sleeper) and 4 <= prober.runs <= 8
    assert set(delivered) == {"p0", "p1"}


def test_a_probe_never_overlaps_itself_and_skipped_runs_are_counted() -> None:
    Sleeper.running = Sleeper.peak = 0
    m = metrics()
    probes = probers(1, "100ms", 0.45)
    asyncio.run(_run_for(Scheduler(m, None, 10, lambda r: None), probes, 1.6))  # type: ignore[arg-type]
    assert Sleeper.peak == 1
    assert missed(m, "p0") >= 2


def test_the_global_cap_bounds_runs_in_flight() -> None:
    Sleeper.running = Sleeper.peak = 0
    probes = probers(6, "300ms", 0.25)
    asyncio.run(_run_for(Scheduler(metrics(), None, 2, lambda r: None), probes, 1.5))  # type: ignore[arg-type]
    assert Sleeper.peak == 2


def test_a_removed_probe_stops_and_shutdown_cancels_runs_in_flight() -> None:
    async def scenario() -> tuple[int, int, int]:
        scheduler = Scheduler(metrics(), None, 10, lambda r: None)  # type: ignore[arg-type]
        probes = probers(2, "100ms", 0.01)
        scheduler.set_probes(probes, set(probes))
        scheduler.start()
        await asyncio.sleep(0.8)
        retired = scheduler.set_probes({"p0": probes["p0"]}, set())
        gone = probes["p1"]
        assert isinstance(gone, Sleeper) and retired == [gone]
        runs_at_removal = gone.runs
        await asyncio.sleep(0.5)
        slow = probers(1, "100ms", 30)["p0"]
        scheduler.set_probes({"p0": slow}, {"p0"})
        await asyncio.sleep(0.3)
        await asyncio.wait_for(scheduler.shutdown(), 2)  # must not wait out the 30 s run
        return runs_at_removal, gone.runs, Sleeper.running

    at_removal, later, running = asyncio.run(scenario())
    # A run already in flight at removal may still finish; no new one starts.
    assert at_removal <= later <= at_removal + 1 and running == 0
