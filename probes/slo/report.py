"""`probe-agent slo report`: each SLO's error budget per region, from Prometheus.

It queries the probe counters directly (the same PromQL as the recording rules), so it works against any
Prometheus that scrapes the agents, with or without the generated rules loaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from html import escape

import httpx

from probes.config.slo import SloConfig
from probes.errors import CannotRun
from probes.page_style import CSS
from probes.slo.queries import error_ratio
from probes.slo.windows import HOUR, TimeScale, window_label


@dataclass(frozen=True)
class Row:
    slo: str
    sli: str  # availability | latency
    objective: float  # percent, as configured
    window: str
    region: str | None  # None: no data for this SLO at all
    actual: float | None  # the SLI over the window, percent of good runs
    budget_remaining: float | None  # 1 - (1 - actual) / (1 - objective); negative when overspent
    burn_rate_1h: float | None
    burn_rate_6h: float | None

    @property
    def budget_spent(self) -> bool:
        return self.budget_remaining is not None and self.budget_remaining <= 0


class Prometheus:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def by_region(self, query: str) -> dict[str, float | None]:
        try:
            response = self._http.get(f"{self.url}/api/v1/query", params={"query": query})
        except httpx.HTTPError as exc:
            raise CannotRun(f"cannot reach Prometheus at {self.url}: {_one_line(exc)}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            detail = body.get("error") or f"HTTP {response.status_code}"
            raise CannotRun(f"Prometheus at {self.url} did not answer the query: {_one_line(detail)}")
        out: dict[str, float | None] = {}
        for sample in body["data"]["result"]:
            value = float(sample["value"][1])
            out[sample["metric"].get("region", "")] = value if math.isfinite(value) else None
        return out


def _one_line(text: object) -> str:
    return " ".join(str(text).split()) or type(text).__name__


def _burn(ratio: float | None, budget: float) -> float | None:
    return None if ratio is None else ratio / budget


def rows_for(slo: SloConfig, prometheus: Prometheus, scale: TimeScale) -> list[Row]:
    budget = slo.error_budget
    over_window = prometheus.by_region(error_ratio(slo, scale.range(slo.window)))
    hour = prometheus.by_region(error_ratio(slo, scale.range(HOUR)))
    six = prometheus.by_region(error_ratio(slo, scale.range(6 * HOUR)))
    def row(region: str | None, ratio: float | None) -> Row:
        return Row(slo=slo.name, sli=slo.sli, objective=slo.objective, window=window_label(slo.window),
                   region=region, actual=None if ratio is None else 100 * (1 - ratio),
                   budget_remaining=None if ratio is None else 1 - ratio / budget,
                   burn_rate_1h=_burn(hour.get(region or ""), budget),
                   burn_rate_6h=_burn(six.get(region or ""), budget))

    if not over_window:
        return [row(None, None)]
    rows = [row(region, over_window[region]) for region in sorted(over_window)]
    return rows


def collect(slos: list[SloConfig], url: str, scale: TimeScale) -> list[Row]:
    prometheus = Prometheus(url)
    try:
        rows = [row for slo in slos for row in rows_for(slo, prometheus, scale)]
    finally:
        prometheus.close()
    if all(row.region is None for row in rows):
        raise CannotRun(f"no probe results in Prometheus at {url} for any SLO "
                        f"({', '.join(s.name for s in slos)}): is it scraping the agents?")
    return rows


def _pct(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}%"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _cells(row: Row) -> list[str]:
    if row.region is None:
        return [row.slo, row.sli, f"{row.objective:g}%", row.window, "-", "no data", "-", "-", "-"]
    left = "-" if row.budget_remaining is None else f"{row.budget_remaining * 100:.1f}%"
    if row.budget_spent:
        left += " SPENT"
    return [row.slo, row.sli, f"{row.objective:g}%", row.window, row.region, _pct(row.actual), left,
            _times(row.burn_rate_1h), _times(row.burn_rate_6h)]


HEADERS = ["SLO", "SLI", "OBJECTIVE", "WINDOW", "REGION", "ACTUAL", "BUDGET LEFT", "BURN 1H", "BURN 6H"]


def table(rows: list[Row]) -> str:
    lines = [HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    spent = sum(r.budget_spent for r in rows)
    out.append(f"{spent} of {sum(r.region is not None for r in rows)} error budgets spent")
    return "\n".join(out)


def as_json(rows: list[Row]) -> str:
    return json.dumps({"budget_spent": any(r.budget_spent for r in rows),
                       "slos": [{**asdict(r), "budget_spent": r.budget_spent} for r in rows]}, indent=2)


# The package's one stylesheet, plus right-aligned numbers for this table.
_CSS = CSS + "td,th{text-align:right}td:first-child,th:first-child{text-align:left}\n"


def html(rows: list[Row], url: str) -> str:
    body = []
    for row in rows:
        css = "fail" if row.budget_spent else "pass"
        cells = "".join(f"<td>{escape(c)}</td>" for c in _cells(row))
        body.append(f'<tr class="{css}" data-slo="{escape(row.slo)}" data-region="{escape(row.region or "")}">'
                    f"{cells}</tr>")
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADERS)
    spent = sum(r.budget_spent for r in rows)
    return (f"<!doctype html><html><head><meta charset=utf-8><title>SLO error budgets</title>"
            f"<style>{_CSS}</style></head><body><h1>SLO error budgets</h1>"
            f"<p>From <code>{escape(url)}</code>: {spent} of {sum(r.region is not None for r in rows)} "
            f"budgets spent.</p><table><tr>{head}</tr>{''.join(body)}</table></body></html>\n")


FORMATS = {"table": lambda rows, url: table(rows), "json": lambda rows, url: as_json(rows), "html": html}
