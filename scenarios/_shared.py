"""Helpers shared by the bundled scenarios; no Locust import, so they are unit-testable anywhere.

The leading underscore keeps Locust from treating this module as a locustfile when it is given the
whole `scenarios/` directory.
"""

from __future__ import annotations

import os
import random
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_QUERIES = DATA_DIR / "queries.txt"
# Used until (or if never) GET /api/categories answers: filtered searches still exercise the filter.
DEFAULT_CATEGORIES = ("laptops", "phones", "headphones", "monitors", "accessories")


def load_queries(path: str | os.PathLike[str] | None = None) -> list[str]:
    """The query corpus: one query a line; `SEARCH_QUERIES` points at another file."""
    source = Path(path or os.environ.get("SEARCH_QUERIES") or DEFAULT_QUERIES)
    queries = [
        line.strip()
        for line in source.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not queries:
        raise ValueError(f"{source}: the query corpus is empty")
    return queries


def parse_categories(payload: Any) -> list[str]:
    """Category names from `/api/categories`: a list of names, of objects, or `{"categories": [...]}`."""
    if isinstance(payload, dict):
        payload = payload.get("categories", [])
    names: list[str] = []
    if isinstance(payload, list):
        for item in payload:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict):
                value = item.get("name", item.get("id"))
                if isinstance(value, str):
                    names.append(value)
    return names


def hit_ids(payload: Any) -> list[str]:
    """Document ids in a search response (`{"hits": [{"id": ...}]}`)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("hits"), list):
        return []
    return [str(hit["id"]) for hit in payload["hits"] if isinstance(hit, dict) and "id" in hit]


def is_search_response(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("hits"), list) and "total" in payload


class RecentIds:
    """Ids seen in recent results: document fetches follow what users were shown, so they exist."""

    def __init__(self, size: int = 200) -> None:
        self._ids: deque[str] = deque(maxlen=size)

    def add(self, ids: Iterable[str]) -> None:
        self._ids.extend(ids)

    def pick(self, rng: random.Random) -> str | None:
        return rng.choice(self._ids) if self._ids else None

    def __len__(self) -> int:
        return len(self._ids)
