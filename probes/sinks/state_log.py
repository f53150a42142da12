"""The log of probe state changes: one event when a probe goes up -> down (with the reason), down -> up
(with how long the outage lasted), or into or out of degraded; nothing for a run that changes nothing.
Always on, built by the agent beside the Prometheus sink. `write` only compares and logs one line."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from probes.identity import AgentIdentity
from probes.result import ProbeResult
from probes.sinks.base import Sink, SinkMetrics

log = logging.getLogger("probes.state")


@dataclass(slots=True)
class _Known:
    state: str
    since: float


class StateLogSink(Sink):
    name = "state_log"

    def __init__(self, config: object, identity: AgentIdentity, metrics: SinkMetrics) -> None:
        super().__init__(config, identity, metrics)
        self._known: dict[str, _Known] = {}

    def write(self, result: ProbeResult) -> None:
        state = result.state
        now = result.started_at + result.duration_seconds
        known = self._known.get(result.probe)
        if known is not None and known.state == state:
            return
        self._known[result.probe] = _Known(state, now)
        previous = known.state if known is not None else "pending"
        fields = {"probe": result.probe, "probe_type": result.type, "state": state, "previous_state": previous,
                  "reason": result.reason}
        if state == "down":
            log.warning("probe %s is down (was %s): %s: %s", result.probe, previous, result.reason,
                        result.message, extra=fields)
            return
        if known is not None and known.state == "down":
            outage = max(0.0, now - known.since)
            log.info("probe %s is %s again after %.1fs down", result.probe, state, outage,
                     extra={**fields, "outage_seconds": round(outage, 3)})
            return
        level = logging.WARNING if state == "degraded" else logging.INFO
        detail = f": {result.message}" if state == "degraded" else ""
        log.log(level, "probe %s is %s (was %s)%s", result.probe, state, previous, detail, extra=fields)

    def forget(self, probe: str) -> None:
        self._known.pop(probe, None)
