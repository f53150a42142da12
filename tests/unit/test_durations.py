from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from probes.durations import Duration, format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("10s", 10), ("5m", 300), ("1h", 3600), ("14d", 14 * 86400), ("1m30s", 90), ("1.5s", 1.5),
])
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "ten seconds", "5x", "1s2", "-1s", "s"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(0.25, "250ms"), (10, "10s"), (300, "5m"), (7200, "2h"), (90, "90s")])
def test_format_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


class _M(BaseModel):
    d: Duration


def test_pydantic_type_accepts_strings_and_numbers_but_not_booleans() -> None:
    assert _M(d="2s").d == 2.0
    assert _M(d=3).d == 3.0
    with pytest.raises(ValidationError):
        _M(d=True)
    with pytest.raises(ValidationError):
        _M(d=-1)
    assert _M(d="250ms").model_dump(mode="json") == {"d": "250ms"}
