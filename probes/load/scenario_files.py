"""Where `--scenario` points: a bundled scenario name (`search`, `health`) or any locustfile path.

Bundled scenarios live in the top-level `scenarios/` directory of the source tree and are installed as
`probes/_scenarios` (inside our own namespace). They are found wherever `PROBE_AGENT_SCENARIOS` points,
inside the installed package, next to the `probes` package (a source checkout or an editable install),
or, last, in `./scenarios`.
"""

from __future__ import annotations

import os
from pathlib import Path

from probes.errors import UsageError

ENV_VAR = "PROBE_AGENT_SCENARIOS"
# A directory is only taken for ours if it has this file, so an unrelated `scenarios` package is ignored.
MARKER = "_shared.py"


def _candidates() -> list[Path]:
    found: list[Path] = []
    if env := os.environ.get(ENV_VAR):
        found.append(Path(env))
    package = Path(__file__).resolve().parents[1]
    found.append(package / "_scenarios")  # installed (a wheel)
    found.append(package.parent / "scenarios")  # a source checkout
    found.append(Path.cwd() / "scenarios")
    return found


def scenarios_dir() -> Path | None:
    for candidate in _candidates():
        if (candidate / MARKER).is_file():
            return candidate
    return None


def bundled() -> dict[str, Path]:
    directory = scenarios_dir()
    if directory is None:
        return {}
    return {
        path.stem: path
        for path in sorted(directory.glob("*.py"))
        if not path.name.startswith("_") and path.name != "__init__.py"
    }


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or "/" in spec or spec.endswith(".py")


def resolve(spec: str) -> tuple[str, Path]:
    """(scenario name for reports and labels, locustfile path); UsageError for an unknown scenario."""
    if _looks_like_path(spec):
        path = Path(spec).expanduser()
        if not path.exists():
            raise UsageError(f"--scenario {spec!r}: no such file")
        if path.is_file() and path.suffix != ".py":
            raise UsageError(f"--scenario {spec!r}: a locustfile is a .py file")
        return path.stem if path.is_file() else path.name, path.resolve()
    known = bundled()
    if spec in known:
        return spec, known[spec]
    names = ", ".join(sorted(known)) or "none found (set PROBE_AGENT_SCENARIOS to the scenarios directory)"
    raise UsageError(
        f"--scenario {spec!r}: unknown scenario; bundled scenarios: {names}; or give a locustfile path"
    )
