"""Sink name (the key under `sinks:` in agent.yaml) -> sink class, imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from probes.agent.self_metrics import AgentIdentity, AgentMetrics
from probes.sinks.base import Sink

SINKS: dict[str, str] = {
    "elasticsearch": "probes.sinks.elasticsearch:ElasticsearchSink",
}


def build_sink(name: str, config: Any, identity: AgentIdentity, metrics: AgentMetrics) -> Sink:
    module_name, _, class_name = SINKS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    sink: Sink = cls(config, identity, metrics)
    return sink


__all__ = ["SINKS", "Sink", "build_sink"]
