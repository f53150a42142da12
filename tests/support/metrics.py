"""Read a Prometheus text exposition the way Prometheus does (prometheus-client's parser)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def all_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample."""
    return [(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text) for s in family.samples]


def samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                out.append((dict(sample.labels), sample.value))
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    found = samples(text, name, **labels)
    return found[0][1] if found else None


def exact(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of the sample with this name and exactly this label set (any labels if None)."""
    for sample_name, sample_labels, sample_value in all_samples(text):
        if sample_name == name and (labels is None or sample_labels == labels):
            return sample_value
    return None
