"""The configurable sinks: registering one is one line in SINKS; the `sinks:` section of agent.yaml is
derived from it. The Prometheus sink is always on and built by the agent itself."""

from __future__ import annotations

from typing import Any

from probes.identity import AgentIdentity
from probes.sinks.base import Sink, SinkMetrics
from probes.sinks.elasticsearch import ElasticsearchSink

SINKS: tuple[type[Sink], ...] = (
    ElasticsearchSink,
)

SINKS_BY_NAME: dict[str, type[Sink]] = {sink.name: sink for sink in SINKS}


def build_sink(name: str, config: Any, identity: AgentIdentity, metrics: SinkMetrics) -> Sink:
    return SINKS_BY_NAME[name](config, identity, metrics)


__all__ = ["SINKS", "SINKS_BY_NAME", "Sink", "SinkMetrics", "build_sink"]
