"""The fault store: which fault a request gets, and that no fault outlives its TTL."""

from __future__ import annotations

import asyncio

import pytest

from probes.faults.model import Fault
from probes.faults.store import NO_FAULT, FaultStore, TooManyFaults


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fault(**data: object) -> Fault:
    return Fault.model_validate(data)


def test_no_fault_means_no_change() -> None:
    assert FaultStore().decide("GET", "/api/search", {}) is NO_FAULT


def test_an_expired_fault_is_neither_applied_nor_listed_even_without_a_timer() -> None:
    clock = FakeClock()
    store = FaultStore(clock=clock)  # no running event loop: only lookups can enforce the TTL
    active = store.add(fault(type="error", ttl="1s"))
    assert store.decide("GET", "/", {}).terminal is active
    clock.now += 1.0
    assert store.decide("GET", "/", {}) is NO_FAULT
    assert store.list() == []
    assert store.get(active.id) is None
    assert active.released.is_set()


def test_expiry_timer_removes_the_fault_and_releases_held_requests_without_traffic() -> None:
    async def scenario() -> None:
        store = FaultStore()
        active = store.add(fault(type="timeout", ttl="50ms"))
        await asyncio.wait_for(active.released.wait(), timeout=2)
        assert len(store._faults) == 0  # removed by the timer, not by a lookup

    asyncio.run(scenario())


@pytest.mark.parametrize(("probability", "expected"), [(0.0, 0), (1.0, 50)])
def test_probability_zero_never_and_one_always(probability: float, expected: int) -> None:
    store = FaultStore()
    store.add(fault(type="error", probability=probability))
    hits = sum(store.decide("GET", "/", {}).terminal is not None for _ in range(50))
    assert hits == expected


def test_probability_rolls_once_per_request() -> None:
    rolls = iter([0.1, 0.9, 0.29, 0.3])
    store = FaultStore(rng=lambda: next(rolls))
    store.add(fault(type="error", probability=0.3))
    assert [store.decide("GET", "/", {}).terminal is not None for _ in range(4)] == [True, False, True, False]


def test_latencies_add_up_before_the_first_matching_terminal_fault() -> None:
    store = FaultStore()
    store.add(fault(type="latency", latency="100ms"))
    store.add(fault(type="latency", latency="200ms", match={"path": "^/api"}))
    error = store.add(fault(type="error", status=500, match={"path": "^/api"}))
    store.add(fault(type="abort"))
    decision = store.decide("GET", "/api/search", {})
    assert decision.delay == pytest.approx(0.3)
    assert decision.terminal is error
    other = store.decide("GET", "/other", {})
    assert other.delay == pytest.approx(0.1)
    assert other.outcome == "abort"


def test_remove_and_clear_release_held_requests() -> None:
    store = FaultStore()
    first, second = store.add(fault(type="timeout")), store.add(fault(type="timeout"))
    assert store.remove(first.id)
    assert first.released.is_set()
    assert not store.remove(first.id)
    assert store.clear() == 1
    assert second.released.is_set()
    assert store.list() == []


def test_removing_an_already_expired_fault_reports_it_as_gone() -> None:
    clock = FakeClock()
    store = FaultStore(clock=clock)
    active = store.add(fault(type="error", ttl="1s"))
    clock.now += 5
    assert not store.remove(active.id)


def test_the_store_is_bounded() -> None:
    store = FaultStore(max_faults=2)
    store.add(fault(type="error"))
    store.add(fault(type="error"))
    with pytest.raises(TooManyFaults, match="at most 2"):
        store.add(fault(type="error"))


def test_listing_shows_id_expiry_and_the_spec() -> None:
    store = FaultStore(wall_clock=lambda: 1_700_000_000.0)
    active = store.add(fault(type="error", status=502, ttl="2m", match={"path": "^/api"}))
    listed = active.to_json()
    assert listed["id"] == active.id
    assert listed["expires_at"] == "2023-11-14T22:15:20.000Z"
    assert (listed["type"], listed["status"], listed["ttl"], listed["match"]["path"]) == ("error", 502, "2m", "^/api")
