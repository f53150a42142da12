"""The `load` probe: a short Locust burst on a schedule, judged by the load stage's thresholds.

"The API handles 50 req/s from eu-west-1 at p95 < 300 ms" becomes a probe that alerts. Locust runs in a
child process through the same launcher as `probe-agent load` (the agent never imports Locust, which
monkey-patches sockets at import); at most `agent.max_load_probes` bursts run at once, so a burst never
competes with another for the agent's CPU, and the child is killed at the run's deadline.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from probes.config.models import AgentSection, ProbeBase
from probes.durations import Duration
from probes.errors import UsageError
from probes.load.child import run_locust
from probes.load.launcher import LocustRun
from probes.load.plugin_config import PluginConfig
from probes.load.report import build_report, load_raw
from probes.load.scenario_files import resolve
from probes.load.thresholds import ThresholdError, parse_thresholds
from probes.probers.base import Prober, RunContext
from probes.redaction import redact_url
from probes.result import ProbeResult, Sample

STARTUP_ALLOWANCE = 5.0
"""Seconds Locust may take to start (import, gevent) and to write its stats after `run_time`."""

HELP = {
    "probe_load_requests_per_second": "Requests per second of the last load burst.",
    "probe_load_error_ratio": "Share of failed requests in the last load burst, 0..1.",
    "probe_load_latency_seconds": "Response time quantiles of the last load burst.",
}


class LoadProbeConfig(ProbeBase):
    type: Literal["load"]
    scenario: str
    """A bundled scenario name (`search`, `health`) or a locustfile path (relative to agent.yaml)."""
    host: str
    users: int = Field(default=5, ge=1, le=1000)
    spawn_rate: float = Field(default=5.0, gt=0, le=1000, allow_inf_nan=False)
    run_time: Duration = 5.0
    rate: float | None = Field(default=None, gt=0, le=100_000, allow_inf_nan=False)
    """Requests per second for all users together; default: as fast as the scenario's waits allow."""
    thresholds: list[str] = Field(default_factory=list)
    """The load stage's syntax: p95<300ms, error_rate<1%, rps>50, search:p99<1s."""
    _locustfile: Path | None = PrivateAttr(default=None)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or not value.split("://", 1)[1]:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[str]) -> list[str]:
        try:
            parse_thresholds(value)
        except ThresholdError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _fits_schedule(self) -> LoadProbeConfig:
        if self.run_time <= 0:
            raise ValueError("run_time must be greater than 0")
        if self.run_time >= self.interval:
            raise ValueError(f"run_time ({self.run_time:g}s) must be shorter than the interval "
                             f"({self.interval:g}s): the next burst would overlap this one")
        needed = self.run_time + STARTUP_ALLOWANCE
        if self.timeout < needed:
            raise ValueError(f"timeout ({self.timeout:g}s) must leave room for run_time ({self.run_time:g}s) plus "
                             f"{STARTUP_ALLOWANCE:g}s for Locust to start and report: set timeout to at least "
                             f"{needed:g}s (and the interval above it)")
        return self

    def target(self) -> str:
        return redact_url(self.host)

    def load_checks(self, config_dir: str) -> list[tuple[tuple[str | int, ...], str]]:
        spec = self.scenario
        if spec.endswith(".py") and not Path(spec).is_absolute():
            spec = str(Path(config_dir) / spec)
        try:
            _, self._locustfile = resolve(spec)
        except UsageError as exc:
            return [(("scenario",), str(exc).replace("--scenario ", ""))]
        return []


class LoadProber(Prober):
    summary = "a short Locust burst (`users`, `run_time`, `rate`) judged by the load stage's `thresholds`"
    config_model = LoadProbeConfig
    config: LoadProbeConfig
    speaks_http = False
    _slots: ClassVar[asyncio.Semaphore | None] = None
    _limit: ClassVar[int] = 0

    @classmethod
    def configure(cls, agent: AgentSection) -> None:
        if agent.max_load_probes != cls._limit:
            cls._limit = agent.max_load_probes
            cls._slots = asyncio.Semaphore(agent.max_load_probes)

    async def run(self, ctx: RunContext) -> ProbeResult:
        cfg = self.config
        start = time.perf_counter()
        started_at = time.time()
        if self._slots is None:
            type(self).configure(AgentSection())
        assert self._slots is not None
        async with self._slots:
            with tempfile.TemporaryDirectory(prefix="probe-agent-load-") as tmp:
                stats = Path(tmp) / "stats.json"
                scenario = self._scenario()
                run = LocustRun(role="standalone", scenario=scenario, host=cfg.host, users=cfg.users,
                                spawn_rate=cfg.spawn_rate, run_time=cfg.run_time, rate=cfg.rate,
                                plugin=PluginConfig(scenario=scenario.stem, host=cfg.host, users=cfg.users,
                                                    stats_path=str(stats)))
                # Finish before the agent's hard deadline (timeout + a margin) cancels the run.
                outcome = await run_locust(run, max(1.0, ctx.timeout - (time.perf_counter() - start)))
                raw = load_raw(stats) if stats.exists() else None
        duration = time.perf_counter() - start
        details: dict[str, Any] = {}
        if raw is None:
            details["stderr_tail"] = outcome.stderr_tail
            why = "timed out" if outcome.timed_out else f"exited with {outcome.returncode}"
            last = next((line for line in reversed(outcome.stderr_tail.splitlines()) if line.strip()), "")
            return self.failure("error", f"Locust {why} without a report: {last}"[:300], duration,
                                started_at=started_at, target=self.config.target(), details=details)
        report = build_report(raw, parse_thresholds(cfg.thresholds))
        details["load_report"] = report.as_dict()
        total = report.total
        samples = [
            Sample("probe_load_requests_per_second", total.rps, help=HELP["probe_load_requests_per_second"]),
            Sample("probe_load_error_ratio", total.error_rate, help=HELP["probe_load_error_ratio"]),
        ]
        if total.requests:
            samples += [Sample("probe_load_latency_seconds", total.percentile_ms(q) / 1000, (("quantile", str(q)),),
                               help=HELP["probe_load_latency_seconds"]) for q in (0.5, 0.95, 0.99)]
        breached = [r for r in report.results if not r.passed]
        if not total.requests:
            return self.failure("error", "no requests were made", duration, started_at=started_at,
                                target=cfg.target(), samples=samples, details=details)
        if breached:
            message = "; ".join(f"{r.expr} (observed {r.observed:g})" if r.observed is not None else r.expr
                                for r in breached)
            return self.failure("threshold", f"threshold breached: {message}", duration, started_at=started_at,
                                target=cfg.target(), samples=samples, details=details)
        return ProbeResult(probe=self.name, type=cfg.type, success=True, duration_seconds=duration,
                           started_at=started_at, phases=None, target=cfg.target(), samples=samples,
                           details=details,
                           message=f"{total.requests} requests, {total.rps:.1f} req/s, "
                                   f"p95 {total.percentile_ms(0.95):.0f} ms, {total.error_rate:.1%} errors")

    def _scenario(self) -> Path:
        if self.config._locustfile is None:  # built without load_checks (a test): resolve now
            self.config.load_checks(".")
        assert self.config._locustfile is not None
        return self.config._locustfile
