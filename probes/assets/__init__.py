"""Files that ship inside the package: the Prometheus alert and recording rules, and the example configs.

They live here so that a plain `pip install .` (the Docker image's way) carries them: `probe-agent demo
--drill` loads these rules wherever the package is installed. `deploy/prometheus/rules` and
`deploy/examples` in the source tree are relative symlinks to these folders: one copy of each file, the
same one that docker compose and Kubernetes mount.
"""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
RULES_DIR = ASSETS_DIR / "prometheus" / "rules"
EXAMPLES_DIR = ASSETS_DIR / "examples"
