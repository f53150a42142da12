"""The agent: config -> probers -> scheduler -> sinks, the web server, and hot reload.

A reload builds everything new first; only a config that loads completely replaces the running one,
so a bad edit leaves the agent probing with the old config (and says so in its metrics). The config comes
from a source (a file, or a URL the agent polls); what it selects from it (its region, its shard) is
decided here, once per load.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from probes.agent.config_file import AgentConfig, load_config, parse_config
from probes.agent.config_source import ConfigSource, FetchFailed, open_source
from probes.agent.history import History, ProbeHistory
from probes.agent.scheduler import Scheduler
from probes.agent.selection import resolve_shard, select
from probes.agent.self_metrics import AgentMetrics
from probes.config.slo import latency_thresholds
from probes.errors import CannotRun, ConfigError
from probes.identity import AgentIdentity, Shard
from probes.plural import count
from probes.probers import PROBERS, Prober, build_prober
from probes.probers._http.client import HttpClient
from probes.redaction import redact_text
from probes.result import ProbeResult
from probes.sinks import Sink, build_sink
from probes.sinks.prometheus import LATENCY_BUCKETS, PrometheusSink
from probes.sinks.state_log import StateLogSink

log = logging.getLogger(__name__)


class ApplyError(CannotRun):
    """A config that validated but could not be put to work (a prober, sink or schedule failed to build)."""


async def _quietly(closing: Awaitable[None], what: str) -> None:
    try:
        await closing
    except Exception:
        log.exception("%s failed", what)


@dataclass(frozen=True, slots=True)
class Overrides:
    region: str | None = None
    agent_id: str | None = None
    listen: str | None = None
    shard: Shard | None = None


def resolve_identity(config: AgentConfig, overrides: Overrides) -> AgentIdentity:
    """Flag > environment > agent.yaml; the agent id falls back to the host name (agent.id's default)."""
    region = overrides.region or os.environ.get("PROBE_AGENT_REGION") or config.agent.region
    agent = overrides.agent_id or os.environ.get("PROBE_AGENT_ID") or config.agent.id
    return AgentIdentity(region=region, agent=agent)


def _parse(text: str, source: ConfigSource) -> AgentConfig:
    return parse_config(text, source.name, base_dir=source.base_dir)


def _freeze_garbage_collector(first: bool) -> None:
    """Exempt the config and probers from the cyclic collector: with 10,000 probes a full collection
    walks them all (~100 ms, every probe's schedule stalls meanwhile) only to find nothing to free."""
    if not first:
        gc.unfreeze()  # what the previous config left behind is collected once
    gc.collect()  # garbage frozen now would stay for good
    gc.freeze()


class Agent:
    def __init__(self, source: ConfigSource | str, config: AgentConfig, overrides: Overrides) -> None:
        self.source = open_source(source) if isinstance(source, str) else source
        self.config = config
        self.overrides = overrides
        self.identity = resolve_identity(config, overrides)
        self.shard = resolve_shard(config, overrides.shard)
        self.metrics = AgentMetrics(self.identity, self.shard)
        # Latency SLOs count runs under their threshold: it must be a bucket bound (read at start only).
        self.prometheus = PrometheusSink((*LATENCY_BUCKETS, *latency_thresholds(config.slos)), self.identity,
                                         self.metrics)
        self.state_log = StateLogSink(None, self.identity, self.metrics)
        self._log_states = False
        """Only a running agent logs state changes; `once` prints its results instead."""
        self.latest: dict[str, ProbeResult] = {}
        self.history = History(config.agent.history)
        self.last_reload_error: str | None = None
        self._sinks: dict[str, Sink] = {}
        self._http = HttpClient()
        self._scheduler = Scheduler(self.metrics, self._http, config.agent.max_concurrency, self._deliver)
        self._probers: dict[str, Prober] = {}
        self._reload_lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        # The last state of the config source ("ok" or a failure reason), to log each change once, and
        # the error of the last text it delivered (an unchanged invalid text stays invalid).
        self._source_state = "ok"
        self._text_error: str | None = None
        self.ready = False

    @classmethod
    def from_file(cls, path: str, overrides: Overrides) -> Agent:
        return cls(path, load_config(path), overrides)

    @classmethod
    async def open(cls, location: str | ConfigSource, overrides: Overrides, *,
                   bearer_token_file: str | None = None) -> Agent:
        """The agent with its first config from a file or an http(s):// URL. No good config, no agent: an
        invalid one raises ConfigError (exit 2), one that cannot be fetched CannotRun (exit 3)."""
        source = (open_source(location, bearer_token_file=bearer_token_file) if isinstance(location, str)
                  else location)
        try:
            config = _parse((await source.fetch()).text, source)
            return cls(source, config, overrides)
        except FetchFailed as exc:
            await source.aclose()
            raise CannotRun(f"cannot load the config: {exc.message}") from None
        except BaseException:
            await source.aclose()
            raise

    @property
    def config_path(self) -> str:
        return self.source.name

    @property
    def listen(self) -> str:
        return self.overrides.listen or self.config.agent.listen

    def probers(self) -> dict[str, Prober]:
        return dict(self._probers)

    def _all_sinks(self) -> list[Sink]:
        logged = [self.state_log] if self._log_states else []
        return [self.prometheus, *logged, self.history, *self._sinks.values()]

    def _deliver(self, result: ProbeResult) -> None:
        if result.probe not in self._probers:
            # A run that was in flight when a reload removed its probe: delivering it would bring back the
            # series (and the status page row) the reload just dropped.
            return
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
        self._log_states = schedule
        await self._apply(self.config, first=True, sinks=schedule)
        if schedule:
            self._scheduler.start()
            if self.source.remote:
                self._poller = asyncio.create_task(self._poll())
        self.ready = True

    async def _apply(self, config: AgentConfig, first: bool = False, sinks: bool = True) -> None:
        """Make `config` the running one, all or nothing: every new prober, sink and schedule is built
        first; only when all of them exist is anything swapped. A failure on the way closes what was
        built, leaves the running config, its series and its schedule untouched, and raises ApplyError."""
        for prober_type in PROBERS:
            prober_type.configure(config.agent)
        old = {name: p.config for name, p in self._probers.items()}
        probers: dict[str, Prober] = {}
        reschedule: set[str] = set()
        built: list[Prober] = []
        opened: dict[str, Sink] = {}
        wanted = {name: cfg for name, cfg in config.sinks if cfg is not None} if sinks else None
        selection = select(config, self.identity.region, self.shard)
        for warning in selection.warnings:
            log.warning("%s", warning)
        try:
            for probe_config in selection.probes:
                current = self._probers.get(probe_config.name)
                if current is not None and old[probe_config.name] == probe_config:
                    probers[probe_config.name] = current
                    continue
                prober = build_prober(probe_config)
                built.append(prober)
                probers[probe_config.name] = prober
                previous = old.get(probe_config.name)
                if previous is None or previous.interval != probe_config.interval:
                    reschedule.add(probe_config.name)
            for name, cfg in (wanted or {}).items():
                if name not in self._sinks or getattr(self.config.sinks, name) != cfg:
                    opened[name] = sink = build_sink(name, cfg, self.identity, self.metrics)
                    await sink.start()
            # The commit point: the scheduler checks every new job before it changes any.
            retired = self._scheduler.set_probes(probers, reschedule)
        except Exception as exc:
            for prober in built:
                await _quietly(prober.aclose(), f"closing prober {prober.name}")
            for name, sink in opened.items():
                await _quietly(sink.aclose(), f"closing sink {name}")
            raise ApplyError(f"{type(exc).__name__}: {exc}") from exc
        stale: list[Sink] = []
        if wanted is not None:
            stale = [self._sinks.pop(name) for name in list(self._sinks) if name not in wanted or name in opened]
            self._sinks.update(opened)
        if not first:
            self._scheduler.set_max_concurrency(config.agent.max_concurrency)
        self.history.resize(config.agent.history)
        for name in set(self._probers) - set(probers):
            self.latest.pop(name, None)
            for sink in self._all_sinks():
                sink.forget(name)
        for name, prober in probers.items():
            for sink in self._all_sinks():
                sink.add_probe(name, prober.config.type)
        self._probers = probers
        self.config = config
        self.metrics.probes_configured.set(len(probers))
        self.metrics.reload_success.set(1)
        self.metrics.reload_timestamp.set(time.time())
        for sink in stale:
            await _quietly(sink.aclose(), f"closing sink {sink.name}")
        for prober in retired:
            await prober.aclose()
        _freeze_garbage_collector(first)

    async def reload(self) -> tuple[bool, str]:
        """Load the config again from its source (SIGHUP, POST /-/reload); on any error keep the old one."""
        return await self._load(forced=True)

    async def poll_config(self) -> tuple[bool, str]:
        """One poll of the config source: load the config if it changed; on any error keep the old one."""
        return await self._load(forced=False)

    async def _poll(self) -> None:
        interval = self.config.agent.config_poll_interval
        log.info("config %s: polled every %gs", self.config_path, interval)
        while True:
            await asyncio.sleep(self.config.agent.config_poll_interval)
            try:
                await self.poll_config()
            except Exception:  # a bug here must not end the polling for the life of the agent
                log.exception("polling the config %s failed", self.config_path)

    async def _load(self, *, forced: bool) -> tuple[bool, str]:
        """Fetch the config; load it if it changed (or `forced`). A failure keeps the running config."""
        async with self._reload_lock:
            loaded = False
            try:
                fetched = await self.source.fetch()
                if fetched.changed or forced:
                    self._text_error = None
                    config = _parse(fetched.text, self.source)
                    self._check_identity(config)
                    await self._apply(config)
                    loaded = True
            except FetchFailed as exc:
                return self._failed(exc.reason, exc.message, forced)
            except ConfigError as exc:
                self._text_error = str(exc)
                return self._failed("invalid", str(exc), forced)
            except ApplyError as exc:
                return self._failed("invalid", f"{self.config_path}: cannot apply the new config: {exc}", forced)
            if self._text_error is not None:
                # Reachable again, still serving the text that did not load.
                self.metrics.reload_success.set(0)
                self.last_reload_error = redact_text(self._text_error)
                self._source_state = "invalid"
                return False, self.last_reload_error
            self.metrics.reload_success.set(1)
            self.last_reload_error = None
            if loaded:
                log.info("loaded %s: %s", self.config_path, count(len(self._probers), "probe"))
            elif self._source_state != "ok":
                log.info("config %s: reachable again, unchanged", self.config_path)
            self._source_state = "ok"
            return True, f"{'reloaded' if loaded else 'unchanged'}: {count(len(self._probers), 'probe')}"

    def _check_identity(self, config: AgentConfig) -> None:
        identity, shard = resolve_identity(config, self.overrides), resolve_shard(config, self.overrides.shard)
        if identity != self.identity or shard != self.shard:
            raise ConfigError([f"{self.config_path}:1: agent: region, id and shard cannot change on reload "
                               f"(running as region {self.identity.region}, agent {self.identity.agent}, "
                               f"shard {self.shard}); restart the agent"])

    def _failed(self, reason: str, message: str, forced: bool) -> tuple[bool, str]:
        # Shown on the status page and returned by /-/reload: a message may quote a rejected value.
        message = redact_text(message)
        self.metrics.config_failed(reason)
        self.metrics.reload_success.set(0)
        self.last_reload_error = message
        # A poll that fails the same way every 30 s says so once; a reload someone asked for always answers.
        if forced or reason != self._source_state:
            log.error("config %s not loaded (%s), keeping the running config:\n%s", self.config_path, reason, message)
        self._source_state = reason
        return False, message

    def probe_history(self, name: str) -> ProbeHistory | None:
        return self.history.get(name)

    async def run_probe_now(self, name: str) -> ProbeResult | None:
        """One run outside the schedule (the status page's "run now"); its result goes to every sink."""
        prober = self._probers.get(name)
        if prober is None:
            return None
        return await self._scheduler.run_limited(prober)

    def _reload_failed(self, message: str) -> tuple[bool, str]:
        self.metrics.reload_success.set(0)
        self.last_reload_error = message
        log.error("reload failed, keeping the running config:\n%s", message)
        return False, message

    async def run_once(self, names: list[str] | None = None) -> list[ProbeResult]:
        selected = [p for n, p in self._probers.items() if names is None or n in names]
        return list(await asyncio.gather(*(self._scheduler.run_limited(p) for p in selected)))

    async def stop(self, grace: float = 0.0) -> None:
        """Stop scheduling; runs in flight get `grace` seconds to finish and deliver their results, then the
        sinks flush what they hold."""
        self.ready = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.source.aclose()
        await self._scheduler.shutdown(grace)
        for sink in self._sinks.values():
            await sink.aclose()
        for prober in self._probers.values():
            await prober.aclose()
        await self._http.aclose()
