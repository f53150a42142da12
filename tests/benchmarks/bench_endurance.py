"""Endurance benchmark: 500 probes at 100 ms against the demo API for 2 minutes, 200 hot reloads
alternating two configs (POST /-/reload), the Elasticsearch sink (a fake on 127.0.0.1) going away and
coming back every 5 s. Prints RSS and open fds (start, after warm-up, end, peak), runs and missed runs,
reloads answered, documents delivered and dropped. The bounded form runs in the test suite
(tests/integration/test_endurance.py).

Run from the repository root (loopback only, about 2.5 minutes):

    .venv/bin/python tests/benchmarks/bench_endurance.py [--seconds 120] [--probes 500] [--reloads 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.endurance import run_endurance


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--probes", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds")
    parser.add_argument("--reloads", type=int, default=200)
    parser.add_argument("--es-flap", type=float, default=5.0, help="seconds between sink outages and returns")
    parser.add_argument("--max-concurrency", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="probe-agent-endurance-") as tmp:
        figures = run_endurance(Path(tmp), probes=args.probes, interval=args.interval, seconds=args.seconds,
                                reloads=args.reloads, es_flap=args.es_flap, max_concurrency=args.max_concurrency)
    print("\n".join(figures.summary()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
