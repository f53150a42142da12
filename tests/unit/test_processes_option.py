"""`--processes` / `agent.processes`, and which worker runs which probe."""

from __future__ import annotations

import os

import pytest

from probes.agent.workers import worker_index
from probes.config.models import parse_processes


def test_auto_is_the_cpus_the_agent_may_use() -> None:
    assert parse_processes("auto") == min(64, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize(("given", "count"), [("1", 1), (3, 3), ("64", 64)])
def test_counts_from_1_to_64(given: object, count: int) -> None:
    assert parse_processes(given) == count


@pytest.mark.parametrize("given", ["0", 0, "65", -1, "two", "", True, 2.5, None])
def test_anything_else_is_refused(given: object) -> None:
    with pytest.raises(ValueError, match="from 1 to 64, or auto"):
        parse_processes(given)


def test_a_probe_stays_with_its_worker_across_starts_and_versions() -> None:
    # Fixed values: a probe must not move to another worker (and lose its counters) after an upgrade.
    assert [worker_index(f"probe-{i}", 4) for i in range(8)] == [1, 3, 0, 2, 0, 3, 3, 2]
    assert worker_index("api-health", 3) == 1


def test_probes_spread_evenly_over_workers() -> None:
    counts = [0, 0, 0]
    for i in range(9000):
        counts[worker_index(f"tenant-{i}-search", 3)] += 1
    assert all(2800 <= c <= 3200 for c in counts), counts


def test_workers_do_not_inherit_the_web_config_that_would_lock_their_parent_out() -> None:
    from probes.agent.command import _without_web_config

    argv = ["run", "--config", "a.yaml", "--web.config.file", "web.yml", "--region", "r",
            "--web.config.file=other.yml"]
    assert _without_web_config(argv) == ["run", "--config", "a.yaml", "--region", "r"]
