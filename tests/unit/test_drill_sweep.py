"""Sweep arguments and the per-step drill files."""

from __future__ import annotations

import pytest

from probes.drills.spec import FaultApiFault, parse
from probes.drills.sweep import parse_sweep, step
from probes.errors import UsageError

DRILLS = """
prometheus: http://127.0.0.1:9090
drills:
  - name: errors
    fault: {injector: target, control: "http://127.0.0.1:1", token: T, spec: {type: error}}
    expect: [{alert: HighErrorRate}]
  - name: slow
    fault: {injector: target, control: "http://127.0.0.1:1", token: T, spec: {type: latency, latency: 1s}}
    expect: [{alert: HighResponseTime}]
"""


def test_parse_sweep() -> None:
    assert parse_sweep("probability=0.05,0.1,1.0") == ("probability", [0.05, 0.1, 1.0])
    assert parse_sweep("latency=300ms,1s") == ("latency", [0.3, 1.0])
    for bad, message in [("probability=0.5", "at least two"), ("probability=0,1", "in (0, 1]"),
                         ("speed=1,2", "use probability="), ("latency=1x,2s", "invalid duration")]:
        with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                           .replace("]", r"\]")):
            parse_sweep(bad)


def test_each_step_sets_the_intensity_of_the_selected_drills_only() -> None:
    loaded = parse(DRILLS, "d.yaml")
    quarter = step(loaded, ["errors"], "probability", 0.25)
    faults = [d.fault for d in quarter.spec.drills]
    assert all(isinstance(f, FaultApiFault) for f in faults)
    assert [f.spec.probability for f in faults if isinstance(f, FaultApiFault)] == [0.25, 1.0]
    assert [d.fault.spec.probability for d in loaded.spec.drills if isinstance(d.fault, FaultApiFault)] == [1.0, 1.0]
    slow = step(loaded, ["slow"], "latency", 2.0)
    assert [f.spec.latency for f in (d.fault for d in slow.spec.drills) if isinstance(f, FaultApiFault)] == [None, 2.0]
    with pytest.raises(UsageError, match=r"d.yaml:\d+: drills\[0\].fault: --sweep latency needs a latency fault"):
        step(loaded, ["errors"], "latency", 1.0)
