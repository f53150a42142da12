"""agent.yaml models for the Elasticsearch probe type and the Elasticsearch results sink (DESIGN §5, §7)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from probes.config_base import ProbeBase, TlsConfig
from probes.durations import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ElasticsearchAuth(_Strict):
    api_key: str | None = None
    username: str | None = None
    password: str | None = None


class ElasticsearchExpect(_Strict):
    cluster_status: list[Literal["green", "yellow", "red"]] = Field(default_factory=lambda: ["green", "yellow"])
    min_hits: int | None = None
    max_took_ms: float | None = None


class ElasticsearchProbeConfig(ProbeBase, ElasticsearchAuth):
    type: Literal["elasticsearch"]
    hosts: list[str] = Field(min_length=1)
    tls: TlsConfig | None = None
    check: Literal["cluster_health", "search", "freshness"] = "cluster_health"
    index: str | None = None
    query: dict[str, Any] | None = None
    q: str | None = None
    freshness_poll: Duration = 0.1
    expect: ElasticsearchExpect = Field(default_factory=ElasticsearchExpect)


class ElasticsearchSinkConfig(ElasticsearchAuth):
    hosts: list[str] = Field(min_length=1)
    tls: TlsConfig | None = None
    index: str = "probe-results"
    queue_size: int = Field(default=10_000, ge=1)
    batch_size: int = Field(default=500, ge=1)
    flush_interval: Duration = 1.0
    max_retries: int = Field(default=5, ge=0)
    create_template: bool = True
