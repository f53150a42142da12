"""ProbeResult / StepResult: the one type passed from probers to sinks, web pages and CLI output."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Machine words for `reason`; a prober may use others, but these are what rules and dashboards expect.
REASONS = (
    "status",
    "latency",
    "assertion",
    "timeout",
    "connection",
    "tls",
    "dns",
    "body_too_large",
    "protocol",
    "redirect",
    "extract",
    "error",
)


@dataclass(slots=True)
class Sample:
    """An extra gauge a prober reports beside the standard ones, e.g. probe_search_hits."""

    name: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()
    help: str = ""
    """HELP text for /metrics; the first sample of a name seen by the exporter wins."""


# The debug view shows this much of a response body; more would make every kept result heavy.
BODY_EXCERPT_BYTES = 1024


@dataclass(slots=True)
class Exchange:
    """One HTTP request and its response as the debug view shows them, secrets already redacted by
    whoever built it. Kept on the result for the status page only: not in `to_dict()` (size)."""

    step: str | None
    method: str
    url: str
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    status: int = 0
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body_excerpt: str = ""
    body_bytes: int = 0
    """Size of the whole body; `body_excerpt` holds its first BODY_EXCERPT_BYTES."""
    phases: dict[str, float] = field(default_factory=dict)
    error: str = ""
    """What went wrong with this request (no response, or an expectation it failed); empty when fine."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "method": self.method, "url": self.url,
            "request_headers": [list(h) for h in self.request_headers], "status": self.status,
            "response_headers": [list(h) for h in self.response_headers],
            "body_excerpt": self.body_excerpt, "body_bytes": self.body_bytes,
            "phases": {k: round(v, 6) for k, v in self.phases.items()}, "error": self.error,
        }


@dataclass(slots=True)
class StepResult:
    step: str
    success: bool
    duration_seconds: float
    reason: str | None = None
    message: str = ""
    degraded: bool = False
    status_code: int = 0
    optional: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "success": self.success,
            "degraded": self.degraded,
            "duration_seconds": round(self.duration_seconds, 6),
            "reason": self.reason,
            "message": self.message,
            "status_code": self.status_code,
            "optional": self.optional,
        }


@dataclass(slots=True)
class ProbeResult:
    probe: str
    type: str
    success: bool
    duration_seconds: float
    reason: str | None = None
    message: str = ""
    degraded: bool = False
    started_at: float = field(default_factory=time.time)
    status_code: int = 0
    # blackbox_exporter's phases: resolve, connect, tls, processing, transfer (seconds). None: the probe
    # type does not speak HTTP itself, so it has no status code or phases to export.
    phases: dict[str, float] | None = field(default_factory=dict)
    cert_expiry: float | None = None
    steps: list[StepResult] | None = None
    """None for probe types without steps; a list (maybe empty, after a timeout) for those with steps."""
    samples: list[Sample] = field(default_factory=list)
    attempts: int = 1
    target: str = ""
    # Facts about the answer a prober wants kept with the result (e.g. a search answer's fingerprint and
    # top ids); shown in /api/results and copied into result documents, never turned into metrics.
    details: dict[str, Any] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)
    """The requests of the last attempt, for the debug view; empty for types that make none themselves."""

    @property
    def state(self) -> str:
        """up, degraded or down: the word of pages, logs and `data-state` attributes."""
        if not self.success:
            return "down"
        return "degraded" if self.degraded else "up"

    def to_dict(self, *, debug: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "probe": self.probe,
            "type": self.type,
            "success": self.success,
            "degraded": self.degraded,
            "duration_seconds": round(self.duration_seconds, 6),
            "reason": self.reason,
            "message": self.message,
            "status_code": self.status_code,
            "started_at": self.started_at,
            "attempts": self.attempts,
            "target": self.target,
        }
        if self.phases is not None:
            out["phases"] = {k: round(v, 6) for k, v in self.phases.items()}
        if self.cert_expiry is not None:
            out["cert_expiry"] = self.cert_expiry
        if self.samples:
            out["samples"] = [
                {"name": s.name, "value": s.value, "labels": dict(s.labels)} for s in self.samples
            ]
        if self.steps is not None:
            out["steps"] = [s.to_dict() for s in self.steps]
        if self.details:
            out["details"] = self.details
        if debug:
            out["exchanges"] = [e.to_dict() for e in self.exchanges]
        return out
