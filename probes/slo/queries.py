"""PromQL for an SLO's error ratio, shared by the recording rules and the report so both mean the same.

Replicas (agents of one region running the same probe) probe the same thing, so their runs are pooled:
`sum by (region)` of the per-agent rates. A region with two agents is then still one region, weighted by
its runs; the ratio is per region, and each region spends its own budget.
"""

from __future__ import annotations

from probes.config.slo import SloConfig
from probes.sinks.prometheus import bucket_label


def _quote(text: str) -> str:
    """A PromQL double-quoted string literal (Go escapes: backslashes and quotes doubled)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def probe_matcher(slo: SloConfig) -> str:
    if slo.probe_regex is not None:
        pattern = slo.probe_regex
    else:
        # Probe names are [a-zA-Z0-9_.-]+: only the dot means something in a regex.
        pattern = "|".join(name.replace(".", "\\.") for name in slo.probes or [])
    return f"probe=~{_quote(pattern)}"


def error_ratio(slo: SloConfig, range_: str) -> str:
    """Bad runs / all runs over `range_`, one series per region (no series where nothing ran)."""
    probes = probe_matcher(slo)
    if slo.sli == "latency":
        assert slo.threshold is not None, "validated: a latency SLO has a threshold"
        le = f"le={_quote(bucket_label(slo.threshold))}"
        total = f"sum by (region) (rate(probe_latency_seconds_count{{{probes}}}[{range_}]))"
        good = f"sum by (region) (rate(probe_latency_seconds_bucket{{{probes},{le}}}[{range_}]))"
        return f"(\n  {total}\n  -\n  {good}\n)\n/\n{total}"
    bad = f'sum by (region) (rate(probe_runs_total{{{probes},result="failure"}}[{range_}]))'
    total = f"sum by (region) (rate(probe_runs_total{{{probes}}}[{range_}]))"
    return f"{bad}\n/\n{total}"
