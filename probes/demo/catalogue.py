"""A deterministic in-memory product catalogue with BM25 ranking, shaped like a real search backend.

The same items, titles and ranking on every machine and every run, so that golden-query canaries
(`top_k_contains: [sku-00042]` for `q=laptop`) and tests can rely on them.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache

ITEM_COUNT = 3000
_SEED = 20240601
_K1 = 1.2
_B = 0.75

_BRANDS = ("Aurora", "Nimbus", "Vertex", "Orion", "Zephyr", "Kestrel", "Lumen", "Quanta", "Solace", "Tessera")
_EDITIONS = ("Pro", "Air", "Max", "Mini", "Ultra", "Lite", "Plus", "Neo", "Flex", "Edge")

# category -> (share of the catalogue, product nouns, extra words)
_CATEGORIES: dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]] = {
    "laptops": (14, ("Laptop", "Notebook", "Ultrabook", "Gaming Laptop"), ("13-inch", "14-inch", "16GB RAM", "OLED")),
    "phones": (14, ("Phone", "Smartphone", "5G Phone"), ("128GB", "256GB", "dual SIM", "unlocked")),
    "tablets": (8, ("Tablet", "Drawing Tablet"), ("10-inch", "Wi-Fi", "64GB", "stylus")),
    "headphones": (10, ("Headphones", "Earbuds", "Headset"), ("wireless", "noise cancelling", "over-ear")),
    "monitors": (8, ("Monitor", "Display"), ("27-inch", "4K", "144Hz", "IPS")),
    "keyboards": (7, ("Keyboard", "Mechanical Keyboard"), ("wireless", "backlit", "compact")),
    "mice": (6, ("Mouse", "Trackball"), ("wireless", "ergonomic", "silent")),
    "cameras": (7, ("Camera", "Mirrorless Camera", "Action Camera"), ("4K", "24MP", "waterproof")),
    "smartwatches": (6, ("Smartwatch", "Fitness Tracker"), ("GPS", "heart rate", "AMOLED")),
    "speakers": (6, ("Speaker", "Soundbar"), ("bluetooth", "portable", "waterproof")),
    "accessories": (
        14,
        ("Laptop Sleeve", "Laptop Stand", "Phone Case", "Phone Charger", "USB-C Cable", "Tablet Cover"),
        ("black", "grey", "fast charging", "slim"),
    ),
}

# Fixed items the docs and golden-query probes point at; everything else is generated.
_PINNED: dict[int, tuple[str, str, float]] = {
    42: ("Aurora Pro 14 Laptop", "laptops", 1299.0),
    7: ("Nimbus Neo Phone", "phones", 699.0),
}

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words with a naive plural stem, so `laptops` finds `Laptop`."""
    return [_stem(word) for word in _TOKEN.findall(text.lower())]


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    title: str
    category: str
    brand: str
    price: float
    rating: float
    in_stock: bool

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category,
            "brand": self.brand,
            "price": self.price,
            "rating": self.rating,
            "in_stock": self.in_stock,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    item: Item
    score: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    total: int
    hits: list[Hit]


def _generate() -> list[Item]:
    rng = random.Random(_SEED)
    names = list(_CATEGORIES)
    weights = [_CATEGORIES[name][0] for name in names]
    items = []
    for number in range(1, ITEM_COUNT + 1):
        item_id = f"sku-{number:05d}"
        if number in _PINNED:
            title, category, price = _PINNED[number]
            items.append(Item(item_id, title, category, title.split()[0], price, 4.9, True))
            continue
        category = rng.choices(names, weights)[0]
        _, nouns, extras = _CATEGORIES[category]
        brand = rng.choice(_BRANDS)
        title = f"{brand} {rng.choice(_EDITIONS)} {rng.randint(1, 9)}{rng.choice(('', '0', '00'))} {rng.choice(nouns)}"
        if rng.random() < 0.6:
            title += f", {rng.choice(extras)}"
        price = round(rng.uniform(9, 2500 if category in ("laptops", "cameras") else 900), 2)
        rating = round(rng.uniform(2.5, 4.8), 1)
        items.append(Item(item_id, title, category, brand, price, rating, rng.random() > 0.1))
    return items


class Catalogue:
    """Items with an inverted index; BM25 over title and category."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.by_id = {item.id: item for item in items}
        self._postings: dict[str, list[tuple[int, int]]] = {}
        lengths = []
        for index, item in enumerate(items):
            terms = tokenize(item.title) + tokenize(item.category)
            lengths.append(len(terms))
            for term, count in Counter(terms).items():
                self._postings.setdefault(term, []).append((index, count))
        self._lengths = lengths
        self._avg_length = sum(lengths) / max(1, len(lengths))
        self.categories = Counter(item.category for item in items)

    def search(self, query: str, *, limit: int = 10, offset: int = 0, category: str | None = None) -> SearchResult:
        wanted = category.strip().lower() if category else None
        terms = set(tokenize(query))
        if not terms:
            matching = [item for item in self.items if wanted is None or item.category == wanted]
            return SearchResult(len(matching), [Hit(item, 1.0) for item in matching[offset : offset + limit]])
        scores: dict[int, float] = {}
        count = len(self.items)
        for term in terms:
            postings = self._postings.get(term, ())
            if not postings:
                continue
            idf = math.log(1 + (count - len(postings) + 0.5) / (len(postings) + 0.5))
            for index, tf in postings:
                norm = tf + _K1 * (1 - _B + _B * self._lengths[index] / self._avg_length)
                scores[index] = scores.get(index, 0.0) + idf * tf * (_K1 + 1) / norm
        if wanted is not None:
            scores = {i: s for i, s in scores.items() if self.items[i].category == wanted}
        # Equal scores are common with short titles: the better-rated item first, then the lower id.
        items = self.items
        ranked = sorted(scores.items(), key=lambda pair: (-round(pair[1], 6), -items[pair[0]].rating, pair[0]))
        page = ranked[offset : offset + limit]
        return SearchResult(len(ranked), [Hit(self.items[i], round(score, 4)) for i, score in page])


@cache
def default_catalogue() -> Catalogue:
    return Catalogue(_generate())
