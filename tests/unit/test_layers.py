"""Imports point down only: a module never imports from a layer above it (function-level and
TYPE_CHECKING imports included), so config -> agent -> probers -> result -> sinks -> web stays readable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "probes"

# Lowest first. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("probes", "probes.result", "probes.errors", "probes.durations", "probes.jsonpaths",
              "probes.identity", "probes.asgi_server", "probes.stop_signals", "probes.junit",
              "probes.redaction", "probes.fingerprint", "probes.page_style",
              "probes.plural", "probes.log_format", "probes.cli_flags",
              "probes.regexes")),
    ("config", ("probes.config",)),
    # The load engine (Locust launcher, thresholds, reports) serves both the `load` probe type and the
    # `probe-agent load` command: a client of Locust, below the probers; its command is a feature.
    ("clients", ("probes.clients", "probes.load")),
    ("probers", ("probes.probers",)),
    ("sinks", ("probes.sinks",)),
    ("web", ("probes.web",)),
    ("agent", ("probes.agent",)),
    ("features", ("probes.faults", "probes.load.command", "probes.drills", "probes.demo", "probes.slo",
                  "probes.consistency", "probes.blackbox", "probes.fleet", "probes.workers")),
    ("cli", ("probes.cli", "probes.__main__")),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    if rank < 0:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return rank


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if base == "probes"]
    return [(line, name) for line, name in found if name == "probes" or name.startswith("probes.")]


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_module_imports_from_a_layer_above_it(path: Path) -> None:
    module = _module_name(path)
    own = layer_of(module)
    upward = [f"line {line}: {name} ({LAYERS[layer_of(name)][0]})" for line, name in _imports(path, module)
              if name != "probes" and layer_of(name) > own]
    assert not upward, f"{module} ({LAYERS[own][0]}) imports from above: " + "; ".join(upward)
