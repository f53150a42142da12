"""Durations as users write them: 250ms, 10s, 1m30s, 5m, 1h, 14d."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_SECONDS = 365 * 86400.0
"""No interval, timeout, TTL or run time the project knows needs more than a year; anything longer is a
typo, and would overflow the timers it reaches (asyncio, APScheduler, Locust)."""


def _bounded(seconds: float, text: object) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {text!r}: must be a finite number of seconds")
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration {text!r} is too long: at most 365d")
    return seconds


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError with a message fit for a user."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(cleaned) or pos == 0:
        raise ValueError(f"invalid duration {text!r}: use a number with a unit, e.g. 250ms, 10s, 5m, 1h")
    return _bounded(total, text)


def format_duration(seconds: float) -> str:
    if seconds < 1 and seconds * 1000 == int(seconds * 1000):
        return f"{int(seconds * 1000)}ms"
    if seconds == int(seconds):
        whole = int(seconds)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if whole >= size and whole % size == 0:
                return f"{whole // size}{unit}"
        return f"{whole}s"
    return f"{seconds:g}s"


def coerce_duration(value: Any) -> float:
    """Seconds from what a user wrote (a duration string or a number of seconds); ValueError otherwise."""
    # Bare numbers are seconds, as in Prometheus' API; YAML users mostly write strings.
    if isinstance(value, bool):
        raise ValueError("a duration is a string such as 10s, not a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        try:
            return _bounded(float(value), value)
        except OverflowError:  # an integer too large for a float
            raise ValueError("duration is too long: at most 365d") from None
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("a duration is a string such as 250ms, 10s or 5m")


Duration = Annotated[
    float,
    BeforeValidator(coerce_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"},
                              {"type": "number", "minimum": 0}], "examples": ["10s"]}),
]
"""Seconds as a float; accepts `250ms`, `10s`, `5m`, `1h`, `14d` (and plain numbers of seconds)."""
