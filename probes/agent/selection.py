"""Which probes of a fleet-wide config this agent runs: those meant for its region (`regions:`), in its shard
(`--shard I/N`). Applied once per load or reload, so the scheduler, sinks and pages only ever see the
agent's own probes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from probes.agent.config_file import AgentConfig, ProbeConfig
from probes.errors import UsageError
from probes.identity import Shard, parse_shard

SHARD_ENV = "PROBE_AGENT_SHARD"


@dataclass(frozen=True, slots=True)
class Selection:
    probes: Sequence[ProbeConfig]
    warnings: Sequence[str]
    """Why this agent runs fewer probes than someone would expect (logged at every load)."""


def resolve_shard(config: AgentConfig, flag: Shard | None) -> Shard:
    """`--shard` > PROBE_AGENT_SHARD > `agent.shard` > all probes (0/1)."""
    if flag is not None:
        return flag
    env = os.environ.get(SHARD_ENV)
    if env:
        try:
            return parse_shard(env)
        except ValueError as exc:
            raise UsageError(f"{SHARD_ENV}: {exc}") from None
    if config.agent.shard is not None:
        return parse_shard(config.agent.shard)  # already validated while loading
    return Shard()


def select(config: AgentConfig, region: str, shard: Shard) -> Selection:
    in_region = [p for p in config.probes if p.regions is None or region in p.regions]
    selected = [p for p in in_region if shard.owns(p.name)]
    warnings = []
    named = sorted({r for p in config.probes for r in p.regions or ()})
    if named and region not in named:
        # Most often a typo in --region or in the file: say so instead of silently probing less.
        skipped = len(config.probes) - len(in_region)
        warnings.append(f"region {region!r} is in no probe's regions: (they name {', '.join(named)}); "
                        f"this agent skips the {skipped} probe(s) meant for other regions and runs {len(selected)}")
    elif in_region and not selected:
        warnings.append(f"shard {shard} holds none of the {len(in_region)} probes of region {region!r}: "
                        "this agent runs none (fewer shards would do)")
    return Selection(selected, warnings)
