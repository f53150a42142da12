"""`probe-agent diff`'s comparison: majority by regions, ids missing / extra / moved, overlap, Kendall's tau,
steps and rotating queries compared separately, and the table people read."""

from __future__ import annotations

from typing import Any

import pytest

from probes.consistency.command import render
from probes.consistency.compare import compare, kendall_tau
from probes.consistency.fetch import AgentAnswers
from probes.fingerprint import answer_details

TOP = [f"sku-{i}" for i in range(1, 6)]


def search_result(ids: list[str] | None, probe: str = "search-laptop", **details: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"probe": probe, "type": "search", "success": ids is not None,
                              "reason": None if ids is not None else "status"}
    if ids is not None:
        result["details"] = {**answer_details([{"id": i} for i in ids], len(ids), id_field="id", top_k=10,
                                              with_total=False), **details}
    return result


def agent(region: str, name: str, *results: dict[str, Any]) -> AgentAnswers:
    return AgentAnswers(url=f"http://{name}:9464", region=region, agent=name, results=list(results))


def test_kendall_tau() -> None:
    assert kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert kendall_tau(["a", "b", "c"], ["b", "a", "c"]) == pytest.approx(1 / 3)
    assert kendall_tau(["a", "b", "x"], ["b", "a", "y"]) == -1.0  # only the common ids count
    assert kendall_tau(["a"], ["a"]) is None


def test_all_agree() -> None:
    [c] = compare([agent("eu", "a1", search_result(TOP)), agent("eu", "a2", search_result(TOP)),
                   agent("us", "b1", search_result(TOP))])
    assert c.agree
    assert (c.answers[0].regions, c.answers[0].agents) == (["eu", "us"], ["a1", "a2", "b1"])
    assert render(c) == "search-laptop: agree: eu, us (3 agents)"


def test_the_majority_is_counted_in_regions_not_agents() -> None:
    # Three replicas in one region must not outvote two regions.
    odd = ["sku-9", *TOP[:2], TOP[3], TOP[2]]
    agents = [agent("eu", f"a{i}", search_result(odd)) for i in range(3)]
    agents += [agent("us", "b1", search_result(TOP)), agent("ap", "c1", search_result(TOP))]
    [c] = compare(agents)
    assert not c.agree
    majority, other = c.answers
    assert majority.regions == ["us", "ap"] and majority.majority
    assert other.regions == ["eu"] and other.agents == ["a0", "a1", "a2"]
    assert other.missing == [("sku-5", 5)]
    assert other.extra == [("sku-9", 1)]
    assert other.moved == [("sku-1", 1, 2), ("sku-2", 2, 3), ("sku-3", 3, 5)]  # sku-4 stays 4th
    assert other.overlap == pytest.approx(0.8)
    assert other.kendall_tau == pytest.approx(4 / 6)
    text = render(c)
    assert "search-laptop: DIFFER: 2 answers" in text
    assert "differs" in text and "eu (3 agents)" in text
    assert "missing: sku-5 (#5)" in text and "extra:   sku-9 (#1)" in text
    assert "moved:   sku-1 #1->#2, sku-2 #2->#3, sku-3 #3->#5" in text
    assert "top-5 overlap 0.80, Kendall tau 0.67" in text


def test_failed_runs_are_listed_not_counted_as_an_answer() -> None:
    [c] = compare([agent("eu", "a1", search_result(TOP)), agent("us", "b1", search_result(None))])
    assert c.agree
    assert c.no_answer == [("us", "b1", "status")]
    assert "no answer from us (b1): status" in render(c)


def test_steps_queries_and_probe_selection() -> None:
    def scripted(ids: list[str]) -> dict[str, Any]:
        details = answer_details([{"id": i} for i in ids], None, id_field="id", top_k=10, with_total=False)
        return {"probe": "flow", "type": "scripted", "success": True, "details": {"steps": {"search": details}}}

    eu = agent("eu", "a1", scripted(TOP), search_result(TOP, query="phone"), {"probe": "health", "type": "http"})
    us = agent("us", "b1", scripted(TOP[::-1]), search_result(TOP[:2], query="laptop"))
    comparisons = compare([eu, us])
    assert [(c.probe, c.step, c.query, c.agree) for c in comparisons] == [
        ("flow", "search", None, False),
        ("search-laptop", None, "laptop", True),  # different queries are never compared
        ("search-laptop", None, "phone", True),
    ]
    assert comparisons[0].key == "flow step search"
    assert [c.probe for c in compare([eu, us], ["search-laptop"])] == ["search-laptop", "search-laptop"]
