"""Who is probing: the `region` and `agent` labels on every series, result document and page, and which
shard of the probes an agent runs."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    region: str
    agent: str


_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count`: the probes whose stable name hash modulo `count` is `index`."""

    index: int = 0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, probe_name: str) -> bool:
        return self.count == 1 or shard_of(probe_name, self.count) == self.index


def shard_of(probe_name: str, count: int) -> int:
    """The shard a probe name belongs to. BLAKE2b of the UTF-8 name: the same on every machine, Python
    version and run (Python's hash() is salted per process), and evenly spread."""
    digest = hashlib.blake2b(probe_name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def parse_shard(text: str) -> Shard:
    """`I/N` with 0 <= I < N; a ValueError says what is wrong and what is meant."""
    match = _SHARD.match(text)
    if not match:
        raise ValueError(f"invalid shard {text!r}: write I/N, shard I of N agents counted from 0 "
                         "(e.g. 0/3, 1/3, 2/3)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ValueError(f"invalid shard {text!r}: the number of shards N must be at least 1")
    if index >= count:
        raise ValueError(f"invalid shard {text!r}: the index counts from 0, so with {count} shards "
                         f"it is 0..{count - 1}")
    return Shard(index, count)
