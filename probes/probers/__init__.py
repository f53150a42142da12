"""The probe types. Each is one module of this package (its config model and its Prober); registering it
is one line in PROBERS. agent.yaml's probe union, `build_prober`, the JSON Schema and `probe-agent types`
are all derived from this tuple."""

from __future__ import annotations

from probes.config.models import ProbeBase
from probes.probers import elasticsearch, http, load, scripted, search
from probes.probers.base import Prober, RunContext

PROBERS: tuple[type[Prober], ...] = (
    http.HttpProber,
    search.SearchProber,
    scripted.ScriptedProber,
    elasticsearch.ElasticsearchProber,
    load.LoadProber,
)

PROBERS_BY_TYPE: dict[str, type[Prober]] = {prober.type_name(): prober for prober in PROBERS}


def types_table() -> str:
    """The registered probe types as a Markdown table (`probe-agent types`; the README embeds it)."""
    rows = [f"| `{name}` | {prober.summary} |" for name, prober in PROBERS_BY_TYPE.items()]
    return "\n".join(["| type | what it checks |", "|---|---|", *rows]) + "\n"


def build_prober(config: ProbeBase) -> Prober:
    return PROBERS_BY_TYPE[config.type](config)


__all__ = ["PROBERS", "PROBERS_BY_TYPE", "Prober", "RunContext", "build_prober", "types_table"]
