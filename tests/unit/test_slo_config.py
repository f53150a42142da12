"""`slos:` in agent.yaml: every mistake is a `FILE:LINE: field.path: message` error at load."""

from __future__ import annotations

import pytest

from probes.agent.config_file import parse_config
from probes.errors import ConfigError

HEAD = """\
agent: {region: eu-west-1, id: agent-1}
probes:
  - {name: search-laptop, type: http, url: "http://127.0.0.1:8000/api/search?q=laptop"}
  - {name: login-then-search, type: http, url: "http://127.0.0.1:8000/health"}
slos:
"""
AVAILABILITY = """\
  - name: search-availability
    probes: [search-laptop, login-then-search]
    objective: 99.9
    window: 30d
"""
LATENCY = """\
  - name: search-latency
    probes: [search-laptop]
    sli: latency
    threshold: 500ms
    objective: 99
    window: 28d
"""


def _errors(slos: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(HEAD + slos, "agent.yaml")
    return info.value.messages


def test_the_contract_example_loads_with_defaults() -> None:
    config = parse_config(HEAD + AVAILABILITY + LATENCY, "agent.yaml")
    availability, latency = config.slos
    assert availability.sli == "availability" and availability.window == 30 * 86400
    assert availability.error_budget == 0.001  # not 0.0010000000000000009
    assert latency.threshold == 0.5 and latency.window == 28 * 86400
    regex = parse_config(HEAD + "  - {name: all, probe_regex: 'search-.*', objective: 99}\n", "a.yaml").slos[0]
    assert regex.selected(["search-laptop", "login-then-search"]) == ["search-laptop"]
    assert regex.window == 30 * 86400


BAD = [
    # (case, slos text, expected error line)
    ("objective-100", AVAILABILITY.replace("99.9", "100"),
     "agent.yaml:8: slos[0].objective: should be less than 100, not the number 100"),
    ("objective-0", AVAILABILITY.replace("99.9", "0"),
     "agent.yaml:8: slos[0].objective: should be greater than 0, not the number 0"),
    ("window-short", AVAILABILITY.replace("30d", "30m"), "agent.yaml:9: slos[0].window: window 30m is shorter than 1h"),
    ("window-not-hours", AVAILABILITY.replace("30d", "90m"),
     "agent.yaml:9: slos[0].window: window 90m is not a whole number of hours"),
    ("no-such-probe", AVAILABILITY.replace("login-then-search]", "checkout]"),
     "agent.yaml:7: slos[0].probes[1]: no probe named 'checkout'"),
    ("regex-matches-none", "  - {name: x, probe_regex: 'checkout-.*', objective: 99}\n",
     "agent.yaml:6: slos[0].probe_regex: 'checkout-.*' matches no probe"),
    ("bad-regex", "  - {name: x, probe_regex: '(search', objective: 99}\n",
     "agent.yaml:6: slos[0].probe_regex: invalid regular expression"),
    ("lookahead", "  - {name: x, probe_regex: 'search-(?!x).*', objective: 99}\n",
     "agent.yaml:6: slos[0].probe_regex: 'search-(?!x).*': Prometheus regexes (RE2) have no lookarounds"),
    ("latency-without-threshold", LATENCY.replace("    threshold: 500ms\n", ""),
     "agent.yaml:6: slos[0]: a latency SLO needs a threshold (e.g. threshold: 500ms)"),
    ("threshold-on-availability", AVAILABILITY + "    threshold: 1s\n",
     "agent.yaml:6: slos[0]: threshold applies only to sli: latency"),
    ("duplicate-name", AVAILABILITY + AVAILABILITY,
     "agent.yaml:10: slos[1].name: duplicate SLO name 'search-availability'"),
    ("no-probes", "  - {name: x, objective: 99}\n", "agent.yaml:6: slos[0]: give either probes or probe_regex"),
    ("both", "  - {name: x, probes: [search-laptop], probe_regex: 's.*', objective: 99}\n",
     "agent.yaml:6: slos[0]: give either probes or probe_regex"),
    ("unknown-sli", AVAILABILITY + "    sli: freshness\n",
     "agent.yaml:10: slos[0].sli: should be 'availability' or 'latency', not the text 'freshness'"),
    ("unknown-key", AVAILABILITY + "    target: 99\n", "agent.yaml:10: slos[0].target: unknown field"),
]


@pytest.mark.parametrize(("case", "slos", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_slo_is_a_file_line_error(case: str, slos: str, expected: str) -> None:
    errors = _errors(slos)
    assert any(e.startswith(expected) for e in errors), errors


def test_a_millisecond_threshold_is_an_exact_bucket_bound() -> None:
    from probes.sinks.prometheus import bucket_label

    config = parse_config(HEAD + LATENCY.replace("500ms", "700ms"), "agent.yaml")
    assert bucket_label(config.slos[0].threshold or 0) == "0.7"
