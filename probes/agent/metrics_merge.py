"""One /metrics from several worker processes' expositions, with the names and labels one process gives.

Every probe series carries its `probe` label and each probe runs in exactly one worker, so a probe
family's samples from different workers never collide: the merge puts the family's header once and the
workers' bodies after it, without reading them line by line (a scrape of 10,000 probes is tens of MB).
The agent's own series (`probe_agent_*`) exist in every worker with the same labels; those few are
combined sample by sample: counters and histograms add up, `*_created` takes the earliest, `*_info`
stays 1, the reload gauges take the worst worker (the oldest reload, a failed one), other gauges add up
(probes configured, queue sizes).

Each worker's text arrives whole (its HTTP response was read to the end) or not at all, so a family is
never half there; a worker that did not answer is left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

AGENT_PREFIX = "probe_agent_"
WORST_IS_LOWEST = frozenset({"probe_agent_config_reload_success", "probe_agent_config_last_reload_timestamp_seconds"})


@dataclass(slots=True)
class Family:
    name: str
    kind: str
    header: bytes
    bodies: list[memoryview] = field(default_factory=list)


HELP = b"\n# HELP "


class Exposition:
    """One worker's text as it arrives, with where each family starts. Looking for the `# HELP` lines
    piece by piece as the pieces arrive keeps the parent's event loop free: one pass over a whole 15 MB
    text would hold it for ~10 ms."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.starts: list[int] = []
        self._head_checked = False

    def feed(self, piece: bytes) -> None:
        at = len(self.buffer)
        self.buffer += piece
        if not self._head_checked and len(self.buffer) >= len(HELP) - 1:
            self._head_checked = True
            if self.buffer.startswith(HELP[1:]):
                self.starts.append(0)
        # A `# HELP` line may begin in the previous piece.
        found = self.buffer.find(HELP, max(0, at - len(HELP) + 1))
        while found != -1:
            self.starts.append(found + 1)
            found = self.buffer.find(HELP, found + 1)

    def families(self) -> list[Family]:
        """The families in order; bodies are views into the buffer, not copies."""
        text = self.buffer
        view = memoryview(text)
        families = []
        for index, begin in enumerate(self.starts):
            end = self.starts[index + 1] if index + 1 < len(self.starts) else len(text)
            help_end = text.find(b"\n", begin, end)
            help_end = end if help_end == -1 else help_end + 1
            name = bytes(text[begin + 7:help_end]).split(b" ", 1)[0].strip().decode()
            kind = "untyped"
            body_start = help_end
            if text.startswith(b"# TYPE ", help_end):
                type_end = text.find(b"\n", help_end, end)
                type_end = end if type_end == -1 else type_end + 1
                kind = bytes(text[help_end:type_end]).split()[-1].decode()
                body_start = type_end
            families.append(Family(name, kind, bytes(text[begin:body_start]), [view[body_start:end]]))
        return families


def split_families(text: bytes) -> list[Family]:
    """The families of a complete exposition."""
    exposition = Exposition()
    exposition.feed(text)
    return exposition.families()


def _combiner(family: Family, sample: str) -> Callable[[float, float], float]:
    if sample.endswith("_created"):
        return min
    if family.kind in ("counter", "histogram", "summary"):
        return _add
    if family.name.endswith("_info"):
        return max
    if family.name in WORST_IS_LOWEST:
        return min
    return _add


def _add(a: float, b: float) -> float:
    return a + b


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _combine_samples(family: Family, cap: float | None = None) -> bytes:
    values: dict[str, float] = {}
    for body in family.bodies:
        for line in bytes(body).decode().splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, raw = line.rpartition(" ")
            value = float(raw)
            if key in values:
                values[key] = _combiner(family, key.split("{", 1)[0])(values[key], value)
            else:
                values[key] = value
    if cap is not None:
        values = {key: min(v, cap) for key, v in values.items()}
    return "".join(f"{key} {_number(v)}\n" for key, v in values.items()).encode()


def merge(texts: Sequence[bytes | Exposition], caps: Mapping[str, float] | None = None) -> Iterator[bytes | memoryview]:
    """The merged exposition of several workers' texts, as pieces to send one after another. `caps` bounds
    an agent family's values from above (the agent process's own verdict, e.g. a reload it refused)."""
    caps = caps or {}
    merged: dict[str, Family] = {}
    for text in texts:
        families = text.families() if isinstance(text, Exposition) else split_families(text)
        for family in families:
            seen = merged.get(family.name)
            if seen is None:
                merged[family.name] = family
            else:
                seen.bodies.extend(family.bodies)
    for family in merged.values():
        if family.name.startswith(AGENT_PREFIX) and (len(family.bodies) > 1 or family.name in caps):
            yield family.header + _combine_samples(family, caps.get(family.name))
            continue
        yield family.header
        yield from family.bodies
