"""Who is probing: the `region` and `agent` labels on every series, result document and page."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    region: str
    agent: str
