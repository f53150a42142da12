"""The Elasticsearch results sink: one Heartbeat-like ECS document per probe run, bulk-written
into a daily index `<index>-YYYY.MM.DD` (UTC, by the run's start).

`write` only appends to a bounded in-memory queue; one background task sends batches with the official
bulk helper. What Elasticsearch does decides what happens to a result:
- acknowledged: gone from the queue;
- an item rejected with 429 or 5xx: retried with exponential backoff up to `max_retries`, then dropped;
- an item rejected otherwise (a mapping error): dropped at once;
- no answer, or the whole request answered 429/5xx (an outage): the batch stays queued and is retried
  with backoff for as long as it takes; meanwhile new results queue up to `queue_size` and beyond it
  they are dropped. Every drop is counted in `probe_agent_sink_dropped_total{sink="elasticsearch"}`.
Documents carry their own `_id`, so a batch resent after a lost answer overwrites instead of duplicating.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch.helpers import async_streaming_bulk
from pydantic import Field, field_validator, model_validator

from probes import __version__
from probes.clients.elasticsearch import ElasticsearchConnection, check_index_name, describe, make_client
from probes.durations import Duration
from probes.identity import AgentIdentity
from probes.result import ProbeResult
from probes.sinks.base import Sink, SinkMetrics

log = logging.getLogger(__name__)


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

    _index = field_validator("index")(check_index_name)

    @model_validator(mode="after")
    def _positive(self) -> ElasticsearchSinkConfig:
        for key in ("flush_interval", "timeout", "retry_backoff", "max_backoff"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be greater than 0")
        if self.batch_size > self.queue_size:
            raise ValueError(f"batch_size ({self.batch_size}) is larger than queue_size ({self.queue_size})")
        return self

CLOSE_TIMEOUT = 2.0
"""Seconds `aclose` spends on a last flush; what is still queued after it is counted as dropped."""
ECS_VERSION = "8.11.0"


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def index_for(prefix: str, started_at: float) -> str:
    return f"{prefix}-{datetime.fromtimestamp(started_at, UTC):%Y.%m.%d}"


def to_document(result: ProbeResult, identity: AgentIdentity) -> dict[str, Any]:
    """A result as an ECS document; field names follow Heartbeat so Kibana views carry over."""
    timestamp = datetime.fromtimestamp(result.started_at, UTC).isoformat(timespec="milliseconds")
    doc: dict[str, Any] = {
        "@timestamp": timestamp.replace("+00:00", "Z"),
        "ecs": {"version": ECS_VERSION},
        "monitor": {
            "id": result.probe,
            "name": result.probe,
            "type": result.type,
            "status": "up" if result.success else "down",
            "duration": {"us": round(result.duration_seconds * 1_000_000)},
        },
        "observer": {"name": identity.agent, "geo": {"name": identity.region}},
        "agent": {"type": "probe-agent", "version": __version__},
        "probe": {"degraded": result.degraded, "attempts": result.attempts},
    }
    if result.status_code:
        doc["http"] = {"response": {"status_code": result.status_code}}
    if not result.success:
        doc["error"] = {"type": result.reason or "error", "message": result.message}
    elif result.message:
        doc["message"] = result.message
    if result.target:
        doc["url"] = {"full": result.target}
    # Labelled samples (one series per colour, phase...) would explode the mapping; plain ones are kept.
    plain = {s.name: s.value for s in result.samples if not s.labels}
    if plain:
        doc["probe"]["samples"] = plain
    if result.details:
        doc["probe"]["details"] = result.details
    return doc


def index_template(prefix: str) -> dict[str, Any]:
    keyword = {"type": "keyword"}
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1},
            "mappings": {
                "dynamic_templates": [
                    {"probe_samples": {"path_match": "probe.samples.*", "mapping": {"type": "double"}}},
                ],
                "properties": {
                    "@timestamp": {"type": "date"},
                    "ecs": {"properties": {"version": keyword}},
                    "monitor": {"properties": {
                        "id": keyword, "name": keyword, "type": keyword, "status": keyword,
                        "duration": {"properties": {"us": {"type": "long"}}},
                    }},
                    "observer": {"properties": {"name": keyword, "geo": {"properties": {"name": keyword}}}},
                    "agent": {"properties": {"type": keyword, "version": keyword}},
                    "http": {"properties": {"response": {"properties": {"status_code": {"type": "long"}}}}},
                    "error": {"properties": {"type": keyword, "message": {"type": "text"}}},
                    "message": {"type": "text"},
                    "url": {"properties": {"full": keyword}},
                    "probe": {"properties": {"degraded": {"type": "boolean"}, "attempts": {"type": "integer"},
                                             "samples": {"type": "object"},
                                             "details": {"properties": {
                                                 "fingerprint": {"type": "long"}, "top_ids": keyword,
                                                 "total": {"type": "long"}, "query": keyword,
                                                 "steps": {"type": "object"}}}}},
                },
            },
        },
        "_meta": {"managed_by": "probe-agent"},
    }


@dataclass(slots=True)
class _Pending:
    index: str
    doc_id: str
    doc: dict[str, Any]
    attempts: int = 0


class _Outage(Exception):
    """Elasticsearch did not take the request at all; the batch waits in the queue."""


class ElasticsearchSink(Sink):
    name = "elasticsearch"
    config_model = ElasticsearchSinkConfig
    config: ElasticsearchSinkConfig

    def __init__(self, config: ElasticsearchSinkConfig, identity: AgentIdentity, metrics: SinkMetrics) -> None:
        super().__init__(config, identity, metrics)
        self._queue: deque[_Pending] = deque()
        self._inflight: list[_Pending] = []
        self._client: AsyncElasticsearch | None = None
        self._broken = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._backing_off = False
        self._outage_pause = 0.0
        self._down_since: float | None = None
        self._template_done = not config.create_template
        self._reported: set[str] = set()

    # ---- the scheduler's side: never blocks ---------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Results not yet acknowledged by Elasticsearch (waiting or in a request)."""
        return len(self._queue) + len(self._inflight)

    def write(self, result: ProbeResult) -> None:
        if self._broken or self._closing or self.queued >= self.config.queue_size:
            self.metrics.dropped(self.name, 1)
            return
        self._queue.append(_Pending(index_for(self.config.index, result.started_at), uuid.uuid4().hex,
                                    to_document(result, self.identity)))
        self.metrics.queue_size(self.name, self.queued)
        if len(self._queue) >= self.config.batch_size and not self._backing_off and self._wake is not None:
            self._wake.set()

    def forget(self, probe: str) -> None:
        """Nothing to forget: results of a removed probe already queued are real runs and still written."""

    # ---- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._client = make_client(self.config, request_timeout=self.config.timeout)
        except (OSError, ValueError) as exc:
            self._broken = True
            log.error("elasticsearch sink: cannot set up TLS (%s); results will be dropped", exc)
            self.metrics.dropped(self.name, self.queued)
            self._queue.clear()
            return
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="elasticsearch-sink")

    async def aclose(self) -> None:
        self._closing = True
        if self._task is not None and self._wake is not None:
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_TIMEOUT)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self.queued:
            log.warning("elasticsearch sink: %d results not written at shutdown", self.queued)
            self.metrics.dropped(self.name, self.queued)
            self._queue.clear()
            self._inflight = []
        self.metrics.queue_size(self.name, 0)
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # ---- the background task ------------------------------------------------------------------------------

    async def _loop(self) -> None:
        assert self._wake is not None
        pause = self.config.flush_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()
            self._wake.clear()
            self._backing_off = False
            try:
                pause = await self._drain()
            except Exception:  # a bug must not end the sink silently; keep going after a pause
                log.exception("elasticsearch sink: unexpected error; retrying")
                self._requeue(self._inflight)
                self._inflight = []
                pause = self.config.max_backoff
            self.metrics.queue_size(self.name, self.queued)
            if self._closing:
                return
            self._backing_off = pause != self.config.flush_interval

    async def _drain(self) -> float:
        """Send what is queued; returns how long to wait before the next round."""
        try:
            await self._ensure_template()
        except _Outage as exc:
            return self._went_down(str(exc))
        while self._queue:
            count = min(self.config.batch_size, len(self._queue))
            self._inflight = [self._queue.popleft() for _ in range(count)]
            again, outage = await self._send(self._inflight)
            self._inflight = []
            self._requeue(again)
            self.metrics.queue_size(self.name, self.queued)
            if outage is not None:
                return self._went_down(outage)
            self._recovered()
            if again:
                attempts = max(p.attempts for p in again)
                return min(self.config.max_backoff, self.config.retry_backoff * 2 ** (attempts - 1))
        return self.config.flush_interval

    def _requeue(self, pending: list[_Pending]) -> None:
        # Back to the front, in order: the queue bound already counted them while they were in flight.
        self._queue.extendleft(reversed(pending))

    async def _send(self, batch: list[_Pending]) -> tuple[list[_Pending], str | None]:
        """One bulk request. Returns what to send again, and why if Elasticsearch took nothing (an outage)."""
        assert self._client is not None
        answers: dict[str, tuple[bool, dict[str, Any]]] = {}
        outage: str | None = None
        actions = [{"_op_type": "index", "_index": p.index, "_id": p.doc_id, "_source": p.doc} for p in batch]
        try:
            async with asyncio.timeout(self.config.timeout + 1):
                async for ok, item in async_streaming_bulk(
                        self._client, actions, chunk_size=len(actions), raise_on_error=False,
                        raise_on_exception=False, max_retries=0):
                    info = next(iter(item.values()))
                    answers[str(info.get("_id"))] = (ok, info)
        except (TransportError, ApiError) as exc:
            outage = describe(exc).message
        except TimeoutError:
            outage = f"no answer to a bulk request within {self.config.timeout:g}s"
        again: list[_Pending] = []
        for pending in batch:
            ok, info = answers.get(pending.doc_id, (False, {}))
            if ok:
                continue
            status = int(info.get("status") or 0)
            if "exception" in info:  # the whole request was refused: raise_on_exception=False reports it per item
                failure = describe(info["exception"])
                if _retryable(status):
                    outage = failure.message
                    again.append(pending)
                else:
                    self._drop([pending], failure.message)
            elif not info:  # no answer for this one: the request failed before Elasticsearch took it
                again.append(pending)
            else:
                pending.attempts += 1
                if _retryable(status) and pending.attempts <= self.config.max_retries:
                    again.append(pending)
                else:
                    self._drop([pending], _item_error(status, info.get("error")))
        return again, outage

    def _drop(self, pending: list[_Pending], why: str) -> None:
        self.metrics.dropped(self.name, len(pending))
        key = why.split(":", 1)[0]
        if key not in self._reported:  # once per kind of error, not once per document
            self._reported.add(key)
            log.warning("elasticsearch sink: Elasticsearch refused %d result(s) (%s); dropped", len(pending), why)

    async def _ensure_template(self) -> None:
        if self._template_done:
            return
        assert self._client is not None
        name = self.config.index
        try:
            await self._client.indices.put_index_template(name=name, create=True, **index_template(name))
        except ApiError as exc:
            failure = describe(exc)
            if _retryable(exc.meta.status):
                raise _Outage(failure.message) from None
            if exc.meta.status == 400 and "already exists" in str(exc.body):
                pass  # an operator's template (or ours from an earlier start) stays as it is
            elif exc.meta.status == 403:
                log.warning("elasticsearch sink: not allowed to create index template %s (%s); "
                            "writing without it", name, failure.message)
            else:
                log.warning("elasticsearch sink: cannot create index template %s (%s); writing without it",
                            name, failure.message)
        except TransportError as exc:
            raise _Outage(describe(exc).message) from None
        self._template_done = True

    def _went_down(self, why: str) -> float:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("elasticsearch sink: cannot write to Elasticsearch (%s); keeping up to %d results "
                        "and retrying", why, self.config.queue_size)
            self._outage_pause = self.config.retry_backoff
        else:
            self._outage_pause = min(self.config.max_backoff, self._outage_pause * 2)
        return self._outage_pause

    def _recovered(self) -> None:
        if self._down_since is not None:
            log.info("elasticsearch sink: writing again after %.0fs", time.monotonic() - self._down_since)
            self._down_since = None


def _item_error(status: int, error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')} (HTTP {status})"
    return f"HTTP {status}: {error}"
