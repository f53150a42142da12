"""Building blocks of agent.yaml shared by every probe type: strictness, TLS, expectations."""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Literal
from urllib.parse import urlsplit

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.durations import Duration
from probes.identity import parse_shard
from probes.redaction import register_secret, secret_header
from probes.regexes import check_pattern

NAME_PATTERN = r"^[a-zA-Z0-9_.-]+$"
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BODY = 4 * 1024 * 1024


_LISTEN_HOST = re.compile(r"^([A-Za-z0-9_.-]+|[0-9A-Fa-f:.]+(%[A-Za-z0-9]+)?)$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def check_regex(value: str) -> str:
    # Refused here if no engine can evaluate it in bounded time (probes.regexes).
    return check_pattern(value)


def check_http_url(value: str) -> str:
    """An http(s) URL the HTTP clients can use; what they would refuse at every run is refused at load."""
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL: {exc}") from None
    if not parts.hostname or any(c.isspace() for c in parts.hostname):
        raise ValueError(f"{value!r} has no valid host")
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
    """Default: the `Host` header when one is configured, else the URL's host (as blackbox_exporter)."""
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] | None = None

    def file_errors(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Files named here that cannot be read, checked at load so that the error names them (the client
        opens them as given, relative to the working directory)."""
        errors: list[tuple[tuple[str | int, ...], str]] = []
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, key)
            if path is None:
                continue
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                errors.append(((key,), f"cannot read {path}: {exc.strerror or exc}"))
        return errors


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


class HeaderMatch(Strict):
    regex: str
    allow_missing: bool = False
    """A missing header passes instead of failing."""

    _check = field_validator("regex")(check_regex)


HeaderRule = str | HeaderMatch
"""A regex, or `{regex, allow_missing}`."""


def as_list(value: str | list[str] | None) -> list[str]:
    """`body_matches: x` and `body_matches: [x, y]` alike."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def header_rule(rule: HeaderRule) -> HeaderMatch:
    return HeaderMatch(regex=rule) if isinstance(rule, str) else rule


class Expect(Strict):
    status: list[int] | None = None
    """Accepted status codes; default: any 2xx. A single code is a list of one."""
    max_latency: Duration | None = None
    degraded_latency: Duration | None = None
    body_matches: str | list[str] | None = None
    """A regex, or a list of them: each must match."""
    body_not_matches: str | list[str] | None = None
    """A regex, or a list of them: none may match."""
    headers: dict[str, HeaderRule] = Field(default_factory=dict)
    """Some value of each header must match (every value of a repeated header is looked at)."""
    headers_not_matching: dict[str, HeaderRule] = Field(default_factory=dict)
    """No value of each header may match."""
    http_versions: list[Literal["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"]] | None = None
    """Accepted protocol versions of the final response; default: any."""
    ssl: bool | None = None
    """true: the final response must come over TLS; false: it must not."""
    json_checks: list[JsonCheck] = Field(default_factory=list, alias="json")
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    cert_expires_after: Duration | None = None

    @field_validator("body_matches", "body_not_matches")
    @classmethod
    def _regex(cls, value: str | list[str] | None) -> str | list[str] | None:
        for pattern in as_list(value):
            check_regex(pattern)
        return value

    @field_validator("headers", "headers_not_matching")
    @classmethod
    def _header_regexes(cls, value: dict[str, HeaderRule]) -> dict[str, HeaderRule]:
        for rule in value.values():
            if isinstance(rule, str):
                check_regex(rule)
        return {name.lower(): rule for name, rule in value.items()}

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"invalid JSON Schema: {exc.message}") from None
        return value

    @field_validator("status", mode="before", json_schema_input_type=list[int] | int | None)
    @classmethod
    def _one_code(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value

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
    """Overridden by PROBE_AGENT_REGION, then by --region."""
    id: str = Field(default_factory=socket.gethostname)
    """Default: the host name. Overridden by PROBE_AGENT_ID, then by --agent-id."""
    listen: str = "127.0.0.1:9464"
    max_concurrency: int = Field(default=100, ge=1, le=100_000)
    max_load_probes: int = Field(default=1, ge=1, le=16)
    """`type: load` bursts running at once (each is a Locust process)."""
    shard: str | None = None
    """`I/N`: run only the probes whose name hash modulo N is I. Overridden by PROBE_AGENT_SHARD, then --shard."""
    config_poll_interval: Duration = 30.0
    """How often a config given as an http(s):// URL is fetched again."""
    history: int = Field(default=100, ge=1, le=10_000)
    """Runs per probe kept in memory for the status page (success ratio, sparkline)."""
    shutdown_grace: Duration = 5.0
    """On SIGTERM/SIGINT, how long probes already running may take to finish before they are cancelled."""

    processes: int = Field(default=1, json_schema_extra=lambda schema: _processes_schema(schema))
    """Worker processes that run the probes (`auto`: one per CPU); the agent process serves the web."""

    @field_validator("processes", mode="before")
    @classmethod
    def _processes(cls, value: Any) -> int:
        return parse_processes(value)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        # Checked at load, so a config that validates can also start its web server.
        from probes.asgi_server import split_host_port
        from probes.errors import UsageError

        try:
            host, _ = split_host_port(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        if not _LISTEN_HOST.match(host):
            raise ValueError(f"invalid listen address {value!r}: {host!r} is not a host name or IP address")
        return value

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        if value is not None:
            parse_shard(value)
        return value

    @field_validator("config_poll_interval")
    @classmethod
    def _poll(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("config_poll_interval must be greater than 0")
        return value

    @field_validator("shutdown_grace")
    @classmethod
    def _grace(cls, value: float) -> float:
        if not 0 <= value <= 3600:
            raise ValueError("shutdown_grace must be between 0s and 1h")
        return value


def register_header_secrets(headers: dict[str, str], extra: list[str]) -> None:
    """Values of credential headers written into the file are secrets too, not only `${VAR}` ones; the
    credential after a scheme word (`Bearer abc`) on its own as well, as messages may quote just that."""
    for name, value in headers.items():
        if secret_header(name, extra):
            register_secret(value)
            _, _, credential = value.partition(" ")
            if credential and "${" not in credential:
                register_secret(credential)


class Defaults(Strict):
    interval: Duration = DEFAULT_INTERVAL
    timeout: Duration = DEFAULT_TIMEOUT
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: list[str] = Field(default_factory=list)
    """Headers besides Authorization, Proxy-Authorization, Cookie and X-Api-Key whose values are secrets."""

    @model_validator(mode="after")
    def _secrets(self) -> Defaults:
        register_header_secrets(self.headers, self.secret_headers)
        return self


class BasicAuth(Strict):
    username: str
    password: str | None = None
    password_file: str | None = None

    @model_validator(mode="after")
    def _one_password(self) -> BasicAuth:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give either password or password_file, not both")
        return self


class OAuth2(Strict):
    """The client credentials grant: a token fetched from `token_url`, kept until it expires."""

    client_id: str
    client_secret: str | None = None
    client_secret_file: str | None = None
    scopes: list[str] = Field(default_factory=list)
    token_url: str
    endpoint_params: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_secret(self) -> OAuth2:
        if self.client_secret is not None and self.client_secret_file is not None:
            raise ValueError("give either client_secret or client_secret_file, not both")
        if not self.token_url.startswith(("http://", "https://")):
            raise ValueError(f"token_url {self.token_url!r} is not an http:// or https:// URL")
        return self


COMPRESSIONS = ("gzip", "br", "deflate", "identity")


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
    secret_headers: list[str] = Field(default_factory=list)
    """Headers besides Authorization, Proxy-Authorization, Cookie and X-Api-Key whose values are secrets:
    never shown in results, pages or logs (e.g. [X-My-Token])."""
    http_version: Literal["1.1", "2"] = "1.1"
    """"2": offer HTTP/2 (negotiated over TLS, HTTP/1.1 if the server declines)."""
    compression: Literal["gzip", "br", "deflate", "identity"] | None = None
    """Decode the body with this algorithm and fail if it is not encoded so. Nothing is asked for: send an
    `Accept-Encoding` header for that (blackbox_exporter's semantics). Default: bodies are not decoded."""
    proxy_url: str | None = None
    basic_auth: BasicAuth | None = None
    bearer_token: str | None = None
    bearer_token_file: str | None = None
    """Read on every run, so a rotated token is picked up."""
    oauth2: OAuth2 | None = None
    ip_protocol: Literal["ip4", "ip6"] | None = None
    """Preferred address family when a name resolves to both; default: the system's order."""
    ip_protocol_fallback: bool = True
    """Use the other family when the preferred one has no address."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "${" in value:  # a scripted variable, checked when the step runs
            return value
        return check_http_url(value)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        return value.upper()

    @field_validator("proxy_url")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> RequestFields:
        bodies = [k for k in ("json_body", "body", "form") if getattr(self, k) is not None]
        if len(bodies) > 1:
            raise ValueError("give only one of json, body, form")
        auth = [k for k in ("basic_auth", "bearer_token", "bearer_token_file", "oauth2")
                if getattr(self, k) is not None]
        if any(name.lower() == "authorization" for name in self.headers):
            auth.append("an Authorization header")
        if len(auth) > 1:
            raise ValueError(f"give only one of {', '.join(auth)}")
        accept = next((v for k, v in self.headers.items() if k.lower() == "accept-encoding"), None)
        if self.compression is not None and accept is not None and not accepts(accept, self.compression):
            raise ValueError(f"compression {self.compression} is not acceptable to the Accept-Encoding "
                             f"header {accept!r}")
        register_header_secrets(self.headers, self.secret_headers)
        return self


def accepts(accept_encoding: str, algorithm: str) -> bool:
    """Whether an Accept-Encoding value admits `algorithm`, the way blackbox_exporter decides it: the
    entries by quality, highest first; the first naming it (or `*`) decides; q=0 refuses."""
    if not accept_encoding.strip():
        return True
    entries: list[tuple[float, str]] = []
    for part in accept_encoding.split(","):
        name, sep, param = part.rpartition(";") if ";" in part else (part, "", "")
        quality = 1.0
        if sep:
            try:
                quality = round(float(param.strip().removeprefix("q=")), 3)
            except ValueError:
                quality = 0.0
        entries.append((quality, name.strip()))
    entries.sort(key=lambda e: -e[0])  # stable, as Go's SliceStable
    return next((q > 0 for q, name in entries if name in (algorithm, "*")), False)


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
    regions: list[str] | None = None
    """The regions whose agents run this probe; default: every region."""

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("regions: [] would run the probe nowhere: list at least one region, "
                             "or leave the key out to run it in every region")
        for region in value:
            if not region.strip():
                raise ValueError("a region name cannot be empty")
        return value

    def runs_in(self, region: str) -> bool:
        return self.regions is None or region in self.regions

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
