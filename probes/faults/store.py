"""Active faults and their expiry: a fault never outlives its TTL.

Expiry is enforced twice: every lookup ignores and drops expired faults (so correctness never depends
on a timer firing), and a timer on the running loop removes each fault at its deadline (so the list,
the gauges and requests held by a `timeout` fault are released on time even with no traffic).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from probes.faults.model import MAX_TTL, Fault

MAX_ACTIVE_FAULTS = 100


class TooManyFaults(Exception):
    """The store is full; a runaway script must not grow it without bound."""


@dataclass(eq=False)
class ActiveFault:
    id: str
    fault: Fault
    created_at: float  # wall clock, for people
    expires_at: float  # wall clock, for people
    deadline: float  # monotonic, for expiry
    released: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            **self.fault.model_dump(mode="json"),
        }


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request: wait `delay` seconds, then apply `terminal` (or pass through)."""

    delay: float = 0.0
    terminal: ActiveFault | None = None
    latency_fault: ActiveFault | None = None
    rewrites: tuple[ActiveFault, ...] = ()
    """`rewrite` faults to apply to the response body, in the order they were added."""

    @property
    def outcome(self) -> str:
        """The fault type that shaped the request, for metrics; `none` when it passes untouched."""
        if self.terminal is not None:
            return self.terminal.fault.type
        if self.latency_fault is not None:
            return "latency"
        return "rewrite" if self.rewrites else "none"


NO_FAULT = Decision()


class FaultStore:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        max_faults: int = MAX_ACTIVE_FAULTS,
        max_ttl: float = MAX_TTL,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng
        self._max_faults = max_faults
        self.max_ttl = max_ttl
        """The longest TTL a fault may ask for; the fault API validates against it."""
        self._faults: dict[str, ActiveFault] = {}  # insertion order = the order faults apply in

    def add(self, fault: Fault) -> ActiveFault:
        self.sweep()
        if not 0 < fault.ttl <= self.max_ttl:
            raise ValueError(f"ttl must be positive and at most {self.max_ttl:g}s")
        if len(self._faults) >= self._max_faults:
            raise TooManyFaults(f"at most {self._max_faults} faults can be active at once")
        now_wall = self._wall_clock()
        active = ActiveFault(
            id=secrets.token_hex(6),
            fault=fault,
            created_at=now_wall,
            expires_at=now_wall + fault.ttl,
            deadline=self._clock() + fault.ttl,
        )
        with contextlib.suppress(RuntimeError):  # no running loop: lookups still enforce the TTL
            active.timer = asyncio.get_running_loop().call_later(fault.ttl, self._expire, active)
        self._faults[active.id] = active
        return active

    def get(self, fault_id: str) -> ActiveFault | None:
        self.sweep()
        return self._faults.get(fault_id)

    def list(self) -> list[ActiveFault]:
        self.sweep()
        return list(self._faults.values())

    def remove(self, fault_id: str) -> bool:
        active = self._faults.pop(fault_id, None)
        if active is None:
            return False
        self._release(active)
        return active.deadline > self._clock()

    def clear(self) -> int:
        self.sweep()
        removed = list(self._faults.values())
        self._faults.clear()
        for active in removed:
            self._release(active)
        return len(removed)

    def __len__(self) -> int:
        self.sweep()
        return len(self._faults)

    def sweep(self) -> None:
        if not self._faults:
            return
        now = self._clock()
        for active in [a for a in self._faults.values() if a.deadline <= now]:
            del self._faults[active.id]
            self._release(active)

    def decide(self, method: str, path: str, headers: Mapping[str, str]) -> Decision:
        """Latency faults add up, rewrite faults all apply to the answer; the first matching fault of
        another type ends the search."""
        if not self._faults:  # the hot path of a proxy with nothing injected
            return NO_FAULT
        self.sweep()
        delay = 0.0
        latency_fault: ActiveFault | None = None
        rewrites: list[ActiveFault] = []
        for active in list(self._faults.values()):
            fault = active.fault
            if not fault.applies_to(method, path, headers):
                continue
            if fault.probability < 1.0 and self._rng() >= fault.probability:
                continue
            if fault.type == "latency":
                delay += fault.latency or 0.0
                latency_fault = latency_fault or active
                continue
            if fault.type == "rewrite":
                rewrites.append(active)
                continue
            return Decision(delay=delay, terminal=active, latency_fault=latency_fault, rewrites=tuple(rewrites))
        if latency_fault is None and not rewrites:
            return NO_FAULT
        return Decision(delay=delay, latency_fault=latency_fault, rewrites=tuple(rewrites))

    def remaining(self, active: ActiveFault) -> float:
        return max(0.0, active.deadline - self._clock())

    def _expire(self, active: ActiveFault) -> None:
        if self._faults.get(active.id) is active:
            del self._faults[active.id]
        self._release(active)

    @staticmethod
    def _release(active: ActiveFault) -> None:
        if active.timer is not None:
            active.timer.cancel()
            active.timer = None
        active.released.set()
