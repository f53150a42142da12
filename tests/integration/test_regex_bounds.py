"""A body regex cannot stall the agent: RE2 runs what it can in linear time, the rest runs in a worker
thread with a deadline. Found in an adversarial round: one catastrophic pattern made a healthy probe
beside it report a 3 s timeout against its 1 s timeout."""

from __future__ import annotations

from pathlib import Path

from tests.support.hostile import hostile_server
from tests.support.processes import once_results


def test_catastrophic_body_regexes_do_not_stall_a_healthy_probe(tmp_path: Path) -> None:
    with hostile_server() as server:
        config = tmp_path / "agent.yaml"
        # Both patterns backtrack exponentially in Python's `re` on these bodies. The first is RE2's (linear);
        # the backreference of the second keeps it off RE2, so it runs with a deadline beside the loop.
        config.write_text(f"""
probes:
  - name: healthy
    type: http
    url: "{server.url}/slow?ms=400"
    timeout: 1s
    expect: {{max_latency: 900ms}}
  - name: nested-quantifier
    type: http
    url: "{server.url}/repeat?s=a&n=5000&end=b"
    timeout: 5s
    expect: {{body_matches: '^(a+)+$'}}
  - name: backreference
    type: http
    url: "{server.url}/repeat?s=ab&n=5000&end=c"
    timeout: 5s
    expect: {{body_matches: '(\\w+)\\1+$'}}
""")
        results = once_results(config, expect_code=1)
    healthy = results["healthy"]
    assert healthy["success"], healthy
    assert healthy["duration_seconds"] < 0.9, healthy
    nested = results["nested-quantifier"]
    assert (nested["success"], nested["reason"]) == (False, "assertion") and "does not match" in nested["message"]
    assert nested["duration_seconds"] < 1.0
    backref = results["backreference"]
    assert (backref["success"], backref["reason"]) == (False, "assertion"), backref
    assert "took longer than 1s" in backref["message"], backref
