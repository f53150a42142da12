"""Merging worker processes' /metrics: probe families joined whole, the agent's own series combined."""

from __future__ import annotations

from probes.agent.metrics_merge import Exposition, merge, split_families
from tests.support.metrics import all_samples

WORKER_0 = b"""# HELP probe_agent_info Always 1.
# TYPE probe_agent_info gauge
probe_agent_info{region="r",agent="a",version="1"} 1.0
# HELP probe_agent_missed_runs_total Skipped runs.
# TYPE probe_agent_missed_runs_total counter
probe_agent_missed_runs_total{region="r",agent="a",probe="p0"} 2.0
# HELP probe_agent_missed_runs_created Skipped runs.
# TYPE probe_agent_missed_runs_created gauge
probe_agent_missed_runs_created{region="r",agent="a",probe="p0"} 1700000100.0
# HELP probe_agent_schedule_lag_seconds Lag.
# TYPE probe_agent_schedule_lag_seconds histogram
probe_agent_schedule_lag_seconds_bucket{region="r",agent="a",le="0.01"} 3.0
probe_agent_schedule_lag_seconds_bucket{region="r",agent="a",le="+Inf"} 4.0
probe_agent_schedule_lag_seconds_count{region="r",agent="a"} 4.0
probe_agent_schedule_lag_seconds_sum{region="r",agent="a"} 0.5
# HELP probe_agent_config_reload_success Reload.
# TYPE probe_agent_config_reload_success gauge
probe_agent_config_reload_success{region="r",agent="a"} 1.0
# HELP probe_agent_probes Probes.
# TYPE probe_agent_probes gauge
probe_agent_probes{region="r",agent="a"} 1.0
# HELP probe_success 1 if the last run succeeded.
# TYPE probe_success gauge
probe_success{probe="p0",type="http",region="r",agent="a"} 1
"""

WORKER_1 = b"""# HELP probe_agent_info Always 1.
# TYPE probe_agent_info gauge
probe_agent_info{region="r",agent="a",version="1"} 1.0
# HELP probe_agent_missed_runs_total Skipped runs.
# TYPE probe_agent_missed_runs_total counter
probe_agent_missed_runs_total{region="r",agent="a",probe="p1"} 5.0
# HELP probe_agent_missed_runs_created Skipped runs.
# TYPE probe_agent_missed_runs_created gauge
probe_agent_missed_runs_created{region="r",agent="a",probe="p1"} 1700000000.0
# HELP probe_agent_schedule_lag_seconds Lag.
# TYPE probe_agent_schedule_lag_seconds histogram
probe_agent_schedule_lag_seconds_bucket{region="r",agent="a",le="0.01"} 10.0
probe_agent_schedule_lag_seconds_bucket{region="r",agent="a",le="+Inf"} 10.0
probe_agent_schedule_lag_seconds_count{region="r",agent="a"} 10.0
probe_agent_schedule_lag_seconds_sum{region="r",agent="a"} 0.25
# HELP probe_agent_config_reload_success Reload.
# TYPE probe_agent_config_reload_success gauge
probe_agent_config_reload_success{region="r",agent="a"} 0.0
# HELP probe_agent_probes Probes.
# TYPE probe_agent_probes gauge
probe_agent_probes{region="r",agent="a"} 2.0
# HELP probe_success 1 if the last run succeeded.
# TYPE probe_success gauge
probe_success{probe="p1",type="http",region="r",agent="a"} 0
probe_success{probe="p2",type="http",region="r",agent="a"} 1
# HELP probe_search_hits Hits.
# TYPE probe_search_hits gauge
probe_search_hits{probe="p2",type="search",region="r",agent="a"} 12
"""


def _merged(*texts: bytes) -> str:
    return b"".join(bytes(piece) for piece in merge(list(texts))).decode()


Key = tuple[str, tuple[tuple[str, str], ...]]


def _values(text: str) -> dict[Key, float]:
    return {(name, tuple(sorted(labels.items()))): value for name, labels, value in all_samples(text)}


def _key(name: str, **labels: str) -> Key:
    return name, tuple(sorted({"region": "r", "agent": "a", **labels}.items()))


def test_agent_series_are_combined_and_probe_series_kept_whole() -> None:
    text = _merged(WORKER_0, WORKER_1)
    values = _values(text)
    assert values[_key("probe_agent_info", version="1")] == 1  # not 2
    assert values[_key("probe_agent_schedule_lag_seconds_bucket", le="0.01")] == 13
    assert values[_key("probe_agent_schedule_lag_seconds_count")] == 14
    assert values[_key("probe_agent_schedule_lag_seconds_sum")] == 0.75
    assert values[_key("probe_agent_config_reload_success")] == 0  # the worst worker
    assert values[_key("probe_agent_probes")] == 3
    # Per-probe self series stay apart; each keeps its own value.
    assert values[_key("probe_agent_missed_runs_total", probe="p0")] == 2
    assert values[_key("probe_agent_missed_runs_total", probe="p1")] == 5
    assert sum(1 for name, _ in values if name == "probe_success") == 3
    assert values[_key("probe_search_hits", probe="p2", type="search")] == 12


def test_each_family_appears_once_with_its_header_first() -> None:
    text = _merged(WORKER_0, WORKER_1)
    assert text.count("# HELP probe_success ") == 1 and text.count("# TYPE probe_success gauge") == 1
    block = text.split("# HELP probe_success ", 1)[1].split("# HELP ", 1)[0]
    assert block.count("probe_success{") == 3  # all three probes inside the one block


def test_the_same_series_in_two_workers_sums_counters_and_keeps_earliest_created() -> None:
    twin = WORKER_0.replace(b' 2.0\n', b' 3.0\n').replace(b"1700000100.0", b"1700000050.0")
    values = _values(_merged(WORKER_0, twin))
    assert values[_key("probe_agent_missed_runs_total", probe="p0")] == 5
    assert values[_key("probe_agent_missed_runs_created", probe="p0")] == 1700000050.0


def test_a_worker_that_did_not_answer_is_simply_absent() -> None:
    assert _values(_merged(WORKER_1)) == _values(WORKER_1.decode())
    assert _merged() == ""


def test_split_keeps_every_byte() -> None:
    families = split_families(WORKER_1)
    assert [f.name for f in families][-2:] == ["probe_success", "probe_search_hits"]
    assert b"".join(f.header + b"".join(bytes(b) for b in f.bodies) for f in families) == WORKER_1


def test_a_text_read_in_small_pieces_splits_the_same() -> None:
    for size in (1, 5, 8, 64):
        exposition = Exposition()
        for at in range(0, len(WORKER_1), size):
            exposition.feed(WORKER_1[at:at + size])
        pieces = [(f.name, f.kind, f.header, bytes(f.bodies[0])) for f in exposition.families()]
        assert pieces == [(f.name, f.kind, f.header, bytes(f.bodies[0])) for f in split_families(WORKER_1)]


def test_a_cap_from_the_agent_process_overrides_the_workers() -> None:
    values = _values(b"".join(bytes(p) for p in merge([WORKER_0], {"probe_agent_config_reload_success": 0.0}))
                     .decode())
    assert values[_key("probe_agent_config_reload_success")] == 0
    assert values[_key("probe_agent_probes")] == 1
