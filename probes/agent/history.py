"""The last `agent.history` runs of every probe, in memory, for the status page: fed like a sink.

Only the newest result and the newest failure keep their debug record (requests, bodies); older runs are
kept as a few numbers each, so 10,000 probes x 100 runs stay a few tens of MB.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from probes.result import ProbeResult
from probes.sinks.base import Sink

DEFAULT_SIZE = 100


@dataclass(frozen=True, slots=True)
class Run:
    started_at: float
    success: bool
    degraded: bool
    duration_seconds: float
    reason: str | None


def state_of(result: ProbeResult | None) -> str:
    """The word the status page and its `data-state` attribute use."""
    return "pending" if result is None else result.state


@dataclass(slots=True)
class ProbeHistory:
    size: int
    runs: deque[Run] = field(default_factory=deque)
    last: ProbeResult | None = None
    last_failure: ProbeResult | None = None
    state_since: float | None = None
    """When the current state began (the first run in it), None before the first run."""

    def add(self, result: ProbeResult) -> None:
        if state_of(result) != state_of(self.last):
            self.state_since = result.started_at
        self.last = result
        if not result.success:
            self.last_failure = result
        self.runs.append(Run(result.started_at, result.success, result.degraded, result.duration_seconds,
                             result.reason))
        while len(self.runs) > self.size:
            self.runs.popleft()

    @property
    def state(self) -> str:
        return state_of(self.last)

    @property
    def success_ratio(self) -> float | None:
        if not self.runs:
            return None
        return sum(r.success for r in self.runs) / len(self.runs)


class History(Sink):
    name = "history"

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._probes: dict[str, ProbeHistory] = {}

    def resize(self, size: int) -> None:
        self.size = size
        for history in self._probes.values():
            history.size = size
            while len(history.runs) > size:
                history.runs.popleft()

    def get(self, probe: str) -> ProbeHistory | None:
        return self._probes.get(probe)

    def add_probe(self, probe: str, type_: str) -> None:
        self._probes.setdefault(probe, ProbeHistory(self.size))

    def write(self, result: ProbeResult) -> None:
        history = self._probes.get(result.probe)
        if history is None:  # a run finishing just after its probe was removed by a reload
            return
        history.add(result)

    def forget(self, probe: str) -> None:
        self._probes.pop(probe, None)
