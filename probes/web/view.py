"""What the web layer needs from a running agent, as a Protocol: the pages and endpoints read state and
ask for a reload, and never import the agent that wires them up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
