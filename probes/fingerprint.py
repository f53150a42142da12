"""A stable fingerprint of a search answer: the ordered ids of its top hits (and optionally the total).

Agents in different regions run the same golden queries; equal answers give equal fingerprints, so
Prometheus can count distinct answers per probe. The value is exported as a gauge, which is a float64:
52 bits keep every fingerprint exact (and `count_values` prints it back as the same integer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from probes.result import Sample

BITS = 52
METRIC = "probe_search_result_fingerprint"
HELP = ("A 52-bit hash of the ordered ids of the top hits of the last search: "
        "regions giving the same answer report the same value.")


def total_value(value: Any) -> int | None:
    """A search total as an int: a plain number, or Elasticsearch's {"value": N, "relation": "eq"}."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


def hit_id(hit: Any, id_field: str) -> str | None:
    """A hit's id as text (ids compare as text, like `top_k_contains`); None when the hit has none."""
    if not isinstance(hit, dict):
        return None
    value = hit.get(id_field)
    return None if value is None else str(value)


def top_ids(hits: Sequence[Any] | None, id_field: str, top_k: int) -> list[str | None]:
    return [hit_id(hit, id_field) for hit in (hits or [])[:top_k]]


def fingerprint(ids: Sequence[str | None], total: int | None = None, *, with_total: bool = False) -> int:
    """The first 52 bits of BLAKE2b over a canonical encoding of the ordered ids (and total if asked).

    Not Python's hash(): that one changes with PYTHONHASHSEED, so two agents would never agree.
    """
    payload: dict[str, Any] = {"ids": list(ids)}
    if with_total:
        payload["total"] = total
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
    digest = hashlib.blake2b(encoded, digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - BITS)


def answer_details(hits: Sequence[Any] | None, total: int | None, *, id_field: str, top_k: int,
                   with_total: bool) -> dict[str, Any]:
    """What a result keeps about its answer, for /api/results, the Elasticsearch sink and `diff`."""
    ids = top_ids(hits, id_field, top_k)
    return {"fingerprint": fingerprint(ids, total, with_total=with_total), "top_ids": ids, "total": total}


def fingerprint_sample(details: dict[str, Any], labels: tuple[tuple[str, str], ...] = ()) -> Sample:
    return Sample(METRIC, float(details["fingerprint"]), labels, HELP)
