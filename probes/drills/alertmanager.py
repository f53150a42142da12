"""What a drill reads from Alertmanager's v2 API: which alerts it holds, and the route timing for an alert."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from probes.drills.prometheus import WatchError, prom_duration
from probes.errors import CannotRun

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')

# Alertmanager's own defaults for the root route.
DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0


@dataclass
class RouteTiming:
    group_wait: float
    group_interval: float


def _matcher_ok(text: str, labels: dict[str, str]) -> bool:
    match = _MATCHER.match(text)
    if not match:
        return False
    name, op, value = match.groups()
    actual = labels.get(name, "")
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    full = re.fullmatch(value, actual) is not None
    return full if op == "=~" else not full


def _route_matches(route: dict[str, Any], labels: dict[str, str]) -> bool:
    for name, value in (route.get("match") or {}).items():
        if labels.get(name) != str(value):
            return False
    for name, pattern in (route.get("match_re") or {}).items():
        if re.fullmatch(str(pattern), labels.get(name, "")) is None:
            return False
    return all(_matcher_ok(str(m), labels) for m in route.get("matchers") or [])


def route_timing(config: dict[str, Any], labels: dict[str, str]) -> RouteTiming:
    """group_wait / group_interval of the route an alert with `labels` takes (first match, inherited)."""
    route = config.get("route") or {}
    wait = prom_duration(route.get("group_wait"), DEFAULT_GROUP_WAIT)
    interval = prom_duration(route.get("group_interval"), DEFAULT_GROUP_INTERVAL)
    while True:
        child = next(
            (r for r in route.get("routes") or [] if isinstance(r, dict) and _route_matches(r, labels)), None
        )
        if child is None:
            return RouteTiming(wait, interval)
        wait = prom_duration(child.get("group_wait"), wait)
        interval = prom_duration(child.get("group_interval"), interval)
        route = child


class AlertmanagerClient:
    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client

    async def _get(self, path: str) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = await self.client.get(url)
        except httpx.HTTPError as exc:
            raise WatchError(f"GET {url}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code != 200:
            raise WatchError(f"GET {url} answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise WatchError(f"GET {url}: not JSON (is this Alertmanager?)") from None

    async def config(self) -> dict[str, Any]:
        """The running configuration; raises CannotRun when Alertmanager is unreachable."""
        try:
            status = await self._get("/api/v2/status")
        except WatchError as exc:
            raise CannotRun(f"Alertmanager at {self.base_url} is unreachable: {exc}") from None
        try:
            config = yaml.safe_load(((status or {}).get("config") or {}).get("original", "")) or {}
        except yaml.YAMLError:
            config = {}
        return config if isinstance(config, dict) else {}

    async def alerts(self) -> list[dict[str, str]]:
        """Label sets of the alerts Alertmanager holds as active (not silenced or inhibited)."""
        body = await self._get("/api/v2/alerts?active=true&silenced=false&inhibited=false")
        return [
            {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
            for a in body or []
            if isinstance(a, dict)
        ]
