"""Building blocks of agent.yaml shared by every probe type: strictness, TLS, expectations."""

from __future__ import annotations

import re
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.durations import Duration

NAME_PATTERN = r"^[a-zA-Z0-9_.-]+$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def _check_jsonpath(value: str) -> str:
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

    _check_path = field_validator("path")(_check_jsonpath)

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else _check_regex(value)

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
        return None if value is None else _check_regex(value)

    @field_validator("headers")
    @classmethod
    def _header_regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            _check_regex(pattern)
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


class ProbeBase(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    type: str
    interval: Duration | None = None
    """Default: `defaults.interval`."""
    timeout: Duration | None = None
    """Default: `defaults.timeout`."""
    retries: int = Field(default=0, ge=0, le=10)
    retry_delay: Duration = 1.0
    negative: bool = False
    """Succeed when the expectation fails (an endpoint that must refuse)."""

    @property
    def every(self) -> float:
        assert self.interval is not None, "defaults are applied at load"
        return self.interval

    @property
    def deadline(self) -> float:
        assert self.timeout is not None, "defaults are applied at load"
        return self.timeout
