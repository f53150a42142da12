"""The one fault model, shared by the demo target, the proxy and the drill runner.

A fault says what to do (`type`), to which requests (`match`, `probability`) and for how long
(`ttl`): every fault expires by itself, so a crashed drill cannot leave a service broken.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from probes.durations import Duration, format_duration
from probes.jsonpaths import compile_path
from probes.regexes import BoundedRegex, RegexTimeout, compile_bounded

FaultType = Literal["latency", "error", "abort", "timeout", "unready", "rewrite"]
FAULT_TYPES: tuple[str, ...] = FaultType.__args__  # type: ignore[attr-defined]

DEFAULT_TTL = 120.0
# Long enough for any drill, short enough that a forgotten fault heals within the hour.
MAX_TTL = 3600.0
MAX_BODY = 64 * 1024

# Readiness and health endpoints as services usually name them; liveness is left alone on purpose:
# an unready service is still alive, and restarting it is not what the drill is about.
_HEALTH_PATH = re.compile(r"^(/.*)?/(-/)?(health|healthz|healthy|ready|readyz|readiness)(/|$)")
_LIVENESS_PATH = re.compile(r"/(live|livez|liveness)/?$")


def is_health_path(path: str) -> bool:
    """True for the health/readiness endpoints an `unready` fault answers for."""
    return bool(_HEALTH_PATH.match(path)) and not _LIVENESS_PATH.search(path)


def _compile(pattern: str, what: str) -> BoundedRegex:
    try:
        return compile_bounded(pattern)
    except ValueError as exc:
        raise ValueError(f"invalid regular expression for {what} {pattern[:80]!r}: {exc}") from None


def _found(pattern: BoundedRegex, text: str) -> bool:
    # A fallback pattern that runs past its deadline does not match: the request passes untouched.
    try:
        return pattern.search(text) is not None
    except RegexTimeout:
        return False


class FaultMatch(BaseModel):
    """Which requests a fault applies to; every given condition must hold (regexes use search)."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="regex searched in the request path, e.g. ^/api/search")
    method: str | None = Field(None, description="HTTP method, e.g. GET (case-insensitive)")
    headers: dict[str, str] = Field(default_factory=dict, description="header name -> regex of its value")

    _path_re: BoundedRegex | None = PrivateAttr(None)
    _header_res: tuple[tuple[str, BoundedRegex], ...] = PrivateAttr(())

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value, "path")
        return value

    @field_validator("method")
    @classmethod
    def _check_method(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[A-Za-z]+", value):
            raise ValueError(f"invalid HTTP method {value!r}")
        return value.upper()

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ValueError(f"invalid header name {name!r}")
            _compile(pattern, f"header {name}")
        return {name.lower(): pattern for name, pattern in value.items()}

    def model_post_init(self, __context: object) -> None:
        self._path_re = compile_bounded(self.path) if self.path is not None else None
        self._header_res = tuple((name, compile_bounded(p)) for name, p in self.headers.items())

    def matches(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        """`headers` must look names up case-insensitively (aiohttp's and Starlette's do)."""
        if self.method is not None and method.upper() != self.method:
            return False
        if self._path_re is not None and not _found(self._path_re, path):
            return False
        for name, pattern in self._header_res:
            value = headers.get(name)
            if value is None or not _found(pattern, value):
                return False
        return True


RewriteOpName = Literal["reverse", "drop_first", "drop", "set", "shuffle"]
# What each op needs besides `path`; anything else given is a mistake worth a 422.
_REWRITE_ARGS: dict[str, tuple[str, ...]] = {
    "reverse": (), "drop_first": ("count",), "drop": ("index",), "set": ("value",), "shuffle": ("seed",),
}


class RewriteOp(BaseModel):
    """One edit of a JSON response body at a JSONPath (every match is edited).

    reverse / drop_first (`count`, default 1) / drop (`index`, negative counts from the end) / shuffle
    (`seed`, default 0: the same order every time, so the answer stays wrong the same way) work on lists;
    set replaces the value with `value`.
    """

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="JSONPath of the value to edit, e.g. $.hits")
    op: RewriteOpName
    count: int | None = Field(None, ge=1, description="elements to drop, for drop_first (default 1)")
    index: int | None = Field(None, description="element to drop, for drop")
    value: Any = Field(None, description="the new value, for set")
    seed: int | None = Field(None, description="random seed, for shuffle (default 0)")

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        compile_path(value)
        return value

    @model_validator(mode="after")
    def _check_args(self) -> RewriteOp:
        allowed = _REWRITE_ARGS[self.op]
        # None counts as not given, so that a dumped fault validates again as it was.
        extra = sorted(k for k in ("count", "index", "value", "seed") if getattr(self, k) is not None
                       and k not in allowed)
        if extra:
            raise ValueError(f"op {self.op} takes no {', '.join(extra)}")
        if self.op == "drop" and self.index is None:
            raise ValueError("op drop needs an index")
        if self.op == "set" and "value" not in self.model_fields_set:
            raise ValueError("op set needs a value")
        return self


class Fault(BaseModel):
    """A fault as POSTed to `/-/faults` (JSON) or written in a drill spec (YAML)."""

    model_config = ConfigDict(extra="forbid")

    type: FaultType
    match: FaultMatch = Field(default_factory=FaultMatch)
    probability: float = Field(1.0, ge=0.0, le=1.0, description="share of matching requests affected")
    latency: Duration | None = Field(None, description="added delay, for type latency")
    status: int = Field(503, ge=100, le=599, description="response status, for type error and unready")
    body: str | None = Field(None, max_length=MAX_BODY, description="response body, for type error and unready")
    ttl: Duration = Field(DEFAULT_TTL, description="the fault removes itself after this long")
    rewrite: list[RewriteOp] = Field(default_factory=list, max_length=20,
                                     description="edits of JSON response bodies, for type rewrite")

    @field_validator("ttl")
    @classmethod
    def _check_ttl(cls, value: float, info: ValidationInfo) -> float:
        if value <= 0:
            raise ValueError("must be positive: every fault expires by itself")
        # A server can lower or raise the cap (`--max-fault-ttl`); it passes it as validation context.
        limit = (info.context or {}).get("max_ttl", MAX_TTL)
        if value > limit:
            raise ValueError(f"must be at most {format_duration(limit)}")
        return value

    @model_validator(mode="after")
    def _check_latency(self) -> Fault:
        if self.type == "latency":
            if self.latency is None or self.latency <= 0:
                raise ValueError("latency: a latency fault needs a positive latency, e.g. 300ms")
            if self.latency > self.ttl:
                raise ValueError("latency: must not be longer than the fault's ttl")
        if self.type == "rewrite" and not self.rewrite:
            raise ValueError('rewrite: a rewrite fault needs at least one edit, e.g. [{path: "$.hits", op: reverse}]')
        if self.type != "rewrite" and self.rewrite:
            raise ValueError("rewrite: only for type rewrite")
        return self

    def applies_to(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        # `unready` answers the usual health endpoints by default; a user naming a path knows better.
        if self.type == "unready" and self.match.path is None and not is_health_path(path):
            return False
        return self.match.matches(method, path, headers)


def describe_validation_error(exc: ValidationError) -> list[str]:
    """pydantic errors as `field.path: message` lines, the form used for every user input."""
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {message}" if loc else message)
    return lines
