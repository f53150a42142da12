"""The windows of the SLO rules: the SRE workbook's multiwindow, multi-burn-rate table, and time scaling.

A burn rate is how fast the error budget goes: 1x spends exactly the budget in the SLO's window, 14.4x
spends 2% of a 30-day budget in one hour. Each alert needs both its long window (significance) and its
short window (the burn is still going on, so the alert resolves soon after the fix) above the factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from probes.durations import format_duration
from probes.errors import UsageError

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

RECORDED = (5 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 6 * HOUR, DAY, 3 * DAY)
"""Every window with a recording rule, besides the SLO's own window."""


@dataclass(frozen=True)
class BurnAlert:
    severity: str
    factor: float
    long: float
    short: float

    @property
    def long_label(self) -> str:
        return format_duration(self.long)

    @property
    def short_label(self) -> str:
        return format_duration(self.short)


BURN_ALERTS = (
    BurnAlert("page", 14.4, HOUR, 5 * MINUTE),
    BurnAlert("page", 6.0, 6 * HOUR, 30 * MINUTE),
    BurnAlert("ticket", 3.0, DAY, 2 * HOUR),
    BurnAlert("ticket", 1.0, 3 * DAY, 6 * HOUR),
)


class TimeScale:
    """Divides every window by `factor` (tests and demos only: 60 turns 1h into 1m, 30d into 12h).

    Names and labels keep the nominal windows (`rate1h`, `long_window="1h"`); only the PromQL ranges shrink.
    """

    def __init__(self, factor: float = 1.0) -> None:
        if not math.isfinite(factor) or factor < 1:
            raise UsageError(f"--time-scale must be a number >= 1, got {factor:g}")
        self.factor = factor

    def ms(self, seconds: float) -> int:
        return max(1, round(seconds * 1000 / self.factor))

    def range(self, seconds: float) -> str:
        """A PromQL duration for `seconds` / factor, to the millisecond: 1h -> `1h`, at 720 -> `5s`."""
        return prom_duration(self.ms(seconds))


def prom_duration(ms: int) -> str:
    out = ""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out or "0s"


def window_label(seconds: float) -> str:
    return format_duration(seconds)
