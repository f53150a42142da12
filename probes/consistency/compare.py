"""Compare the answers several agents got to the same probe: which regions agree, and how the others
differ from the majority answer (ids missing or extra, rank shifts, top-k overlap, Kendall's tau)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.consistency.fetch import AgentAnswers


@dataclass(slots=True)
class Answer:
    """One distinct answer (fingerprint) and who got it."""

    fingerprint: int
    top_ids: list[str | None]
    regions: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    majority: bool = False
    missing: list[tuple[str | None, int]] = field(default_factory=list)
    """Ids of the majority answer this one lacks, with their rank (1-based) in the majority answer."""
    extra: list[tuple[str | None, int]] = field(default_factory=list)
    """Ids this answer has and the majority answer does not, with their rank here."""
    moved: list[tuple[str | None, int, int]] = field(default_factory=list)
    """Ids in both at different ranks: (id, rank in the majority answer, rank here)."""
    overlap: float = 1.0
    kendall_tau: float | None = 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint, "majority": self.majority, "regions": self.regions,
            "agents": self.agents, "top_ids": self.top_ids,
            "missing": [{"id": i, "rank": r} for i, r in self.missing],
            "extra": [{"id": i, "rank": r} for i, r in self.extra],
            "moved": [{"id": i, "from": a, "to": b} for i, a, b in self.moved],
            "overlap": round(self.overlap, 4),
            "kendall_tau": None if self.kendall_tau is None else round(self.kendall_tau, 4),
        }


@dataclass(slots=True)
class ProbeComparison:
    probe: str
    step: str | None = None
    query: str | None = None
    answers: list[Answer] = field(default_factory=list)
    no_answer: list[tuple[str, str, str]] = field(default_factory=list)
    """(region, agent, why) of agents running the probe that got no answer to compare (a failed run)."""

    @property
    def agree(self) -> bool:
        return len(self.answers) <= 1

    @property
    def key(self) -> str:
        text = self.probe
        if self.step:
            text += f" step {self.step}"
        if self.query:
            text += f" (query {self.query!r})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "probe": self.probe, "step": self.step, "query": self.query, "agree": self.agree,
            "answers": [a.to_json() for a in self.answers],
            "no_answer": [{"region": r, "agent": a, "reason": why} for r, a, why in self.no_answer],
        }


def kendall_tau(first: list[str | None], second: list[str | None]) -> float | None:
    """Kendall's tau-a of the common ids' order in two rankings; None with fewer than two in common."""
    rank = {item: index for index, item in enumerate(second)}
    common = [item for item in first if item in rank]
    n = len(common)
    if n < 2:
        return None
    score = 0
    for i in range(n):
        for j in range(i + 1, n):
            score += 1 if rank[common[i]] < rank[common[j]] else -1
    return score / (n * (n - 1) / 2)


def _describe(answer: Answer, majority: Answer) -> None:
    base = majority.top_ids
    here = answer.top_ids
    base_rank = {item: index + 1 for index, item in enumerate(base)}
    here_rank = {item: index + 1 for index, item in enumerate(here)}
    answer.missing = [(item, base_rank[item]) for item in base if item not in here_rank]
    answer.extra = [(item, here_rank[item]) for item in here if item not in base_rank]
    answer.moved = [(item, base_rank[item], here_rank[item]) for item in base
                    if item in here_rank and here_rank[item] != base_rank[item]]
    k = max(len(base), len(here))
    answer.overlap = len(set(base) & set(here)) / k if k else 1.0
    answer.kendall_tau = kendall_tau(base, here)


def _answer_of(result: dict[str, Any], step: str | None) -> dict[str, Any] | None:
    details = result.get("details")
    if not isinstance(details, dict):
        return None
    if step is not None:
        steps = details.get("steps")
        details = steps.get(step) if isinstance(steps, dict) else None
        if not isinstance(details, dict):
            return None
    if not isinstance(details.get("fingerprint"), int):
        return None
    return details


def _keys(result: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """(step, query) of each answer a result carries: one for a search, one per opted-in step."""
    details = result.get("details")
    if not isinstance(details, dict):
        return []
    query = details.get("query") if isinstance(details.get("query"), str) else None
    if isinstance(details.get("steps"), dict):
        return [(step, None) for step in details["steps"]]
    return [(None, query)] if "fingerprint" in details else []


def compare(agents: Iterable[AgentAnswers], probes: list[str] | None = None) -> list[ProbeComparison]:
    """One comparison per probe (and step, and query) that at least one agent fingerprinted."""
    agents = list(agents)
    comparisons: dict[tuple[str, str | None, str | None], ProbeComparison] = {}
    for source in agents:
        for result in source.results:
            name = result.get("probe")
            if not isinstance(name, str) or (probes and name not in probes):
                continue
            for step, query in _keys(result):
                comparisons.setdefault((name, step, query), ProbeComparison(name, step, query))
    for (name, step, query), comparison in comparisons.items():
        by_fingerprint: dict[int, Answer] = {}
        for source in agents:
            for result in source.results:
                if result.get("probe") != name:
                    continue
                details = _answer_of(result, step)
                if details is None or (query is not None and details.get("query") != query):
                    if details is None and query is None:
                        why = result.get("reason") or "no answer"
                        comparison.no_answer.append((source.region, source.agent, str(why)))
                    continue
                answer = by_fingerprint.setdefault(
                    details["fingerprint"], Answer(details["fingerprint"], list(details.get("top_ids") or [])))
                if source.region not in answer.regions:
                    answer.regions.append(source.region)
                answer.agents.append(source.agent)
        # The majority: the answer most regions got (then most agents); the others are described against it.
        answers = sorted(by_fingerprint.values(), key=lambda a: (-len(a.regions), -len(a.agents)))
        if answers:
            answers[0].majority = True
            for other in answers[1:]:
                _describe(other, answers[0])
        comparison.answers = answers
    return sorted(comparisons.values(), key=lambda c: (c.probe, c.step or "", c.query or ""))
