"""Building blocks of agent.yaml shared by every probe type: strictness, TLS, expectations."""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.durations import Duration

NAME_PATTERN = r"^[a-zA-Z0-9_.-]+$"
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BODY = 4 * 1024 * 1024


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def check_jsonpath(value: str) -> str:
    from probes.jsonpaths import compile_path

    compile_path(value)
    return value


class TlsConfig(Strict):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False
    server_name: str | None = None


JsonOperator = Literal["equals", "not_equals", "gt", "lt", "contains", "matches", "exists", "all_equal"]
JSON_OPERATORS: tuple[str, ...] = JsonOperator.__args__  # type: ignore[attr-defined]


class JsonCheck(Strict):
    path: str
    equals: Any = None
    not_equals: Any = None
    gt: float | None = None
    lt: float | None = None
    contains: Any = None
    matches: str | None = None
    exists: bool | None = None
    all_equal: Any = None

    _check_path = field_validator("path")(check_jsonpath)

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else check_regex(value)

    @model_validator(mode="after")
    def _one_operator(self) -> JsonCheck:
        given = [op for op in JSON_OPERATORS if op in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(JSON_OPERATORS)} (got {given or 'none'})")
        return self

    @property
    def operator(self) -> str:
        return next(op for op in JSON_OPERATORS if op in self.model_fields_set)


class Expect(Strict):
    status: list[int] | None = None
    """Accepted status codes; default: any 2xx."""
    max_latency: Duration | None = None
    degraded_latency: Duration | None = None
    body_matches: str | None = None
    body_not_matches: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    json_checks: list[JsonCheck] = Field(default_factory=list, alias="json")
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    cert_expires_after: Duration | None = None

    @field_validator("body_matches", "body_not_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else check_regex(value)

    @field_validator("headers")
    @classmethod
    def _header_regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            check_regex(pattern)
        return {name.lower(): pattern for name, pattern in value.items()}

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"invalid JSON Schema: {exc.message}") from None
        return value

    @field_validator("status")
    @classmethod
    def _codes(cls, value: list[int] | None) -> list[int] | None:
        for code in value or []:
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code")
        return value


MAX_PROCESSES = 64


def parse_processes(value: Any) -> int:
    """`agent.processes` / `--processes`: a count from 1 to 64, or `auto` for the CPU count."""
    if value == "auto":
        # The CPUs this process may run on (a container's cpuset), not every CPU of the host.
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(MAX_PROCESSES, cpus))
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    if number is None or not 1 <= number <= MAX_PROCESSES:
        raise ValueError(f"processes must be a whole number from 1 to {MAX_PROCESSES}, or auto (got {value!r})")
    return number


def _processes_schema(schema: dict[str, Any]) -> None:
    schema.pop("type", None)
    schema["anyOf"] = [{"type": "integer", "minimum": 1, "maximum": MAX_PROCESSES}, {"const": "auto"}]


class AgentSection(Strict):
    region: str = "default"
    id: str = Field(default_factory=socket.gethostname)
    listen: str = "127.0.0.1:9464"
    max_concurrency: int = Field(default=100, ge=1, le=100_000)
    processes: int = Field(default=1, json_schema_extra=lambda schema: _processes_schema(schema))
    """Worker processes that run the probes (`auto`: one per CPU); the agent process serves the web."""

    @field_validator("processes", mode="before")
    @classmethod
    def _processes(cls, value: Any) -> int:
        return parse_processes(value)


class Defaults(Strict):
    interval: Duration = DEFAULT_INTERVAL
    timeout: Duration = DEFAULT_TIMEOUT
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
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=1)
    """Default: `defaults.max_body_bytes`."""

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


class ProbeBase(Strict):
    """What every probe type has. A type's own model adds its keys and, where it needs them, overrides the
    hooks below; nothing outside the type's module asks which type a probe is."""

    name: str = Field(pattern=NAME_PATTERN)
    type: str
    interval: Duration = DEFAULT_INTERVAL
    """Default: `defaults.interval` (filled in while decoding, see AgentConfig)."""
    timeout: Duration = DEFAULT_TIMEOUT
    """Default: `defaults.timeout`, shrunk to fit a shorter interval."""
    retries: int = Field(default=0, ge=0, le=10)
    retry_delay: Duration = 1.0
    negative: bool = False
    """Succeed when the expectation fails (an endpoint that must refuse)."""

    def requests(self) -> list[RequestFields]:
        """The request blocks of this probe, which inherit `defaults.headers` and `max_body_bytes`."""
        return []

    def target(self) -> str:
        """What the probe looks at, for people (status page, results)."""
        return ""

    def load_checks(self, config_dir: str) -> list[tuple[tuple[str | int, ...], str]]:
        """Checks that need more than the model (files to read): (path below the probe, message) each."""
        return []

    @classmethod
    def keeps_variable(cls, raw: dict[str, Any], loc: tuple[str | int, ...], name: str) -> bool:
        """Whether `${name}` at `loc` (below this probe) is filled at run time, not from the environment."""
        return False
