"""The README's generated parts match the code they describe."""

from __future__ import annotations

import re
from pathlib import Path

from probes.probers import PROBERS_BY_TYPE, types_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_probe_types_table_is_the_registry() -> None:
    block = re.search(r"<!-- probe-types:[^\n]*-->\n(.*?)<!-- /probe-types -->", README.read_text(), re.S)
    assert block is not None, "README lost its probe types table"
    assert block.group(1) == types_table(), "run `probe-agent types` and paste its table into README.md"
    assert all(f"| `{name}` |" in block.group(1) for name in PROBERS_BY_TYPE)
