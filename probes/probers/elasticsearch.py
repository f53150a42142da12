"""The `elasticsearch` probe type, through the official async client: `cluster_health`, a `search`, or
index `freshness` (how long a new document takes to become searchable).

One client per prober, built lazily inside the agent's event loop and kept for every run (building one
costs an SSL context and a connection pool). The client's own retries are off: a run is one attempt,
and the agent's `retries:` decides about more.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeGuard

import aiohttp
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from pydantic import Field, model_validator

from probes.clients.elasticsearch import (
    ElasticsearchConnection,
    Failure,
    check_index_name,
    describe,
    make_client,
    public_url,
)
from probes.config.models import ProbeBase, Strict
from probes.durations import Duration
from probes.errors import ProbeFailed
from probes.probers.base import Prober, RunContext
from probes.result import ProbeResult, Sample

log = logging.getLogger(__name__)


ClusterColor = Literal["green", "yellow", "red"]
CLUSTER_COLORS: tuple[ClusterColor, ...] = ("green", "yellow", "red")
_ACCEPTED: tuple[ClusterColor, ...] = ("green", "yellow")


class ElasticsearchExpect(Strict):
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

    def target(self) -> str:
        return ", ".join(public_url(host) for host in self.hosts)

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
            check_index_name(self.index)
            if self.freshness_poll <= 0:
                raise ValueError("freshness_poll must be greater than 0")
        return self



CANARY_DELETE_TIMEOUT = 5.0
"""Seconds the delete of a canary may take after its run ended (also after a timeout or cancellation)."""
MAX_LEFTOVER_CANARIES = 100
"""Canaries whose delete failed, remembered for a later run (bounded: an outage must not grow memory)."""
CANARY_DELETE_WAIT = 0.25
"""Seconds a run waits for its delete before returning; a slower delete goes on in the background, so the
run still ends within the agent's hard deadline (timeout + 0.5s) and reports its own result."""

HELP = {
    "probe_elasticsearch_cluster_status": "1 for the cluster's current health colour, 0 for the others.",
    "probe_elasticsearch_nodes": "Nodes in the cluster (last cluster_health run).",
    "probe_elasticsearch_data_nodes": "Data nodes in the cluster (last cluster_health run).",
    "probe_elasticsearch_unassigned_shards": "Unassigned shards (last cluster_health run).",
    "probe_elasticsearch_active_shards_ratio": "Share of active shards, 0..1 (last cluster_health run).",
    "probe_search_hits": "Hits (total) of the last search.",
    "probe_elasticsearch_took_seconds": "Elasticsearch-reported `took` of the last search.",
    "probe_index_freshness_seconds":
        "Seconds from indexing a canary document until search returned it (on timeout: the time waited).",
}


def sample(name: str, value: float, labels: tuple[tuple[str, str], ...] = ()) -> Sample:
    return Sample(name, float(value), labels, help=HELP[name])


# ---- the prober ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """What one run learned so far; a failure keeps the samples and status gathered before it."""

    status_code: int = 0
    path: str = ""
    samples: list[Sample] = field(default_factory=list)
    degraded: bool = False
    message: str = ""
    canary: tuple[str, str] | None = None
    written_at: float = 0.0
    acknowledged: bool = False


class ElasticsearchProber(Prober):
    summary = (
        "the cluster behind the API through the official client: `cluster_health`, a `search`, or index "
        "`freshness`"
    )
    config_model = ElasticsearchProbeConfig
    speaks_http = False
    config: ElasticsearchProbeConfig

    def __init__(self, config: ElasticsearchProbeConfig) -> None:
        super().__init__(config)
        self._client: AsyncElasticsearch | None = None
        self._deletes: set[asyncio.Task[None]] = set()
        self._leftovers: set[tuple[str, str]] = set()
        """Canaries whose delete failed (Elasticsearch away); retried after the next run."""
        self._checks: dict[str, Callable[[AsyncElasticsearch, _Run], Any]] = {
            "cluster_health": self._cluster_health,
            "search": self._search,
            "freshness": self._freshness,
        }

    def _es(self) -> AsyncElasticsearch:
        if self._client is None:
            self._client = make_client(self.config, request_timeout=self.config.timeout)
        return self._client

    def _target(self, path: str) -> str:
        return public_url(self.config.hosts[0]) + path

    async def run(self, ctx: RunContext) -> ProbeResult:
        cfg = self.config
        started_at = time.time()
        start = time.perf_counter()
        state = _Run()
        try:
            client = self._es()
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            return self.failure("tls", f"cannot set up TLS: {exc}",
                                       time.perf_counter() - start, started_at=started_at,
                                       target=self._target(""))
        failure: Failure | None = None
        try:
            async with asyncio.timeout(ctx.timeout):
                await self._checks[cfg.check](client, state)
        except TimeoutError:
            failure = Failure("timeout", f"no answer within {ctx.timeout:g}s")
            if state.acknowledged:
                waited = time.perf_counter() - state.written_at
                failure.message = f"canary not searchable after {waited:.2f}s"
                state.samples.append(sample("probe_index_freshness_seconds", waited))
        except ProbeFailed as exc:
            failure = Failure(exc.reason, exc.message, state.status_code)
        except (ApiError, TransportError) as exc:
            failure = describe(exc)
        finally:
            if state.canary is not None:
                await self._remove_canaries(client, state.canary)
        duration = time.perf_counter() - start
        if failure is not None:
            return self.failure(failure.reason, failure.message, duration,
                                       started_at=started_at,
                                       status_code=failure.status_code or state.status_code,
                                       samples=state.samples, target=self._target(state.path))
        return ProbeResult(probe=cfg.name, type=cfg.type, success=True, duration_seconds=duration, phases=None,
                           message=state.message, degraded=state.degraded, started_at=started_at,
                           status_code=state.status_code, samples=state.samples,
                           target=self._target(state.path))

    async def aclose(self) -> None:
        if self._deletes:
            await asyncio.wait(self._deletes, timeout=CANARY_DELETE_TIMEOUT)
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # ---- cluster_health ------------------------------------------------------------------------------

    async def _cluster_health(self, client: AsyncElasticsearch, state: _Run) -> None:
        state.path = "/_cluster/health"
        resp = await client.cluster.health()
        state.status_code = resp.meta.status
        body = resp.body
        color = body.get("status") if isinstance(body, dict) else None
        if color not in CLUSTER_COLORS:
            raise ProbeFailed("protocol", f"unexpected response: cluster health has no known status ({color!r})")
        state.samples += [
            sample("probe_elasticsearch_cluster_status", 1.0 if c == color else 0.0, (("color", c),))
            for c in CLUSTER_COLORS
        ]
        for name, key in (("probe_elasticsearch_nodes", "number_of_nodes"),
                          ("probe_elasticsearch_data_nodes", "number_of_data_nodes"),
                          ("probe_elasticsearch_unassigned_shards", "unassigned_shards")):
            if _is_number(body.get(key)):
                state.samples.append(sample(name, body[key]))
        if _is_number(body.get("active_shards_percent_as_number")):
            state.samples.append(sample("probe_elasticsearch_active_shards_ratio",
                                        body["active_shards_percent_as_number"] / 100))
        facts = (f"cluster {color}, {body.get('number_of_nodes', '?')} nodes, "
                 f"{body.get('unassigned_shards', '?')} unassigned shards")
        expected = self.config.expect.cluster_status
        if color not in expected:
            # The request worked (HTTP 200); the cluster is not in an accepted state: an assertion failed.
            raise ProbeFailed("assertion", f"{facts}; expected {' or '.join(expected)}")
        state.degraded = color != "green"
        state.message = facts

    # ---- search --------------------------------------------------------------------------------------

    async def _search(self, client: AsyncElasticsearch, state: _Run) -> None:
        cfg = self.config
        state.path = f"/{cfg.index or '_all'}/_search"
        args: dict[str, Any] = {}
        if cfg.index is not None:
            args["index"] = cfg.index
        if cfg.query is not None:
            args["query"] = cfg.query
        elif cfg.q is not None:
            args["q"] = cfg.q
        resp = await client.search(**args)
        state.status_code = resp.meta.status
        body = resp.body
        total = _total_hits(body)
        took = body.get("took") if isinstance(body, dict) else None
        if total is None or not _is_number(took):
            raise ProbeFailed("protocol", "unexpected response: a search response without hits.total or took")
        state.samples += [sample("probe_search_hits", total),
                          sample("probe_elasticsearch_took_seconds", took / 1000)]
        expect = cfg.expect
        if expect.min_hits is not None and total < expect.min_hits:
            raise ProbeFailed("assertion", f"{total} hits, expected at least {expect.min_hits}")
        if expect.max_took_ms is not None and took > expect.max_took_ms:
            raise ProbeFailed("latency",
                               f"Elasticsearch took {took:g}ms, max_took_ms is {expect.max_took_ms:g}")
        shards = body.get("_shards") or {}
        if body.get("timed_out") or shards.get("failed"):
            state.degraded = True
            state.message = (f"partial results: {shards.get('failed', 0)} of {shards.get('total', '?')} "
                             f"shards failed{', timed out' if body.get('timed_out') else ''}; ")
        state.message += f"{total} hits in {took:g}ms"

    # ---- freshness -----------------------------------------------------------------------------------

    async def _freshness(self, client: AsyncElasticsearch, state: _Run) -> None:
        cfg = self.config
        assert cfg.index is not None, "validated at load"
        canary = f"{cfg.name}-{uuid.uuid4().hex}"
        state.path = f"/{cfg.index}/_doc/{canary}"
        state.canary = (cfg.index, canary)
        document = {
            "@timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "probe": {"name": cfg.name, "canary": True},
            "message": "probe-agent freshness canary; deleted at the end of its run",
        }
        state.written_at = time.perf_counter()
        try:
            resp = await client.index(index=cfg.index, id=canary, document=document, op_type="create")
        except (ApiError, TransportConnectionError) as exc:
            if _not_written(exc):
                state.canary = None  # nothing to delete: Elasticsearch never took the document
            raise
        state.status_code = resp.meta.status
        state.acknowledged = True
        state.path = f"/{cfg.index}/_search"
        # A search, not a GET: GET by id is real-time and would not show when the document is searchable.
        ids_query = {"ids": {"values": [canary]}}
        while True:
            found = await client.search(index=cfg.index, query=ids_query, size=0)
            total = _total_hits(found.body)
            if total is None:
                raise ProbeFailed("protocol", "unexpected response: a search response without hits.total")
            if total > 0:
                break
            await asyncio.sleep(cfg.freshness_poll)
        freshness = time.perf_counter() - state.written_at
        state.samples.append(sample("probe_index_freshness_seconds", freshness))
        state.message = f"canary searchable after {freshness:.3f}s"
        limit = cfg.expect.max_freshness
        if limit is not None and freshness > limit:
            raise ProbeFailed("latency",
                               f"canary searchable after {freshness:.3f}s, max_freshness is {limit:g}s")

    async def _remove_canaries(self, client: AsyncElasticsearch, canary: tuple[str, str]) -> None:
        """Delete this run's canary and any left behind before, even while this run is being cancelled."""
        targets = [canary, *self._leftovers]
        self._leftovers.clear()
        task = asyncio.create_task(self._delete(client, targets))
        self._deletes.add(task)
        task.add_done_callback(self._deletes.discard)
        # asyncio.wait never cancels the task: if this run is cancelled or the wait ends first, the delete
        # still finishes in the background (aclose waits for it).
        await asyncio.wait([task], timeout=CANARY_DELETE_WAIT)

    async def _delete(self, client: AsyncElasticsearch, targets: list[tuple[str, str]]) -> None:
        quick = client.options(ignore_status=404, request_timeout=CANARY_DELETE_TIMEOUT)
        for position, (index, doc_id) in enumerate(targets):
            try:
                async with asyncio.timeout(CANARY_DELETE_TIMEOUT):
                    await quick.delete(index=index, id=doc_id)
            except (ApiError, TransportError, TimeoutError) as exc:
                # Elasticsearch is away or refusing: the rest would fail the same way; keep them all.
                left = targets[position:]
                self._leftovers.update(left[: max(0, MAX_LEFTOVER_CANARIES - len(self._leftovers))])
                log.warning("probe %s: could not delete %d canary document(s), e.g. %s/%s (%s); "
                            "retrying after the next run", self.config.name, len(left), index, doc_id,
                            describe(exc).message)
                return


def _not_written(exc: ApiError | TransportConnectionError) -> bool:
    """Elasticsearch certainly did not store the document: it refused it (4xx), or no connection was made."""
    if isinstance(exc, ApiError):
        return 400 <= exc.meta.status < 500
    # The transport raises its own error `from None`; the aiohttp error it replaced is still its context.
    return isinstance(exc.__context__, aiohttp.ClientConnectorError)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _total_hits(body: Any) -> int | None:
    hits = body.get("hits") if isinstance(body, dict) else None
    total = hits.get("total") if isinstance(hits, dict) else None
    if isinstance(total, dict):  # {"value": N, "relation": "eq" | "gte"}
        total = total.get("value")
    return int(total) if _is_number(total) else None
