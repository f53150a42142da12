"""The sink extension point: where results go. `write` must return at once (queue, never await I/O)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from probes.result import ProbeResult


class Sink(ABC):
    name: str

    @abstractmethod
    def write(self, result: ProbeResult) -> None:
        """Take one result; never blocks, never raises for a downstream outage."""

    async def start(self) -> None:
        """Start background work (flush loops); called once inside the agent's event loop."""

    async def aclose(self) -> None:
        """Flush what can be flushed quickly and stop."""

    def forget(self, probe: str) -> None:
        """A probe was removed by a reload: drop what the sink keeps for it."""
