"""`probe-agent demo --drill`: the demo API, an agent, real Prometheus and Alertmanager, one drill."""

from __future__ import annotations

import re

from tests.support.processes import run_cli
from tests.support.prom import require_binaries


def test_demo_drill_runs_the_whole_chain() -> None:
    require_binaries()
    result = run_cli("demo", "--drill", "--listen", "127.0.0.1:0", timeout=150)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "1/1 drills passed" in out
    for alert in ("HighErrorRate", "ProbeFailing"):
        row = next(line for line in result.stdout.splitlines()
                   if line.startswith("demo-search-errors") and alert in line)
        # pending, firing, the bound [min-max] (no `!`: the firing time is inside it), notified, resolved
        assert re.search(r"\d+\.\ds\s+\d+\.\ds\s+\d+\.\d-\d+\.\ds\s+\d+\.\ds\s+\d+\.\ds\s+ok$", row), row
    assert "fault reverted" in out
