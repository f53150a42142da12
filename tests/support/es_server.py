"""A fake Elasticsearch for tests: a real HTTP server on 127.0.0.1 that speaks the subset of the REST API
the probe type and the results sink use, and that a test can make slow, failing, partly rejecting,
gone (no longer listening) and back again on the same port.

It runs an aiohttp server in a thread with its own event loop, so a test can drive it from plain code
while the code under test talks to it from another event loop or another process. Only what the official
client needs is imitated: every response carries `X-Elastic-Product: Elasticsearch`, errors have the
`{"error": {"type", "reason", "root_cause"}, "status"}` shape, and documents become searchable after
`visibility_delay` seconds (like a refresh interval), or never when it is None.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import itertools
import json
import math
import re
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")
Json = dict[str, Any]

VERSION = "8.19.0"
_WORD = re.compile(r"\w+")


@dataclass
class StoredDoc:
    source: Json
    visible_at: float
    version: int = 1
    seq_no: int = 0


@dataclass
class _Failure:
    status: int
    path: re.Pattern[str] | None
    method: str | None
    remaining: int | None

    def applies(self, method: str, path: str) -> bool:
        return ((self.remaining is None or self.remaining > 0)
                and (self.method is None or self.method == method)
                and (self.path is None or self.path.search(path) is not None))


@dataclass
class _BulkRejection:
    status: int
    match: Callable[[str, Json], bool]
    remaining: int | None
    """Items still to reject (None: every matching item, forever)."""


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class EsError(Exception):
    def __init__(self, status: int, type_: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type_
        self.reason = reason


def error_body(status: int, type_: str, reason: str) -> Json:
    cause = {"type": type_, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


_ERROR_TYPES = {
    400: "illegal_argument_exception",
    401: "security_exception",
    403: "security_exception",
    404: "index_not_found_exception",
    409: "version_conflict_engine_exception",
    429: "es_rejected_execution_exception",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "unavailable_shards_exception",
    504: "gateway_timeout",
}


class FakeElasticsearch:
    """Use as a context manager: `with FakeElasticsearch() as es: ... es.url ...`."""

    def __init__(self, *, visibility_delay: float | None = 0.0, cluster_name: str = "fake-es",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.cluster_name = cluster_name
        self.ssl_context = ssl_context
        """Serve HTTPS with this context (certificates from trustme in the tests)."""
        self.visibility_delay = visibility_delay
        """Seconds until an indexed document is searchable; None: never (refresh does not help either)."""
        self.delay = 0.0
        """Seconds every request waits before it is answered (slow or hanging Elasticsearch)."""
        self.product_header = True
        """Send X-Elastic-Product; without it the official client refuses to talk to the server."""
        self.took_ms: int | None = None
        """Reported `took` of searches; None: the real handling time."""
        self.health: Json = {
            "status": "green",
            "number_of_nodes": 3,
            "number_of_data_nodes": 3,
            "active_primary_shards": 10,
            "active_shards": 20,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "unassigned_primary_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        }
        self.indices: dict[str, dict[str, StoredDoc]] = {}
        self.templates: dict[str, Json] = {}
        self.requests: list[RequestRecord] = []
        self._failures: list[_Failure] = []
        self._rejections: list[_BulkRejection] = []
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeElasticsearch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-es", daemon=True)
        self._thread.start()
        self.come_back()

    def close(self) -> None:
        if self._loop is None:
            return
        self.go_away()
        self._call(self._cancel_leftovers())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(5)
        self._loop.close()
        self._loop = None

    def go_away(self) -> None:
        """Stop listening and drop open connections; the port stays reserved for `come_back`."""
        self._call(self._stop_listening())

    def come_back(self) -> None:
        """Listen again (on the same port after `go_away`)."""
        self._call(self._listen())

    @property
    def listening(self) -> bool:
        return self._runner is not None

    def _call(self, coro: Awaitable[T]) -> T:
        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=15)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True, ssl_context=self.ssl_context)
        await site.start()
        server = getattr(site, "_server", None)
        if self.port == 0 and server is not None:
            self.port = server.sockets[0].getsockname()[1]
        self._runner = runner

    async def _stop_listening(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _cancel_leftovers(self) -> None:
        # Handlers still sleeping in a `delay` outlive the listener; end them before the loop closes.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- what a test controls and inspects ------------------------------------------------------------

    def fail(self, status: int, *, path: str | None = None, method: str | None = None,
             times: int | None = None) -> None:
        """Answer requests (matching the regex `path` and `method`) with `status`, `times` times or always."""
        with self._lock:
            self._failures.append(_Failure(status, re.compile(path) if path else None, method, times))

    def reject_bulk(self, status: int, match: Callable[[str, Json], bool] | None = None,
                    times: int | None = None) -> None:
        """Reject bulk items (index name, source) -> bool with `status`, `times` items or always."""
        with self._lock:
            self._rejections.append(_BulkRejection(status, match or (lambda _i, _s: True), times))

    def heal(self) -> None:
        """Forget every failure, rejection and delay."""
        with self._lock:
            self._failures.clear()
            self._rejections.clear()
            self.delay = 0.0

    def docs(self, pattern: str = "*") -> list[Json]:
        """Sources of every stored document in indices matching the pattern (searchable or not)."""
        with self._lock:
            return [d.source for name in self._resolve(pattern, missing_ok=True)
                    for d in self.indices[name].values()]

    def doc_ids(self, index: str) -> list[str]:
        with self._lock:
            return list(self.indices.get(index, {}))

    def count(self, method: str, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(1 for r in self.requests if r.method == method and pattern.search(r.path))

    # ---- HTTP ------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        with self._lock:
            self.requests.append(RequestRecord(request.method, path, dict(request.query),
                                               {k.lower(): v for k, v in request.headers.items()}))
            headers = _HEADERS if self.product_header else {}
            delay = self.delay
        if delay > 0:
            await asyncio.sleep(delay)
        status = self._injected_failure(request.method, path)
        if status is not None:
            return _json(error_body(status, _ERROR_TYPES.get(status, "exception"), "injected by the test"),
                         status, headers)
        try:
            body = await request.read()
            with self._lock:
                result, code = self._route(request.method, path, dict(request.query), body)
        except EsError as exc:
            return _json(error_body(exc.status, exc.type, exc.reason), exc.status, headers)
        if request.method == "HEAD":
            return web.Response(status=code, headers=headers)
        return _json(result, code, headers)

    def _injected_failure(self, method: str, path: str) -> int | None:
        with self._lock:
            for failure in self._failures:
                if failure.applies(method, path):
                    if failure.remaining is not None:
                        failure.remaining -= 1
                    return failure.status
        return None

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[Any, int]:
        parts = [p for p in path.split("/") if p]
        if not parts:
            if method in ("GET", "HEAD"):
                return self._info(), 200
        elif parts[0] == "_cluster" and parts[1:2] == ["health"] and method == "GET":
            return {"cluster_name": self.cluster_name, "timed_out": False, **self.health}, 200
        elif parts[-1] == "_search" and len(parts) <= 2 and method in ("GET", "POST"):
            return self._search(parts[0] if len(parts) == 2 else "*", query, _json_body(body)), 200
        elif parts[-1] == "_bulk" and len(parts) <= 2 and method in ("POST", "PUT"):
            return self._bulk(parts[0] if len(parts) == 2 else None, query, body), 200
        elif parts[-1] == "_refresh" and len(parts) <= 2 and method in ("GET", "POST"):
            return self._refresh(parts[0] if len(parts) == 2 else "*"), 200
        elif parts[0] == "_index_template" and len(parts) == 2:
            return self._template(method, parts[1], query, body)
        elif len(parts) >= 2 and parts[1] in ("_doc", "_create") and not parts[0].startswith("_"):
            return self._doc(method, parts[0], parts[1], parts[2] if len(parts) > 2 else None, query, body)
        raise EsError(400, "illegal_argument_exception",
                      f"no handler found for uri [{path}] and method [{method}]")

    def _info(self) -> Json:
        return {
            "name": "fake-node-1",
            "cluster_name": self.cluster_name,
            "cluster_uuid": "fake-cluster-uuid",
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "build_type": "docker",
                "build_hash": "0000000",
                "build_date": "2025-01-01T00:00:00.000Z",
                "build_snapshot": False,
                "lucene_version": "9.12.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }

    # ---- documents -------------------------------------------------------------------------------

    def _visible_at(self, refresh: str | None) -> float:
        if self.visibility_delay is None:
            return math.inf
        if refresh in ("", "true", "wait_for"):
            return 0.0
        return time.monotonic() + self.visibility_delay

    def _store(self, index: str, doc_id: str, source: Json, *, create: bool, refresh: str | None) -> Json:
        docs = self.indices.setdefault(index, {})
        old = docs.get(doc_id)
        if old is not None and create:
            raise EsError(409, "version_conflict_engine_exception",
                          f"[{doc_id}]: version conflict, document already exists")
        version = old.version + 1 if old else 1
        seq = next(self._seq)
        docs[doc_id] = StoredDoc(source, self._visible_at(refresh), version, seq)
        return {"_index": index, "_id": doc_id, "_version": version,
                "result": "updated" if old else "created",
                "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": seq, "_primary_term": 1,
                "status": 200 if old else 201}

    def _doc(self, method: str, index: str, kind: str, doc_id: str | None, query: dict[str, str],
             body: bytes) -> tuple[Json, int]:
        refresh = query.get("refresh")
        if method in ("PUT", "POST") and (doc_id is not None or kind == "_doc"):
            create = kind == "_create" or query.get("op_type") == "create"
            out = self._store(index, doc_id or uuid.uuid4().hex, _json_body(body), create=create,
                              refresh=refresh)
            return out, out.pop("status")
        if doc_id is None:
            raise EsError(400, "illegal_argument_exception", "missing document id")
        stored = self.indices.get(index, {}).get(doc_id)
        if method in ("GET", "HEAD"):
            if stored is None:
                return {"_index": index, "_id": doc_id, "found": False}, 404
            return {"_index": index, "_id": doc_id, "_version": stored.version, "_seq_no": stored.seq_no,
                    "_primary_term": 1, "found": True, "_source": stored.source}, 200
        if method == "DELETE":
            if stored is None:
                return {"_index": index, "_id": doc_id, "_version": 1, "result": "not_found",
                        "_shards": {"total": 2, "successful": 1, "failed": 0}}, 404
            del self.indices[index][doc_id]
            return {"_index": index, "_id": doc_id, "_version": stored.version + 1, "result": "deleted",
                    "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": next(self._seq),
                    "_primary_term": 1}, 200
        raise EsError(405, "illegal_argument_exception", f"method [{method}] not allowed")

    def _refresh(self, pattern: str) -> Json:
        names = self._resolve(pattern, missing_ok=pattern == "*")
        if self.visibility_delay is not None:
            for name in names:
                for doc in self.indices[name].values():
                    doc.visible_at = 0.0
        return {"_shards": {"total": 2 * len(names), "successful": len(names), "failed": 0}}

    def _template(self, method: str, name: str, query: dict[str, str], body: bytes) -> tuple[Json, int]:
        if method in ("PUT", "POST"):
            if query.get("create") == "true" and name in self.templates:
                raise EsError(400, "illegal_argument_exception", f"index template [{name}] already exists")
            self.templates[name] = _json_body(body)
            return {"acknowledged": True}, 200
        if method == "GET":
            if name not in self.templates:
                raise EsError(404, "resource_not_found_exception",
                              f"index template matching [{name}] not found")
            return {"index_templates": [{"name": name, "index_template": self.templates[name]}]}, 200
        if method == "DELETE":
            self.templates.pop(name, None)
            return {"acknowledged": True}, 200
        raise EsError(405, "illegal_argument_exception", f"method [{method}] not allowed")

    # ---- bulk ------------------------------------------------------------------------------------

    def _rejected(self, index: str, source: Json) -> int | None:
        for rule in self._rejections:
            if (rule.remaining is None or rule.remaining > 0) and rule.match(index, source):
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule.status
        return None

    def _bulk(self, default_index: str | None, query: dict[str, str], body: bytes) -> Json:
        lines = [line for line in body.decode("utf-8").split("\n") if line.strip()]
        started = time.monotonic()
        items: list[Json] = []
        i = 0
        while i < len(lines):
            action = json.loads(lines[i])
            (op, meta), = action.items()
            i += 1
            index = meta.get("_index", default_index)
            doc_id = meta.get("_id") or uuid.uuid4().hex
            source: Json = {}
            if op in ("index", "create", "update"):
                source = json.loads(lines[i])
                i += 1
            if op == "update":
                source = source.get("doc", {})
            items.append({op: self._bulk_item(op, index, doc_id, source, query.get("refresh"))})
        errors = any("error" in next(iter(item.values())) for item in items)
        return {"took": int((time.monotonic() - started) * 1000), "errors": errors, "items": items}

    def _bulk_item(self, op: str, index: str | None, doc_id: str, source: Json, refresh: str | None) -> Json:
        if index is None:
            return _item_error(None, doc_id, 400, "action_request_validation_exception", "index is missing")
        status = self._rejected(index, source)
        if status is not None:
            return _item_error(index, doc_id, status, _ERROR_TYPES.get(status, "exception"),
                               "rejected by the test")
        try:
            if op == "delete":
                stored = self.indices.get(index, {}).pop(doc_id, None)
                return {"_index": index, "_id": doc_id, "result": "deleted" if stored else "not_found",
                        "status": 200 if stored else 404}
            return self._store(index, doc_id, source, create=op == "create", refresh=refresh)
        except EsError as exc:
            return _item_error(index, doc_id, exc.status, exc.type, exc.reason)

    # ---- search ----------------------------------------------------------------------------------

    def _resolve(self, pattern: str, *, missing_ok: bool) -> list[str]:
        names: list[str] = []
        for part in pattern.split(","):
            if part in ("_all", "*") or "*" in part:
                names += [n for n in self.indices if fnmatch.fnmatchcase(n, "*" if part == "_all" else part)]
            elif part in self.indices:
                names.append(part)
            elif not missing_ok:
                raise EsError(404, "index_not_found_exception", f"no such index [{part}]")
        return names

    def _search(self, pattern: str, query: dict[str, str], body: Json) -> Json:
        started = time.monotonic()
        names = self._resolve(pattern, missing_ok=False)
        if "q" in query:
            clause: Json = {"query_string": {"query": query["q"]}}
        else:
            clause = body.get("query") or {"match_all": {}}
        size = int(query.get("size", body.get("size", 10)))
        offset = int(query.get("from", body.get("from", 0)))
        now = time.monotonic()
        hits = [
            {"_index": name, "_id": doc_id, "_score": 1.0, "_source": doc.source}
            for name in names
            for doc_id, doc in sorted(self.indices[name].items(), key=lambda kv: kv[1].seq_no)
            if doc.visible_at <= now and _matches(clause, doc_id, doc.source)
        ]
        took = self.took_ms if self.took_ms is not None else int((time.monotonic() - started) * 1000)
        return {
            "took": took,
            "timed_out": False,
            "_shards": {"total": len(names), "successful": len(names), "skipped": 0, "failed": 0},
            "hits": {"total": {"value": len(hits), "relation": "eq"},
                     "max_score": 1.0 if hits else None,
                     "hits": hits[offset:offset + size]},
        }


# ---- query subset --------------------------------------------------------------------------------------


def _field(source: Json, path: str) -> Any:
    if path in source:
        return source[path]
    value: Any = source
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _words(value: Any) -> set[str]:
    return {w.lower() for v in _values(value) for w in _WORD.findall(str(v))}


def _all_strings(source: Any) -> Iterator[str]:
    if isinstance(source, dict):
        for value in source.values():
            yield from _all_strings(value)
    elif isinstance(source, list):
        for value in source:
            yield from _all_strings(value)
    elif isinstance(source, str):
        yield source


def _single(clause: Json, kind: str) -> tuple[str, Any]:
    if not isinstance(clause, dict) or len(clause) != 1:
        raise EsError(400, "parsing_exception", f"[{kind}] query malformed, expected one field")
    return next(iter(clause.items()))


def _matches(clause: Json, doc_id: str, source: Json) -> bool:
    if not isinstance(clause, dict) or len(clause) != 1:
        raise EsError(400, "parsing_exception", "a query must be an object with one query type")
    kind, spec = next(iter(clause.items()))
    if kind == "match_all":
        return True
    if kind == "ids":
        return doc_id in [str(v) for v in spec.get("values", [])]
    if kind == "match":
        name, value = _single(spec, kind)
        operator = "or"
        if isinstance(value, dict):
            operator = str(value.get("operator", "or")).lower()
            value = value.get("query")
        wanted, present = _words(value), _words(_field(source, name))
        return bool(wanted) and (wanted <= present if operator == "and" else bool(wanted & present))
    if kind == "term":
        name, value = _single(spec, kind)
        if isinstance(value, dict):
            value = value.get("value")
        return value in _values(_field(source, name))
    if kind == "terms":
        name, values = _single(spec, kind)
        return any(v in _values(_field(source, name)) for v in values)
    if kind == "exists":
        return _field(source, spec.get("field", "")) is not None
    if kind == "range":
        name, bounds = _single(spec, kind)
        return any(_in_range(v, bounds) for v in _values(_field(source, name)))
    if kind == "query_string":
        return _query_string(str(spec.get("query", "")), source)
    if kind == "bool":
        must = _values(spec.get("must")) + _values(spec.get("filter"))
        should = _values(spec.get("should"))
        must_not = _values(spec.get("must_not"))
        return (all(_matches(c, doc_id, source) for c in must)
                and not any(_matches(c, doc_id, source) for c in must_not)
                and (not should or bool(must) or any(_matches(c, doc_id, source) for c in should)))
    raise EsError(400, "parsing_exception", f"unknown query [{kind}]")


def _in_range(value: Any, bounds: Json) -> bool:
    checks = {"gt": lambda b: value > b, "gte": lambda b: value >= b,
              "lt": lambda b: value < b, "lte": lambda b: value <= b}
    try:
        return all(checks[op](bound) for op, bound in bounds.items() if op in checks)
    except TypeError:
        return False


def _query_string(text: str, source: Json) -> bool:
    """`word`, `field:word` and `*`, OR-ed together (Elasticsearch's default operator)."""
    terms = text.split()
    if not terms or terms == ["*"]:
        return True
    everything = _words(list(_all_strings(source)))
    for term in terms:
        name, sep, word = term.partition(":")
        if sep:
            value = _field(source, name)
            if (word == "*" and value is not None) or _words(word) & _words(value):
                return True
        if not sep and _words(term) & everything:
            return True
    return False


# ---- responses ---------------------------------------------------------------------------------------


_HEADERS = {"X-Elastic-Product": "Elasticsearch"}


def _json(body: Any, status: int, headers: dict[str, str]) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json",
                        headers=headers)


def _json_body(body: bytes) -> Json:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise EsError(400, "parsing_exception", "request body is not JSON") from None
    if not isinstance(data, dict):
        raise EsError(400, "parsing_exception", "request body must be an object")
    return data


def _item_error(index: str | None, doc_id: str, status: int, type_: str, reason: str) -> Json:
    return {"_index": index, "_id": doc_id, "status": status, "error": {"type": type_, "reason": reason}}


@contextlib.contextmanager
def fake_elasticsearch(**kwargs: Any) -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch(**kwargs) as es:
        yield es
