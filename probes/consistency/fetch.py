"""Fetch the latest results of several agents (their `/api/results`), all at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = 10.0


@dataclass(slots=True)
class AgentAnswers:
    url: str
    region: str
    agent: str
    results: list[dict[str, Any]]


class Unreachable(Exception):
    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url


async def fetch_all(urls: list[str], timeout: float = TIMEOUT) -> tuple[list[AgentAnswers], list[Unreachable]]:
    """Every agent's results, and what went wrong with the agents that did not answer."""
    async with httpx.AsyncClient(timeout=timeout) as client:
        outcomes = await asyncio.gather(*(_fetch(client, url) for url in urls), return_exceptions=True)
    answers: list[AgentAnswers] = []
    failures: list[Unreachable] = []
    for outcome in outcomes:
        if isinstance(outcome, Unreachable):
            failures.append(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            answers.append(outcome)
    return answers, failures


async def _fetch(client: httpx.AsyncClient, url: str) -> AgentAnswers:
    base = url.rstrip("/")
    try:
        response = await client.get(f"{base}/api/results")
        response.raise_for_status()
        results = response.json()
    except httpx.HTTPStatusError as exc:
        raise Unreachable(url, f"/api/results answered {exc.response.status_code}") from None
    except httpx.HTTPError as exc:
        raise Unreachable(url, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    except ValueError:
        raise Unreachable(url, "/api/results is not JSON: is this a probe-agent?") from None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise Unreachable(url, "/api/results is not a list of results: is this a probe-agent?")
    region = next((r["region"] for r in results if isinstance(r.get("region"), str)), None)
    agent = next((r["agent"] for r in results if isinstance(r.get("agent"), str)), None)
    if region is None or agent is None:
        # An agent whose /api/results does not say where it runs: its /metrics does.
        region, agent = await _identity(client, base, url)
    return AgentAnswers(url=url, region=region, agent=agent, results=results)


async def _identity(client: httpx.AsyncClient, base: str, url: str) -> tuple[str, str]:
    try:
        response = await client.get(f"{base}/metrics")
        response.raise_for_status()
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "probe_agent_info":
                    return sample.labels.get("region", url), sample.labels.get("agent", url)
    except (httpx.HTTPError, ValueError):
        pass
    return url, url
