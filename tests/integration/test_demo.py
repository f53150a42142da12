"""`probe-agent demo`: the README's first command, bounded by --duration."""

from __future__ import annotations

import re

from tests.support.processes import run_cli


def test_demo_runs_probes_against_the_bundled_api() -> None:
    proc = run_cli("demo", "--listen", "127.0.0.1:0", "--duration", "7", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"probe-agent: target listening on http://127\.0\.0\.1:\d+", out)
    assert re.search(r"probe-agent: agent listening on http://127\.0\.0\.1:\d+", out)
    last_table = out.rsplit("PROBE", 1)[1]
    for probe in ("api-health", "api-ready", "search-laptop-canary", "search-rotating", "login-then-search"):
        assert re.search(rf"^{probe}\s+\w+\s+OK\b", last_table, re.M), last_table
