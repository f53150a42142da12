"""`slos:` in agent.yaml: service level objectives over the probes' own results.

An SLO pools the runs of one or several probes (named, or every probe whose name matches `probe_regex`)
per region. Its SLI is availability (the share of successful runs) or latency (the share of runs no
slower than `threshold`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import Field, field_validator, model_validator

from probes.config.models import NAME_PATTERN, Strict, check_regex
from probes.durations import Duration, format_duration

HOUR = 3600.0

Loc = tuple[str | int, ...]
ErrorAt = Callable[[Loc, str], str]
"""Formats an error at a place in the file (`Document.error`): `FILE:LINE: field.path: message`."""


class SloConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    """Unique among the SLOs; the `slo` label of the generated series and alerts."""
    probes: list[str] | None = Field(default=None, min_length=1)
    """The probes whose runs count; or give `probe_regex`."""
    probe_regex: str | None = None
    """Every probe whose whole name matches (anchored, like a PromQL `=~` matcher)."""
    sli: Literal["availability", "latency"] = "availability"
    threshold: Duration | None = None
    """Latency SLIs: a run no slower than this is good. Becomes a bucket of probe_latency_seconds."""
    objective: float = Field(gt=0, lt=100)
    """Percent of good runs, e.g. 99.9."""
    window: Duration = 30 * 24 * HOUR
    """The error budget's period: whole hours, at least 1h (e.g. 30d, 28d)."""

    @field_validator("probe_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # The same regex selects the series in PromQL, whose RE2 has neither lookarounds nor backreferences.
        if re.search(r"\(\?<?[=!]|\\[1-9]", value):
            raise ValueError(f"{value!r}: Prometheus regexes (RE2) have no lookarounds or backreferences")
        return check_regex(value)

    @field_validator("threshold")
    @classmethod
    def _exact_bound(cls, value: float | None) -> float | None:
        # 700ms parses as 0.7000000000000001; the bucket's `le` label must read 0.7.
        return None if value is None else round(value, 9)

    @field_validator("window")
    @classmethod
    def _whole_hours(cls, value: float) -> float:
        if value < HOUR:
            raise ValueError(f"window {format_duration(value)} is shorter than 1h")
        if value % HOUR:
            raise ValueError(f"window {format_duration(value)} is not a whole number of hours")
        return value

    @model_validator(mode="after")
    def _selection_and_threshold(self) -> SloConfig:
        if (self.probes is None) == (self.probe_regex is None):
            raise ValueError("give either probes or probe_regex")
        if self.sli == "latency":
            if self.threshold is None:
                raise ValueError("a latency SLO needs a threshold (e.g. threshold: 500ms)")
            if self.threshold <= 0:
                raise ValueError("threshold must be greater than 0")
        elif self.threshold is not None:
            raise ValueError("threshold applies only to sli: latency")
        return self

    @property
    def error_budget(self) -> float:
        """The allowed share of bad runs: 0.001 for 99.9 (rounded so 99.9 does not print 0.0010000000000000009)."""
        return round((100.0 - self.objective) / 100.0, 12)

    def selected(self, probe_names: Sequence[str]) -> list[str]:
        if self.probes is not None:
            return [name for name in self.probes if name in probe_names]
        pattern = re.compile(self.probe_regex or "")
        return [name for name in probe_names if pattern.fullmatch(name)]


def check_slos(slos: Sequence[SloConfig], probe_names: Sequence[str], error_at: ErrorAt) -> list[str]:
    """What a single SLO cannot know: duplicate names, probes that do not exist, a regex matching none."""
    errors = []
    seen: dict[str, int] = {}
    known = set(probe_names)
    for index, slo in enumerate(slos):
        if slo.name in seen:
            errors.append(error_at(("slos", index, "name"),
                                   f"duplicate SLO name {slo.name!r} (also slos[{seen[slo.name]}])"))
        seen.setdefault(slo.name, index)
        if slo.probes is not None:
            for position, name in enumerate(slo.probes):
                if name not in known:
                    errors.append(error_at(("slos", index, "probes", position), f"no probe named {name!r}"))
        elif not slo.selected(probe_names):
            errors.append(error_at(("slos", index, "probe_regex"), f"{slo.probe_regex!r} matches no probe"))
    return errors


def latency_thresholds(slos: Sequence[SloConfig]) -> list[float]:
    """Bucket bounds that probe_latency_seconds needs so the latency SLIs can be computed."""
    return sorted({slo.threshold for slo in slos if slo.sli == "latency" and slo.threshold is not None})
