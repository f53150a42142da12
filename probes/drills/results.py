"""What a drill measured, and its JSON form (plus a few extra keys for people)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from probes.drills.bounds import Bound
from probes.drills.preflight import Preflight


def _round(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else round(value, 3)


@dataclass
class AlertResult:
    alert: str
    labels: dict[str, str]
    within: float
    notify: bool
    notify_within: float | None = None
    resolve_within: float = 0.0
    # Seconds from injection (pending .. notified) or from the revert (resolved ..); None: never happened.
    pending: float | None = None
    firing: float | None = None
    alertmanager: float | None = None
    notified: float | None = None
    resolved: float | None = None
    resolved_notified: float | None = None
    seen_labels: dict[str, str] = field(default_factory=dict)
    bound: Bound | None = None
    passed: bool = False
    message: str | None = None
    firing_labels: list[dict[str, str]] = field(default_factory=list)
    """Every firing instance of the alert (matching `labels`) when it was first seen firing."""

    @property
    def within_bound(self) -> bool | None:
        """Whether the measured firing time lies in [bound_min, bound + measurement allowance]."""
        if self.bound is None:
            return None
        if not self.bound.reachable:
            return self.firing is None
        if self.firing is None:
            return False
        return self.bound.firing_min - 0.05 <= self.firing <= self.bound.firing + self.bound.allowance

    @property
    def was_active(self) -> bool:
        return self.pending is not None or self.firing is not None

    def judge(self, *, reverted: bool) -> None:
        problems = []
        if self.firing is None:
            problems.append(f"did not fire within {self.within:g}s")
        elif self.firing > self.within:
            problems.append(f"fired after {self.firing:.1f}s, later than within={self.within:g}s")
        if self.notify:
            limit = self.notify_within or self.within
            if self.notified is None:
                problems.append(f"no firing notification reached the receiver within {limit:g}s")
            elif self.notified > limit:
                problems.append(f"notified after {self.notified:.1f}s, later than {limit:g}s")
        if reverted and self.was_active:
            if self.resolved is None:
                problems.append(f"did not resolve within {self.resolve_within:g}s of the revert")
            if self.notify and self.notified is not None and self.resolved_notified is None:
                problems.append(f"no resolved notification within {self.resolve_within:g}s of the revert")
        self.passed = not problems
        self.message = "; ".join(problems) or None

    def to_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "passed": self.passed,
            "time_to_pending_seconds": _round(self.pending),
            "time_to_firing_seconds": _round(self.firing),
            "time_to_notified_seconds": _round(self.notified),
            "time_to_resolved_seconds": _round(self.resolved),
            "bound_seconds": _round(self.bound.firing) if self.bound else None,
            "labels": self.labels,
            "within_seconds": self.within,
            "notified_expected": self.notify,
            "time_to_alertmanager_seconds": _round(self.alertmanager),
            "time_to_resolved_notified_seconds": _round(self.resolved_notified),
            "bound_min_seconds": _round(self.bound.firing_min) if self.bound else None,
            "bound_notified_seconds": _round(self.bound.notified) if self.bound else None,
            "bound_terms": None if self.bound is None else [t.to_json() for t in self.bound.terms],
            "bound_kind": self.bound.kind if self.bound else None,
            "bound_unreachable": self.bound.unreachable if self.bound else None,
            "bound_notes": self.bound.notes if self.bound else [],
            "bound_notified_min_seconds": _round(self.bound.notified_min) if self.bound else None,
            "measurement_allowance_seconds": _round(self.bound.allowance) if self.bound else None,
            "within_bound": self.within_bound,
            "message": self.message,
        }


@dataclass
class DrillResult:
    name: str
    fault: dict[str, Any]
    alerts: list[AlertResult]
    started_at: str = ""
    injected: bool = False
    fault_ref: str | None = None
    reverted: float | None = None  # seconds after injection
    error: str | None = None
    passed: bool = False
    injected_at: float | None = None  # Unix time of the injection
    preflight: Preflight | None = None
    intensity: dict[str, Any] | None = None  # a sweep step's parameter and value

    def judge(self) -> None:
        for alert in self.alerts:
            alert.judge(reverted=self.reverted is not None)
        self.passed = self.error is None and all(a.passed for a in self.alerts)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "error": self.error,
            "fault": {**self.fault, **({"ref": self.fault_ref} if self.fault_ref else {})},
            "alerts": [a.to_json() for a in self.alerts],
            "started_at": self.started_at,
            "reverted_after_seconds": _round(self.reverted),
            "injected_at": self.injected_at,
            "series_wait_seconds": _round(self.preflight.waited) if self.preflight else None,
            "preflight": self.preflight.to_json() if self.preflight else None,
            **({"intensity": self.intensity} if self.intensity else {}),
        }


@dataclass
class Report:
    drills: list[DrillResult] = field(default_factory=list)
    interrupted: str | None = None

    @property
    def passed(self) -> bool:
        return self.interrupted is None and all(d.passed for d in self.drills)

    def to_json(self) -> dict[str, Any]:
        return {
            "drills": [d.to_json() for d in self.drills],
            "passed": self.passed,
            "interrupted": self.interrupted,
        }
