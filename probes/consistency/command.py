"""`probe-agent diff --agents URL...`: do the regions give the same answers to the same searches?"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports every command module: keep this one cheap
    from probes.consistency.compare import Answer, ProbeComparison

MAX_LISTED = 10


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="compare the search answers of agents in several regions",
        description="Fetch /api/results from each agent and print, per search probe (and fingerprinted "
        "scripted step), which regions got the same top hits; for the others, the ids missing or extra "
        "against the majority answer, their rank shifts, the top-k overlap and Kendall's tau. "
        "Exit 0 when all agree, 1 on a difference, 3 when an agent is unreachable or has no answers.",
    )
    parser.add_argument("--agents", nargs="+", required=True, metavar="URL",
                        help="agent base URLs, e.g. http://agent-eu:9464 http://agent-us:9464")
    parser.add_argument("--probe", action="append", metavar="NAME", help="only this probe (repeatable)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per agent (default 10)")
    parser.set_defaults(handler=run_diff)


def run_diff(args: argparse.Namespace) -> int:
    import asyncio

    from probes.consistency.compare import compare
    from probes.consistency.fetch import fetch_all
    from probes.errors import CannotRun

    answers, failures = asyncio.run(fetch_all(list(args.agents), timeout=args.timeout))
    comparisons = compare(answers, args.probe)
    if args.format == "json":
        print(json.dumps({
            "agree": all(c.agree for c in comparisons),
            "agents": [{"url": a.url, "region": a.region, "agent": a.agent} for a in answers],
            "unreachable": [{"url": f.url, "error": str(f)} for f in failures],
            "probes": [c.to_json() for c in comparisons],
        }, indent=2))
    else:
        for comparison in comparisons:
            print(render(comparison))
    if failures:
        raise CannotRun("; ".join(f"cannot fetch results from {f}" for f in failures))
    if not comparisons:
        wanted = f" named {', '.join(args.probe)}" if args.probe else ""
        raise CannotRun(f"no search answers{wanted} to compare: the agents report no fingerprinted "
                        "search probe results (yet)")
    return 0 if all(c.agree for c in comparisons) else 1


def _where(answer: Answer) -> str:
    return ", ".join(answer.regions) + f" ({len(answer.agents)} agent{'s' if len(answer.agents) != 1 else ''})"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f", ... {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def render(comparison: ProbeComparison) -> str:
    lines: list[str] = []
    answers = comparison.answers
    if comparison.agree:
        where = _where(answers[0]) if answers else "no agent"
        lines.append(f"{comparison.key}: agree: {where}")
    else:
        lines.append(f"{comparison.key}: DIFFER: {len(answers)} answers")
        majority = answers[0]
        lines.append(f"  majority {majority.fingerprint}: {_where(majority)}")
        for answer in answers[1:]:
            lines.append(f"  differs  {answer.fingerprint}: {_where(answer)}")
            if answer.missing:
                lines.append("    missing: " + _listed([f"{i} (#{r})" for i, r in answer.missing]))
            if answer.extra:
                lines.append("    extra:   " + _listed([f"{i} (#{r})" for i, r in answer.extra]))
            if answer.moved:
                lines.append("    moved:   " + _listed([f"{i} #{a}->#{b}" for i, a, b in answer.moved]))
            tau = "n/a" if answer.kendall_tau is None else f"{answer.kendall_tau:.2f}"
            k = max(len(majority.top_ids), len(answer.top_ids))
            lines.append(f"    top-{k} overlap {answer.overlap:.2f}, Kendall tau {tau}")
    for region, agent, why in comparison.no_answer:
        lines.append(f"  no answer from {region} ({agent}): {why}")
    return "\n".join(lines)
