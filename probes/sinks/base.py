"""The sink extension point: where results go. `write` must return at once (queue, never await I/O);
the other methods are optional hooks with no-op defaults."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from probes.identity import AgentIdentity
from probes.result import ProbeResult


class SinkMetrics(Protocol):
    """What a sink may report about itself (the agent's `probe_agent_sink_*` series)."""

    def dropped(self, sink: str, count: int = 1) -> None: ...

    def queue_size(self, sink: str, size: int) -> None: ...


class Sink(ABC):
    name: ClassVar[str]
    """The key under `sinks:` in agent.yaml, and the `sink` label of its self-metrics."""
    config_model: ClassVar[type[BaseModel] | None] = None
    """Its settings under `sinks: {name: ...}`; None for a sink that is always on."""

    def __init__(self, config: Any, identity: AgentIdentity, metrics: SinkMetrics) -> None:
        self.config = config
        self.identity = identity
        self.metrics = metrics

    @abstractmethod
    def write(self, result: ProbeResult) -> None:
        """Take one result; never blocks, never raises for a downstream outage."""

    def add_probe(self, probe: str, type_: str) -> None:
        """A probe is configured (at start or by a reload), before its first result."""

    def forget(self, probe: str) -> None:
        """A probe was removed by a reload: drop what the sink keeps for it."""

    async def start(self) -> None:
        """Start background work (flush loops); called once inside the agent's event loop."""

    async def aclose(self) -> None:
        """Flush what can be flushed quickly and stop."""
