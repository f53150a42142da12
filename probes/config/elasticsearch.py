"""agent.yaml models for the Elasticsearch probe type and the Elasticsearch results sink."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.config.models import ProbeBase, TlsConfig
from probes.durations import Duration

ClusterColor = Literal["green", "yellow", "red"]
CLUSTER_COLORS: tuple[ClusterColor, ...] = ("green", "yellow", "red")
_ACCEPTED: tuple[ClusterColor, ...] = ("green", "yellow")

# Elasticsearch's own rules for index names, minus the date-math forms nobody writes in a probe.
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_hosts(hosts: list[str]) -> list[str]:
    for host in hosts:
        if not host.startswith(("http://", "https://")) or not host.split("://", 1)[1]:
            raise ValueError(f"{host!r} is not an http:// or https:// URL")
    if len({host.split("://", 1)[0] for host in hosts}) > 1:
        raise ValueError("hosts mix http:// and https://: use one scheme for all nodes")
    return hosts


def _check_index_name(value: str) -> str:
    if not _INDEX_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid index name: lowercase letters, digits, and _ . + -, "
                         "not starting with _ . + -")
    return value


class ElasticsearchConnection(_Strict):
    """Where and as whom to connect; shared by the probe type and the sink."""

    hosts: list[str] = Field(min_length=1)
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None

    _hosts = field_validator("hosts")(_check_hosts)

    @model_validator(mode="after")
    def _auth(self) -> Any:
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together")
        if self.api_key is not None and self.username is not None:
            raise ValueError("give either api_key or username/password, not both")
        if self.tls is not None and self.tls.server_name is not None:
            # The client's aiohttp transport has no way to send another SNI name or check another one.
            raise ValueError("tls.server_name is not supported for Elasticsearch: "
                             "put the name in the certificate into hosts")
        return self


class ElasticsearchExpect(_Strict):
    cluster_status: list[ClusterColor] = Field(default_factory=lambda: list(_ACCEPTED), min_length=1)
    """check cluster_health: the colours that count as success (yellow succeeds but is degraded)."""
    min_hits: int | None = Field(default=None, ge=0)
    """check search: fewer total hits fail with reason `assertion`."""
    max_took_ms: float | None = Field(default=None, ge=0)
    """check search: a larger `took` fails with reason `latency`."""
    max_freshness: Duration | None = None
    """check freshness: a canary that became searchable later than this fails with reason `latency`."""


class ElasticsearchProbeConfig(ProbeBase, ElasticsearchConnection):
    type: Literal["elasticsearch"]
    check: Literal["cluster_health", "search", "freshness"] = "cluster_health"
    index: str | None = None
    """search: the index or pattern to search (default: all); freshness: where the canary is written."""
    query: dict[str, Any] | None = None
    """search: a query DSL clause, e.g. {match: {title: laptop}}."""
    q: str | None = None
    """search: a Lucene query string instead of `query`."""
    freshness_poll: Duration = 0.1
    """freshness: how often to search for the canary."""
    expect: ElasticsearchExpect = Field(default_factory=ElasticsearchExpect)

    @model_validator(mode="after")
    def _fits_check(self) -> ElasticsearchProbeConfig:
        given = self.model_fields_set
        expect_given = self.expect.model_fields_set
        if self.check != "search":
            wrong: list[str] = [k for k in ("query", "q") if k in given]
            wrong += [f"expect.{k}" for k in ("min_hits", "max_took_ms") if k in expect_given]
            if wrong:
                raise ValueError(f"{', '.join(wrong)} only apply to check: search")
        if self.check != "cluster_health" and "cluster_status" in expect_given:
            raise ValueError("expect.cluster_status only applies to check: cluster_health")
        if self.check != "freshness" and ("max_freshness" in expect_given or "freshness_poll" in given):
            raise ValueError("freshness_poll and expect.max_freshness only apply to check: freshness")
        if self.query is not None and self.q is not None:
            raise ValueError("give either query or q, not both")
        if self.check == "freshness":
            if self.index is None:
                raise ValueError("check: freshness needs index: the index the canary document is written to "
                                 "(e.g. probe-canary)")
            _check_index_name(self.index)
            if self.freshness_poll <= 0:
                raise ValueError("freshness_poll must be greater than 0")
        return self


class ElasticsearchSinkConfig(ElasticsearchConnection):
    index: str = "probe-results"
    """Documents go to the daily index `<index>-YYYY.MM.DD` (UTC)."""
    queue_size: int = Field(default=10_000, ge=1)
    """Results kept while Elasticsearch is slow or away; beyond this they are dropped and counted."""
    batch_size: int = Field(default=500, ge=1)
    flush_interval: Duration = 1.0
    timeout: Duration = 10.0
    """Per bulk request."""
    max_retries: int = Field(default=5, ge=0)
    """Retries of a document Elasticsearch rejected with 429 or 5xx; then it is dropped."""
    retry_backoff: Duration = 0.5
    """First wait before a retry; doubles each time up to max_backoff."""
    max_backoff: Duration = 30.0
    create_template: bool = True
    """Create the index template `<index>` at start unless one exists (a 403 is logged and ignored)."""

    _index = field_validator("index")(_check_index_name)

    @model_validator(mode="after")
    def _positive(self) -> ElasticsearchSinkConfig:
        for key in ("flush_interval", "timeout", "retry_backoff", "max_backoff"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be greater than 0")
        if self.batch_size > self.queue_size:
            raise ValueError(f"batch_size ({self.batch_size}) is larger than queue_size ({self.queue_size})")
        return self
