"""agent.yaml: strict pydantic models, defaults, ${ENV} interpolation, and load-time checks.

Every error reaches the user as `FILE:LINE: field.path: message`.
"""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from probes.config import yamlfile
from probes.config.elasticsearch import ElasticsearchProbeConfig, ElasticsearchSinkConfig
from probes.config.models import NAME_PATTERN, Expect, ProbeBase, Strict, TlsConfig, _check_jsonpath, _check_regex
from probes.config.slo import SloConfig, check_slos
from probes.durations import Duration
from probes.errors import ConfigError
from probes.probers import PROBERS

DEFAULT_MAX_BODY = 4 * 1024 * 1024


class AgentSection(Strict):
    region: str = "default"
    id: str = Field(default_factory=socket.gethostname)
    listen: str = "127.0.0.1:9464"
    max_concurrency: int = Field(default=100, ge=1, le=100_000)


class Defaults(Strict):
    interval: Duration = 30.0
    timeout: Duration = 10.0
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)


class RequestFields(Strict):
    method: str = "GET"
    url: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    form: dict[str, str] | None = None
    follow_redirects: bool = True
    max_redirects: int = Field(default=10, ge=0)
    reuse_connections: bool = False
    """Keep connections alive between runs; by default each run measures a fresh connection."""
    max_body_bytes: int | None = Field(default=None, ge=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "${" in value:  # a scripted variable, checked when the step runs
            return value
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _one_body(self) -> RequestFields:
        bodies = [k for k in ("json_body", "body", "form") if getattr(self, k) is not None]
        if len(bodies) > 1:
            raise ValueError("give only one of json, body, form")
        return self


class HttpProbeConfig(ProbeBase, RequestFields):
    type: Literal["http"]
    tls: TlsConfig | None = None
    expect: Expect = Field(default_factory=Expect)


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

    _paths = field_validator("total_path", "hits_path", "took_path")(_check_jsonpath)


class SearchProbeConfig(ProbeBase, RequestFields):
    type: Literal["search"]
    tls: TlsConfig | None = None
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


class ExtractRule(Strict):
    json_path: str | None = Field(default=None, alias="json")
    regex: str | None = None
    group: int = 1
    header: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ExtractRule:
        given = [k for k in ("json_path", "regex", "header") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of json, regex, header")
        if self.json_path is not None:
            _check_jsonpath(self.json_path)
        if self.regex is not None:
            _check_regex(self.regex)
        return self


def _extract_shorthand(value: Any) -> Any:
    # `token: "$.access_token"` is the common case: a bare string is a JSONPath.
    if isinstance(value, dict):
        return {k: {"json": v} if isinstance(v, str) else v for k, v in value.items()}
    return value


class StepRequest(RequestFields):
    pass


class Step(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    request: StepRequest
    extract: Annotated[dict[str, ExtractRule], Field(default_factory=dict)]
    expect: Expect = Field(default_factory=Expect)
    optional: bool = False
    always_run: bool = False

    @field_validator("extract", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _extract_shorthand(value)


class ScriptedProbeConfig(ProbeBase):
    type: Literal["scripted"]
    tls: TlsConfig | None = None
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_steps(self) -> ScriptedProbeConfig:
        names = [s.name for s in self.steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"step names must be unique: {', '.join(dupes)}")
        return self


ProbeConfig = Annotated[
    HttpProbeConfig | SearchProbeConfig | ScriptedProbeConfig | ElasticsearchProbeConfig,
    Field(discriminator="type"),
]


class Sinks(Strict):
    elasticsearch: ElasticsearchSinkConfig | None = None


class AgentConfig(Strict):
    agent: AgentSection = Field(default_factory=AgentSection)
    defaults: Defaults = Field(default_factory=Defaults)
    probes: list[ProbeConfig] = Field(default_factory=list)
    sinks: Sinks = Field(default_factory=Sinks)
    slos: list[SloConfig] = Field(default_factory=list)


PROBE_TYPES = tuple(PROBERS)


def _scripted_keep(data: Any) -> Any:
    """Which ${name} in a scripted step refers to a value an earlier step extracts."""

    def keep(loc: yamlfile.Loc, name: str) -> bool:
        if len(loc) < 4 or loc[0] != "probes" or loc[2] != "steps" or not isinstance(loc[3], int):
            return False
        try:
            steps = data["probes"][loc[1]]["steps"]
            earlier = steps[: loc[3]]
        except (KeyError, IndexError, TypeError):
            return False
        return any(isinstance(s, dict) and isinstance(s.get("extract"), dict) and name in s["extract"]
                   for s in earlier)

    return keep


def _precheck(doc: yamlfile.Document) -> list[str]:
    """Errors pydantic would word poorly: a missing or unknown probe type."""
    errors = []
    if not isinstance(doc.data, dict):
        return [doc.error((), "the file must be a mapping with agent, defaults, probes, sinks")]
    probes = doc.data.get("probes")
    if isinstance(probes, list):
        for index, probe in enumerate(probes):
            if not isinstance(probe, dict):
                continue
            kind = probe.get("type")
            if kind is None:
                errors.append(doc.error(("probes", index), f"missing field type (one of {', '.join(PROBE_TYPES)})"))
            elif kind not in PROBE_TYPES:
                errors.append(doc.error(("probes", index, "type"),
                                        f"unknown probe type {kind!r}; known types: {', '.join(PROBE_TYPES)}"))
    return errors


def _apply_defaults_and_check(config: AgentConfig, doc: yamlfile.Document) -> list[str]:
    errors = []
    if config.defaults.timeout > config.defaults.interval:
        errors.append(doc.error(("defaults", "timeout"),
                                f"timeout ({config.defaults.timeout:g}s) is longer than the interval "
                                f"({config.defaults.interval:g}s): runs would overlap"))
    seen: dict[str, int] = {}
    for index, probe in enumerate(config.probes):
        if probe.name in seen:
            errors.append(doc.error(("probes", index, "name"),
                                    f"duplicate probe name {probe.name!r} (also probes[{seen[probe.name]}])"))
        seen.setdefault(probe.name, index)
        if probe.interval is None:
            probe.interval = config.defaults.interval
        if probe.timeout is None:
            # An inherited timeout shrinks to fit a shorter interval; one the probe sets must fit.
            probe.timeout = min(config.defaults.timeout, probe.interval)
        if probe.interval <= 0:
            errors.append(doc.error(("probes", index, "interval"), "interval must be greater than 0"))
        if probe.timeout <= 0:
            errors.append(doc.error(("probes", index, "timeout"), "timeout must be greater than 0"))
        elif probe.timeout > probe.interval:
            errors.append(doc.error(("probes", index, "timeout"),
                                    f"timeout ({probe.timeout:g}s) is longer than the interval "
                                    f"({probe.interval:g}s): runs would overlap"))
        if isinstance(probe, SearchProbeConfig) and probe.queries_file is not None:
            try:
                probe.queries = _read_queries(probe.queries_file, doc.path)
            except ValueError as exc:
                errors.append(doc.error(("probes", index, "queries_file"), str(exc)))
        for key, value in config.defaults.headers.items():
            for target in _requests_of(probe):
                target.headers.setdefault(key, value)
        for target in _requests_of(probe):
            if target.max_body_bytes is None:
                target.max_body_bytes = config.defaults.max_body_bytes
    errors += check_slos(config.slos, [p.name for p in config.probes], doc.error)
    return errors


def _requests_of(probe: Any) -> list[RequestFields]:
    if isinstance(probe, HttpProbeConfig | SearchProbeConfig):
        return [probe]
    if isinstance(probe, ScriptedProbeConfig):
        return [step.request for step in probe.steps]
    return []


def _read_queries(path: str, config_path: str) -> list[str]:
    full = path if os.path.isabs(path) else os.path.join(os.path.dirname(os.path.abspath(config_path)), path)
    try:
        with open(full, encoding="utf-8") as handle:
            queries = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    except OSError as exc:
        raise ValueError(f"cannot read {full}: {exc.strerror}") from None
    if not queries:
        raise ValueError(f"{full} has no queries (one query a line)")
    return queries


def parse_config(text: str, path: str, env: dict[str, str] | None = None) -> AgentConfig:
    return _load(yamlfile.parse(text, path), env)


def load_config(path: str, env: dict[str, str] | None = None) -> AgentConfig:
    return _load(yamlfile.read(path), env)


def _load(doc: yamlfile.Document, env: dict[str, str] | None) -> AgentConfig:
    errors = yamlfile.interpolate(doc, env, keep=_scripted_keep(doc.data))
    errors += _precheck(doc)
    if errors:
        raise ConfigError(errors)
    try:
        config = AgentConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(yamlfile.validation_messages(doc, exc)) from None
    errors = _apply_defaults_and_check(config, doc)
    if errors:
        raise ConfigError(errors)
    return config


def json_schema() -> dict[str, Any]:
    schema = AgentConfig.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "probe-agent agent.yaml"
    return schema
