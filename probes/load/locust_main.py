"""Entry point of the Locust subprocess: `python -m probes.load.locust_main <Locust arguments>`.

Only `probe-agent load` starts this, always in a child process: importing Locust monkey-patches the
whole interpreter with gevent, which must never happen in the agent or in pytest.
"""

from __future__ import annotations

import sys

# Locust first: gevent must patch sockets and threads before anything else creates them.
import locust
from locust.main import main as locust_main

from probes.load import locust_plugin


def main() -> None:
    locust_plugin.install(locust.events)
    sys.argv[0] = "locust"
    locust_main()


if __name__ == "__main__":
    main()
