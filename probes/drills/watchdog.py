"""A detached reverter for injectors without their own expiry (Toxiproxy, shell commands).

Started at injection in its own session; the drill terminates it after a successful revert. If the drill
was killed (SIGKILL, OOM, a lost machine), this process reverts the fault when its TTL runs out.
"""

from __future__ import annotations

import argparse
import subprocess
import time
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser(prog="probes.drills.watchdog")
    parser.add_argument("--after", type=float, required=True)
    parser.add_argument("--delete", help="URL to send DELETE to")
    parser.add_argument("--command", help="shell command to run")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    time.sleep(args.after)
    if args.delete:
        request = urllib.request.Request(args.delete, method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=args.timeout).close()
        except OSError:
            return 1
    if args.command:
        try:
            return subprocess.run(args.command, shell=True, timeout=args.timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
