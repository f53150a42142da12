"""When probes run: APScheduler's AsyncIOScheduler, one interval job per probe, a random first offset
(1,000 probes must not fire in the same millisecond), no overlap of a probe with itself (a skipped run
is counted), a global concurrency cap, and the schedule lag of every run."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from probes.agent.attempts import run_probe
from probes.agent.self_metrics import AgentMetrics
from probes.probers._http.client import HttpClient
from probes.probers.base import Prober, RunContext
from probes.result import ProbeResult

log = logging.getLogger(__name__)

FIRST_RUN_SPREAD = 2.0
FIRST_RUNS_PER_SECOND = 500.0


class _LoopScheduler(AsyncIOScheduler):
    """AsyncIOScheduler whose timer processes the due jobs directly. Its stock timer calls `wakeup`, which
    goes through call_soon_threadsafe (a write to the loop's self-pipe, a read, one more loop turn) to
    reach the loop it is already on: about a fifth of the scheduler's CPU per run at 1,000 runs/s."""

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            self._timeout = self._eventloop.call_later(wait_seconds, self._on_timer)

    def _on_timer(self) -> None:
        self._timeout = None
        self._start_timer(self._process_jobs())


class Scheduler:
    def __init__(self, metrics: AgentMetrics, http: HttpClient, max_concurrency: int,
                 on_result: Callable[[ProbeResult], None]) -> None:
        self._metrics = metrics
        self._http = http
        self._on_result = on_result
        self._max_concurrency = max_concurrency
        self._limit = asyncio.Semaphore(max_concurrency)
        self._probers: dict[str, Prober] = {}
        self._runs: dict[str, int] = {}
        self._planned: dict[str, float] = {}
        self._running: set[asyncio.Task[object]] = set()
        self._stopping = False
        # APScheduler logs a warning, formatting the whole job, for every run it skips or starts late: with
        # thousands of probes an overloaded agent would spend its CPU writing them and fall further
        # behind. Those runs are counted in probe_agent_missed_runs_total instead.
        for name in ("apscheduler.scheduler", "apscheduler.executors.default"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self._scheduler = _LoopScheduler(timezone=UTC, job_defaults={
            "max_instances": 1, "coalesce": True})
        self._scheduler.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)

    def set_max_concurrency(self, limit: int) -> None:
        # Every reload calls this. A new semaphore while runs still hold the old one lets both sets run:
        # so only a changed limit gets one (the overlap then lasts one timeout at most).
        if limit == self._max_concurrency:
            return
        self._max_concurrency = limit
        self._limit = asyncio.Semaphore(limit)

    def start(self) -> None:
        self._scheduler.start()

    def _on_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_SUBMITTED:
            run_times = getattr(event, "scheduled_run_times", None)
            if run_times:
                self._planned[event.job_id] = run_times[-1].timestamp()
        else:
            self._metrics.missed(event.job_id)

    def set_probes(self, probers: dict[str, Prober], reschedule: set[str]) -> list[Prober]:
        """Make `probers` the running set; probes in `reschedule` (new or changed interval) get a new job.
        Returns the probers that are no longer used, for the caller to close. Every new trigger is built
        before anything changes, so a schedule that cannot be built raises with the old one intact."""
        now = datetime.now(UTC)
        # Every probe runs once soon after start (so /-/ready is followed by results within seconds), yet
        # not all in the same millisecond: first runs are spread at FIRST_RUNS_PER_SECOND over at
        # least FIRST_RUN_SPREAD seconds, never over more than the probe's interval.
        spread = max(FIRST_RUN_SPREAD, len(reschedule) / FIRST_RUNS_PER_SECOND)
        triggers = {}
        for name in reschedule:
            interval = probers[name].config.interval
            first = now + timedelta(seconds=random.uniform(0, min(interval, spread)))
            triggers[name] = (IntervalTrigger(seconds=interval, start_date=first), max(1, int(interval)))
        retired = [p for name, p in self._probers.items() if probers.get(name) is not p]
        for name in set(self._probers) - set(probers):
            self._remove_job(name)
        self._probers = dict(probers)
        for name, (trigger, grace) in triggers.items():
            self._remove_job(name)
            self._scheduler.add_job(self._job, trigger, args=[name], id=name, name=name, misfire_grace_time=grace)
        return retired

    def _remove_job(self, name: str) -> None:
        if self._scheduler.get_job(name) is not None:
            self._scheduler.remove_job(name)
        self._planned.pop(name, None)

    async def _job(self, name: str) -> None:
        prober = self._probers.get(name)
        if prober is None or self._stopping:
            return
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            async with self._limit:
                if self._stopping:  # queued behind the cap when shutdown began: never started
                    return
                planned = self._planned.get(name)
                if planned is not None:
                    self._metrics.schedule_lag.observe(max(0.0, time.time() - planned))
                await self.run_now(prober)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cancelled by shutdown: not an error worth a traceback in APScheduler's log.
        finally:
            self._running.discard(task)

    async def run_limited(self, prober: Prober) -> ProbeResult:
        async with self._limit:
            return await self.run_now(prober)

    async def run_now(self, prober: Prober) -> ProbeResult:
        name = prober.name
        run = self._runs.get(name, 0)
        self._runs[name] = run + 1
        result = await run_probe(prober, RunContext(run=run, timeout=prober.config.timeout, http=self._http))
        try:
            self._on_result(result)
        except Exception:  # a sink bug must not stop the schedule
            log.exception("delivering the result of %s failed", name)
        return result

    async def shutdown(self, grace: float = 0.0) -> None:
        """Stop scheduling; let runs in flight finish (and deliver) for up to `grace` seconds, then cancel
        the rest, so nothing uses the client after it closes."""
        self._stopping = True
        running = list(self._running)
        if running and grace > 0:
            # Not shut down yet: APScheduler's shutdown cancels the jobs it started. Paused, it starts no
            # more, and `_stopping` makes any job already due return at once.
            if self._scheduler.running:
                self._scheduler.pause()
            log.info("waiting up to %gs for %d running probe(s)", grace, len(running))
            await asyncio.wait(running, timeout=grace)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
