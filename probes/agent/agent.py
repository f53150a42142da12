"""The agent: config -> probers -> scheduler -> sinks, the web server, and hot reload.

A reload builds everything new first; only a config that loads completely replaces the running one,
so a bad edit leaves the agent probing with the old config (and says so in its metrics).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from dataclasses import dataclass

from probes.agent.config_file import AgentConfig, load_config
from probes.agent.scheduler import Scheduler
from probes.agent.self_metrics import AgentMetrics
from probes.errors import ConfigError
from probes.identity import AgentIdentity
from probes.probers import Prober, build_prober
from probes.probers._http.client import HttpClient
from probes.result import ProbeResult
from probes.sinks import Sink, build_sink
from probes.sinks.prometheus import PrometheusSink

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Overrides:
    region: str | None = None
    agent_id: str | None = None
    listen: str | None = None


def resolve_identity(config: AgentConfig, overrides: Overrides) -> AgentIdentity:
    region = overrides.region or os.environ.get("PROBE_AGENT_REGION") or config.agent.region
    return AgentIdentity(region=region, agent=overrides.agent_id or config.agent.id)


def _freeze_garbage_collector(first: bool) -> None:
    """Exempt the config and probers from the cyclic collector: with 10,000 probes a full collection
    walks them all (~100 ms, every probe's schedule stalls meanwhile) only to find nothing to free."""
    if not first:
        gc.unfreeze()  # what the previous config left behind is collected once
    gc.collect()  # garbage frozen now would stay for good
    gc.freeze()


class Agent:
    def __init__(self, config_path: str, config: AgentConfig, overrides: Overrides) -> None:
        self.config_path = config_path
        self.config = config
        self.overrides = overrides
        self.identity = resolve_identity(config, overrides)
        self.metrics = AgentMetrics(self.identity)
        self.prometheus = PrometheusSink(None, self.identity, self.metrics)
        self.latest: dict[str, ProbeResult] = {}
        self.last_reload_error: str | None = None
        self._sinks: dict[str, Sink] = {}
        self._http = HttpClient()
        self._scheduler = Scheduler(self.metrics, self._http, config.agent.max_concurrency, self._deliver)
        self._probers: dict[str, Prober] = {}
        self._reload_lock = asyncio.Lock()
        self.ready = False

    @classmethod
    def from_file(cls, path: str, overrides: Overrides) -> Agent:
        return cls(path, load_config(path), overrides)

    @property
    def listen(self) -> str:
        return self.overrides.listen or self.config.agent.listen

    def probers(self) -> dict[str, Prober]:
        return dict(self._probers)

    def _all_sinks(self) -> list[Sink]:
        return [self.prometheus, *self._sinks.values()]

    def _deliver(self, result: ProbeResult) -> None:
        self.latest[result.probe] = result
        # Each sink on its own, as Locust's EventHook.fire does: one that raises loses this result for
        # itself only, is logged and counted, and the others still get it.
        for sink in self._all_sinks():
            try:
                sink.write(result)
            except Exception:
                self.metrics.sink_error(sink.name)
                log.exception("sink %s raised on the result of %s", sink.name, result.probe)

    async def start(self, *, schedule: bool = True) -> None:
        """Build probers and sinks; with `schedule`, run them on their intervals (`once` does not)."""
        await self._apply(self.config, first=True, sinks=schedule)
        if schedule:
            self._scheduler.start()
        self.ready = True

    async def _apply(self, config: AgentConfig, first: bool = False, sinks: bool = True) -> None:
        old = {name: p.config for name, p in self._probers.items()}
        probers: dict[str, Prober] = {}
        reschedule: set[str] = set()
        for probe_config in config.probes:
            current = self._probers.get(probe_config.name)
            if current is not None and old[probe_config.name] == probe_config:
                probers[probe_config.name] = current
                continue
            probers[probe_config.name] = build_prober(probe_config)
            previous = old.get(probe_config.name)
            if previous is None or previous.interval != probe_config.interval:
                reschedule.add(probe_config.name)
        if sinks:
            await self._apply_sinks(config)
        if not first:
            self._scheduler.set_max_concurrency(config.agent.max_concurrency)
        for name in set(self._probers) - set(probers):
            self.latest.pop(name, None)
            for sink in self._all_sinks():
                sink.forget(name)
        for name, prober in probers.items():
            for sink in self._all_sinks():
                sink.add_probe(name, prober.config.type)
        retired = self._scheduler.set_probes(probers, reschedule)
        self._probers = probers
        self.config = config
        self.metrics.probes_configured.set(len(probers))
        self.metrics.reload_success.set(1)
        self.metrics.reload_timestamp.set(time.time())
        for prober in retired:
            await prober.aclose()
        _freeze_garbage_collector(first)

    async def _apply_sinks(self, config: AgentConfig) -> None:
        wanted = {name: cfg for name, cfg in config.sinks if cfg is not None}
        for name in list(self._sinks):
            if name not in wanted or getattr(self.config.sinks, name) != wanted[name]:
                await self._sinks.pop(name).aclose()
        for name, cfg in wanted.items():
            if name not in self._sinks:
                sink = build_sink(name, cfg, self.identity, self.metrics)
                await sink.start()
                self._sinks[name] = sink

    async def reload(self) -> tuple[bool, str]:
        """Load the config file again; on any error keep running the old config."""
        async with self._reload_lock:
            try:
                config = load_config(self.config_path)
                new_identity = resolve_identity(config, self.overrides)
                if new_identity != self.identity:
                    raise ConfigError([f"{self.config_path}:1: agent: region and id cannot change on reload "
                                       f"(running as {self.identity.region}/{self.identity.agent}); restart the agent"])
                await self._apply(config)
            except ConfigError as exc:
                self.metrics.reload_success.set(0)
                self.last_reload_error = str(exc)
                log.error("reload failed, keeping the running config:\n%s", exc)
                return False, str(exc)
            self.last_reload_error = None
            log.info("reloaded %s: %d probes", self.config_path, len(self._probers))
            return True, f"reloaded: {len(self._probers)} probes"

    async def run_once(self, names: list[str] | None = None) -> list[ProbeResult]:
        selected = [p for n, p in self._probers.items() if names is None or n in names]
        return list(await asyncio.gather(*(self._scheduler.run_limited(p) for p in selected)))

    async def stop(self) -> None:
        self.ready = False
        await self._scheduler.shutdown()
        for sink in self._sinks.values():
            await sink.aclose()
        for prober in self._probers.values():
            await prober.aclose()
        await self._http.aclose()
