"""The status page's memory of each probe: bounded, state changes timed, the last failure kept."""

from __future__ import annotations

from probes.agent.history import History
from probes.result import ProbeResult


def result(probe: str, at: float, success: bool = True, degraded: bool = False) -> ProbeResult:
    return ProbeResult(probe=probe, type="http", success=success, degraded=degraded, duration_seconds=0.01,
                       started_at=at, reason=None if success else "status")


def test_runs_are_bounded_and_the_ratio_covers_what_is_kept() -> None:
    history = History(size=3)
    history.add_probe("p", "http")
    for at, ok in enumerate([False, True, True, True]):
        history.write(result("p", float(at), ok))
    kept = history.get("p")
    assert kept is not None
    assert [r.started_at for r in kept.runs] == [1.0, 2.0, 3.0]
    assert kept.success_ratio == 1.0
    history.resize(2)
    assert len(kept.runs) == 2


def test_time_in_state_starts_at_the_first_run_of_the_state_and_the_last_failure_outlives_recovery() -> None:
    history = History()
    history.add_probe("p", "http")
    kept = history.get("p")
    assert kept is not None and kept.state == "pending" and kept.state_since is None
    history.write(result("p", 10.0))
    history.write(result("p", 20.0))
    assert (kept.state, kept.state_since) == ("up", 10.0)
    history.write(result("p", 30.0, success=False))
    history.write(result("p", 40.0, success=False))
    assert (kept.state, kept.state_since) == ("down", 30.0)
    history.write(result("p", 50.0, degraded=True))
    assert (kept.state, kept.state_since) == ("degraded", 50.0)
    assert kept.last_failure is not None and kept.last_failure.started_at == 40.0


def test_removed_probes_are_forgotten_and_late_results_ignored() -> None:
    history = History()
    history.add_probe("p", "http")
    history.forget("p")
    history.write(result("p", 1.0))  # a run that finished just after a reload removed the probe
    assert history.get("p") is None
