"""The agent's own metrics (`probe_agent_*`): one registry per agent, passed to what needs it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from probes import __version__
from probes.identity import AgentIdentity, Shard

# The reasons a config load can fail (probes.agent.config_source.FAILURE_REASONS), exported from the start
# so that rate() and increase() see the first failure.
CONFIG_FAILURE_REASONS = ("timeout", "status", "connection", "too_large", "invalid")

LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _InfoCollector:
    def __init__(self, identity: AgentIdentity, shard: Shard) -> None:
        self._identity = identity
        self._shard = shard

    def collect(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily("probe_agent_info", "Always 1; the agent's version, region, id and shard (I/N).",
                                   labels=["version", "region", "agent", "shard"])
        family.add_metric([__version__, self._identity.region, self._identity.agent, str(self._shard)], 1)
        return [family]


class AgentMetrics:
    def __init__(self, identity: AgentIdentity, shard: Shard | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        labels = ["region", "agent"]
        self._labels = (identity.region, identity.agent)
        self.registry.register(_InfoCollector(identity, shard or Shard()))
        self.schedule_lag = Histogram(
            "probe_agent_schedule_lag_seconds", "Actual start of a probe run minus its planned start.",
            labels, buckets=LAG_BUCKETS, registry=self.registry).labels(*self._labels)
        self.missed_runs = Counter(
            "probe_agent_missed_runs_total", "Runs skipped because the previous run of the probe was still running.",
            [*labels, "probe"], registry=self.registry)
        self.reload_success = Gauge(
            "probe_agent_config_reload_success", "1 if the last configuration load succeeded.",
            labels, registry=self.registry).labels(*self._labels)
        self.reload_timestamp = Gauge(
            "probe_agent_config_last_reload_timestamp_seconds", "Time of the last successful configuration load.",
            labels, registry=self.registry).labels(*self._labels)
        self.config_fetch_failures = Counter(
            "probe_agent_config_fetch_failures", "Config loads that failed and kept the last good config, by reason "
            "(timeout, status, connection, too_large, invalid).",
            [*labels, "reason"], registry=self.registry)
        for reason in CONFIG_FAILURE_REASONS:
            self.config_fetch_failures.labels(*self._labels, reason)
        self.sink_dropped = Counter(
            "probe_agent_sink_dropped_total", "Results a sink could not keep.",
            [*labels, "sink"], registry=self.registry)
        self.sink_queue_size = Gauge(
            "probe_agent_sink_queue_size", "Results waiting in a sink's queue.",
            [*labels, "sink"], registry=self.registry)
        self.sink_errors = Counter(
            "probe_agent_sink_errors_total", "Results a sink raised on instead of taking (a bug in the sink).",
            [*labels, "sink"], registry=self.registry)
        self.probes_configured = Gauge(
            "probe_agent_probes", "Probes in the running configuration.",
            labels, registry=self.registry).labels(*self._labels)

    def config_failed(self, reason: str) -> None:
        self.config_fetch_failures.labels(*self._labels, reason).inc()

    def missed(self, probe: str) -> None:
        self.missed_runs.labels(*self._labels, probe).inc()

    def dropped(self, sink: str, count: int = 1) -> None:
        self.sink_dropped.labels(*self._labels, sink).inc(count)

    def sink_error(self, sink: str) -> None:
        self.sink_errors.labels(*self._labels, sink).inc()

    def queue_size(self, sink: str, size: int) -> None:
        self.sink_queue_size.labels(*self._labels, sink).set(size)
