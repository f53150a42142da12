"""The `search` probe: an http probe that also reads hits and total, checks `min_hits`, the golden-query
canary `top_k_contains`, and the server-reported `took`; `queries:` rotate run by run."""

from __future__ import annotations

import itertools
import os
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from probes.config.models import Expect, check_jsonpath
from probes.errors import ProbeFailed
from probes.fingerprint import METRIC, answer_details, fingerprint_sample
from probes.fingerprint import total_value as _total
from probes.jsonpaths import find
from probes.probers._http.expect import ResponseView
from probes.probers.base import RunContext
from probes.probers.http import HttpProber, HttpRequestConfig
from probes.result import ProbeResult, Sample


class SearchExpect(Expect):
    min_hits: int | None = Field(default=None, ge=0)
    max_hits: int | None = Field(default=None, ge=0)
    total_path: str = "$.total"
    hits_path: str = "$.hits"
    id_field: str = "id"
    top_k_contains: list[str] = Field(default_factory=list)
    top_k: int | None = Field(default=None, ge=1)
    """Look for `top_k_contains` within the first K hits; default: all returned hits."""
    max_took_ms: float | None = Field(default=None, ge=0)
    took_path: str = "$.took_ms"
    fingerprint_top_k: int = Field(default=10, ge=1)
    """probe_search_result_fingerprint hashes the ordered ids of this many top hits."""
    fingerprint_total: bool = False
    """Also hash the total, so that regions differing only in their hit counts differ too."""

    _paths = field_validator("total_path", "hits_path", "took_path")(check_jsonpath)


class SearchProbeConfig(HttpRequestConfig):
    type: Literal["search"]
    query_param: str = "q"
    queries: list[str] | None = Field(default=None, min_length=1)
    queries_file: str | None = None
    cache_bust: bool = False
    expect: SearchExpect = Field(default_factory=SearchExpect)

    @model_validator(mode="after")
    def _queries(self) -> SearchProbeConfig:
        if self.queries is not None and self.queries_file is not None:
            raise ValueError("give either queries or queries_file, not both")
        return self

    def load_checks(self, config_dir: str) -> list[tuple[tuple[str | int, ...], str]]:
        if self.queries_file is None:
            return []
        try:
            self.queries = _read_queries(self.queries_file, config_dir)
        except ValueError as exc:
            return [(("queries_file",), str(exc))]
        return []


MAX_QUERIES_BYTES = 16 << 20


def _read_queries(path: str, config_dir: str) -> list[str]:
    full = path if os.path.isabs(path) else os.path.join(config_dir, path)
    try:
        with open(full, "rb") as handle:
            raw = handle.read(MAX_QUERIES_BYTES + 1)  # bounded: /dev/zero is a path too
    except OSError as exc:
        raise ValueError(f"cannot read {full}: {exc.strerror}") from None
    if len(raw) > MAX_QUERIES_BYTES:
        raise ValueError(f"{full} is larger than {MAX_QUERIES_BYTES // (1 << 20)} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{full} is not valid UTF-8 (byte {exc.start})") from None
    queries = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not queries:
        raise ValueError(f"{full} has no queries (one query a line)")
    return queries


_bust = itertools.count()


class SearchProber(HttpProber):
    summary = (
        "an http probe that also reads hits and total: `min_hits`, golden-query ids `top_k_contains`, server "
        "`took`, rotating `queries:`, an answer fingerprint"
    )
    config_model = SearchProbeConfig  # type: ignore[assignment]  # a subtype, as SearchProber is of HttpProber
    config: SearchProbeConfig

    def params_for(self, ctx: RunContext) -> dict[str, Any] | None:
        cfg = self.config
        params = dict(self._args["params"] or {})
        if cfg.queries:
            params[cfg.query_param] = cfg.queries[ctx.run % len(cfg.queries)]
        if cfg.cache_bust:
            params["_cb"] = f"{id(self):x}{next(_bust)}"
        return params or None

    async def run(self, ctx: RunContext) -> ProbeResult:
        result = await super().run(ctx)
        cfg = self.config
        if cfg.queries and result.details:
            # Rotating queries: only answers to the same query are comparable across regions.
            query = cfg.queries[ctx.run % len(cfg.queries)]
            result.details["query"] = query
            for index, sample in enumerate(result.samples):
                if sample.name == METRIC:
                    result.samples[index] = fingerprint_sample(result.details, (("query", query),))
        return result

    def inspect(self, view: ResponseView, details: dict[str, Any]) -> tuple[list[Sample], ProbeFailed | None]:
        expect = self.config.expect
        document = view.json()
        samples: list[Sample] = []
        hits_found = find(expect.hits_path, document)
        hits = hits_found[0] if hits_found and isinstance(hits_found[0], list) else None
        totals = find(expect.total_path, document)
        total = _total(totals[0]) if totals else None
        if total is None and hits is None:
            return samples, ProbeFailed("assertion", f"neither {expect.total_path} nor {expect.hits_path} "
                                                "found in the response")
        count = total if total is not None else len(hits or [])
        samples.append(Sample("probe_search_hits", float(count), help="Hits (total) of the last search."))
        details.update(answer_details(hits, total, id_field=expect.id_field, top_k=expect.fingerprint_top_k,
                                      with_total=expect.fingerprint_total))
        samples.append(fingerprint_sample(details))
        failure: ProbeFailed | None = None
        if expect.min_hits is not None and count < expect.min_hits:
            failure = ProbeFailed("assertion", f"{count} hits, expected at least {expect.min_hits}")
        elif expect.max_hits is not None and count > expect.max_hits:
            failure = ProbeFailed("assertion", f"{count} hits, expected at most {expect.max_hits}")
        if expect.top_k_contains:
            window = (hits or [])[: expect.top_k] if expect.top_k else (hits or [])
            ids = {str(h.get(expect.id_field)) for h in window if isinstance(h, dict)}
            missing = [i for i in expect.top_k_contains if i not in ids]
            recall = 1 - len(missing) / len(expect.top_k_contains)
            samples.append(Sample("probe_search_top_k_recall", recall,
                                  help="Share of top_k_contains ids found in the returned hits."))
            if missing and failure is None:
                failure = ProbeFailed("assertion", f"expected ids missing from the top {len(window)} hits: "
                                              f"{', '.join(missing)}")
        tooks = find(expect.took_path, document)
        if not tooks and "took_path" not in expect.model_fields_set:
            tooks = find("$.took", document)  # Elasticsearch's own name, passed through by many APIs
        took = tooks[0] if tooks and isinstance(tooks[0], int | float) else None
        if took is not None:
            samples.append(Sample("probe_search_took_seconds", float(took) / 1000,
                                  help="Server-reported search time of the last search."))
        if expect.max_took_ms is not None and failure is None:
            if took is None:
                failure = ProbeFailed("assertion", f"{expect.took_path} not found in the response")
            elif took > expect.max_took_ms:
                failure = ProbeFailed("latency", f"server took {took:g}ms, max_took_ms is {expect.max_took_ms:g}")
        return samples, failure
