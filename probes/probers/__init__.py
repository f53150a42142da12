"""Probe type name (the `type:` key in agent.yaml) -> prober class, imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from probes.probers.base import Prober, RunContext

PROBERS: dict[str, str] = {
    "http": "probes.probers.http:HttpProber",
    "search": "probes.probers.search:SearchProber",
    "scripted": "probes.probers.scripted:ScriptedProber",
    "elasticsearch": "probes.probers.elasticsearch:ElasticsearchProber",
}


def build_prober(config: Any) -> Prober:
    module_name, _, class_name = PROBERS[config.type].partition(":")
    cls: type[Prober] = getattr(importlib.import_module(module_name), class_name)
    return cls(config)


__all__ = ["PROBERS", "Prober", "RunContext", "build_prober"]
