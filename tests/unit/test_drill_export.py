"""Pieces of the promtool export that the end-to-end test cannot pin down one by one."""

from __future__ import annotations

from probes.drills.promtool_export import _run_around, _series_name, _unix


def test_firing_span_is_the_run_around_the_measured_time() -> None:
    # An earlier sweep step fired at 3..5; this drill's alert fires from 36 on.
    offsets = [3.0, 4.0, 5.0, 36.0, 37.0, 38.0]
    assert _run_around(offsets, 36.0, 1.0) == [36.0, 37.0, 38.0]
    assert _run_around(offsets, 4.0, 1.0) == [3.0, 4.0, 5.0]
    assert _run_around(offsets, 20.0, 1.0) == []


def test_series_names_and_prometheus_timestamps() -> None:
    assert _series_name({"__name__": "up", "job": "a", "instance": "h:1"}) == 'up{instance="h:1",job="a"}'
    assert _unix("2026-01-01T00:00:01.123456789Z") == 1767225601.123456
    assert _unix("0001-01-01T00:00:00Z") is None
    assert _series_name({"__name__": "x", "q": 'a"b\\c'}) == 'x{q="a\\"b\\\\c"}'
