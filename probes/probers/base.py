"""The prober extension point: one run of one probe, returning a ProbeResult."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probes.result import ProbeResult

if TYPE_CHECKING:
    from probes.probers._http.client import HttpClient


@dataclass(slots=True)
class RunContext:
    run: int
    """How many runs of this probe came before this one (rotates `queries:`)."""
    timeout: float
    """Seconds this run may take; the scheduler cancels it shortly after."""
    http: HttpClient
    """The agent's one shared HTTP client: never build a client per run."""


class Prober(ABC):
    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return str(self.config.name)

    @abstractmethod
    async def run(self, ctx: RunContext) -> ProbeResult:
        """One run. Must not raise for target misbehaviour: return a failed result with a reason."""

    async def aclose(self) -> None:
        """Release per-probe resources (e.g. an Elasticsearch client); most probers hold none."""
