"""What the web layer needs from a running agent, as a Protocol: the pages and endpoints read state and
ask for a reload, and never import the agent that wires them up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry

from probes.identity import AgentIdentity
from probes.probers.base import Prober
from probes.result import ProbeResult


class SelfMetrics(Protocol):
    @property
    def registry(self) -> CollectorRegistry: ...


class MetricsText(Protocol):
    def render(self) -> str: ...

    def chunks(self) -> Iterator[str]: ...


class RunView(Protocol):
    """One past run, as the history keeps it."""

    @property
    def started_at(self) -> float: ...

    @property
    def success(self) -> bool: ...

    @property
    def degraded(self) -> bool: ...

    @property
    def duration_seconds(self) -> float: ...

    @property
    def reason(self) -> str | None: ...


class ProbeHistoryView(Protocol):
    @property
    def size(self) -> int:
        """How many runs are kept (`agent.history`)."""
        ...

    @property
    def runs(self) -> Sequence[RunView]:
        """Oldest first, at most `agent.history` of them."""
        ...

    @property
    def last(self) -> ProbeResult | None: ...

    @property
    def last_failure(self) -> ProbeResult | None: ...

    @property
    def state(self) -> str:
        """up, degraded, down or pending."""
        ...

    @property
    def state_since(self) -> float | None: ...

    @property
    def success_ratio(self) -> float | None: ...


class AgentView(Protocol):
    @property
    def identity(self) -> AgentIdentity: ...

    @property
    def config_path(self) -> str: ...

    @property
    def ready(self) -> bool: ...

    @property
    def last_reload_error(self) -> str | None: ...

    @property
    def latest(self) -> Mapping[str, ProbeResult]: ...

    @property
    def metrics(self) -> SelfMetrics: ...

    @property
    def prometheus(self) -> MetricsText: ...

    def probers(self) -> Mapping[str, Prober]: ...

    async def reload(self) -> tuple[bool, str]: ...

    def probe_history(self, name: str) -> ProbeHistoryView | None: ...

    async def run_probe_now(self, name: str) -> ProbeResult | None:
        """Run a configured probe now (its result reaches every sink); None for an unknown name."""
        ...
