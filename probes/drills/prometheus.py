"""What a drill reads from Prometheus' HTTP API: active alerts, alerting rules, scrape and rule intervals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from probes.errors import CannotRun

_PROM_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_PROM_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class WatchError(Exception):
    """A query during the drill failed; the watcher retries until its deadline."""


def prom_duration(text: str | None, default: float) -> float:
    """Prometheus' duration format (`1m30s`, `500ms`, `2w`)."""
    if not text:
        return default
    parts = _PROM_DURATION.findall(str(text))
    if not parts:
        return default
    return sum(int(n) * _PROM_UNITS[unit] for n, unit in parts)


@dataclass
class ActiveAlert:
    name: str
    labels: dict[str, str]
    state: str  # pending | firing
    active_at: str | None = None


@dataclass
class AlertRule:
    name: str
    query: str
    for_seconds: float
    labels: dict[str, str]
    group: str
    group_interval: float


@dataclass
class RecordingRule:
    name: str
    query: str
    group: str
    group_interval: float


@dataclass
class RuleGroup:
    """What an export needs to copy a rule: the group's rules as Prometheus reports them."""

    name: str
    interval: float
    rules: list[dict[str, Any]]
    last_evaluation: str | None = None


@dataclass
class ScrapeTiming:
    scrape_interval: float
    evaluation_interval: float
    jobs: dict[str, float] = field(default_factory=dict)

    def for_alert(self, labels: dict[str, str], query: str) -> float:
        """The scrape interval behind an alert: its job's if known, else the slowest job's (a safe bound)."""
        job = labels.get("job")
        if job is None:
            match = re.search(r'job\s*=\s*"([^"]+)"', query)
            job = match.group(1) if match else None
        if job in self.jobs:
            return self.jobs[job]
        return max([self.scrape_interval, *self.jobs.values()])


def matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


class PrometheusClient:
    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = await self.client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise WatchError(f"GET {url}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code != 200:
            raise WatchError(f"GET {url} answered {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError:
            raise WatchError(f"GET {url}: not JSON (is this Prometheus?)") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            raise WatchError(f"GET {url}: {str(body)[:200]}")
        return body.get("data")

    async def check(self) -> None:
        try:
            await self._get("/api/v1/status/buildinfo")
        except WatchError as exc:
            raise CannotRun(f"Prometheus at {self.base_url} is unreachable: {exc}") from None

    async def alerts(self) -> list[ActiveAlert]:
        data = await self._get("/api/v1/alerts")
        out = []
        for item in (data or {}).get("alerts", []):
            labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
            out.append(
                ActiveAlert(
                    labels.get("alertname", ""), labels, str(item.get("state", "")), item.get("activeAt")
                )
            )
        return out

    async def groups(self) -> list[RuleGroup]:
        data = await self._get("/api/v1/rules")
        return [
            RuleGroup(str(g.get("name")), float(g.get("interval") or 0), list(g.get("rules") or []),
                      g.get("lastEvaluation"))
            for g in (data or {}).get("groups", [])
            if isinstance(g, dict)
        ]

    async def recording_rules(self) -> dict[str, RecordingRule]:
        out: dict[str, RecordingRule] = {}
        for group in await self.groups():
            for rule in group.rules:
                if rule.get("type") == "recording":
                    name = str(rule.get("name"))
                    out[name] = RecordingRule(name, str(rule.get("query", "")), group.name, group.interval)
        return out

    async def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant vector query; the `result` list."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = await self._get("/api/v1/query", params)
        result = (data or {}).get("result", [])
        return result if isinstance(result, list) else []

    async def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = await self._get("/api/v1/query_range", params)
        result = (data or {}).get("result", [])
        return result if isinstance(result, list) else []

    async def alerting_rules(self) -> list[AlertRule]:
        data = await self._get("/api/v1/rules", {"type": "alert"})
        rules = []
        for group in (data or {}).get("groups", []):
            interval = float(group.get("interval") or 0)
            for rule in group.get("rules", []):
                if rule.get("type") != "alerting":
                    continue
                rules.append(
                    AlertRule(
                        name=str(rule.get("name")),
                        query=str(rule.get("query", "")),
                        for_seconds=float(rule.get("duration") or 0),
                        labels={str(k): str(v) for k, v in (rule.get("labels") or {}).items()},
                        group=str(group.get("name")),
                        group_interval=interval,
                    )
                )
        return rules

    async def alertmanagers(self) -> list[str]:
        """URLs of the Alertmanagers this Prometheus sends alerts to."""
        data = await self._get("/api/v1/alertmanagers")
        return [str(a.get("url")) for a in (data or {}).get("activeAlertmanagers", []) if isinstance(a, dict)]

    async def timing(self) -> ScrapeTiming:
        data = await self._get("/api/v1/status/config")
        try:
            config = yaml.safe_load((data or {}).get("yaml", "")) or {}
        except yaml.YAMLError:
            config = {}
        glob = config.get("global") or {}
        scrape = prom_duration(glob.get("scrape_interval"), 60.0)
        evaluation = prom_duration(glob.get("evaluation_interval"), 60.0)
        jobs = {
            str(job.get("job_name")): prom_duration(job.get("scrape_interval"), scrape)
            for job in config.get("scrape_configs") or []
            if isinstance(job, dict)
        }
        return ScrapeTiming(scrape, evaluation, jobs)
