"""blackbox.yml as blackbox_exporter 0.23 reads it (strict: unknown keys are errors, as its `KnownFields`).
Only `http` modules can run here; the others are kept raw so that the error can name them."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.config import yamlfile
from probes.config.models import COMPRESSIONS, OAuth2, check_regex
from probes.durations import Duration
from probes.errors import ConfigError

SUPPORTED = "http"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BasicAuth(_Strict):
    username: str = ""
    password: str | None = None
    password_file: str | None = None


class Authorization(_Strict):
    type: str = "Bearer"
    credentials: str | None = None
    credentials_file: str | None = None


class TlsConfig(_Strict):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] | None = None


class HeaderMatch(_Strict):
    header: str
    regexp: str
    allow_missing: bool = False

    _regex = field_validator("regexp")(check_regex)


_SIZE = re.compile(r"^(\d+)([KMGTPE]i?B|B)$")


def parse_size(value: Any) -> int:
    """units.Base2Bytes: 512B, 10KB, 10KiB, 1MB... (powers of 1024; a unit is required, as in blackbox)."""
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ValueError(f"invalid size {value!r}: a number with a unit, e.g. 512B, 64KB, 10MB")
    unit = match.group(2)
    return int(match.group(1)) * 1024 ** "BKMGTPE".index(unit[0])


class HttpModule(_Strict):
    valid_status_codes: list[int] = Field(default_factory=list)
    valid_http_versions: list[Literal["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"]] = Field(default_factory=list)
    preferred_ip_protocol: Literal["ip4", "ip6"] | None = None
    ip_protocol_fallback: bool = True
    skip_resolve_phase_with_proxy: bool = False
    no_follow_redirects: bool | None = None
    fail_if_ssl: bool = False
    fail_if_not_ssl: bool = False
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    fail_if_body_matches_regexp: list[str] = Field(default_factory=list)
    fail_if_body_not_matches_regexp: list[str] = Field(default_factory=list)
    fail_if_header_matches: list[HeaderMatch] = Field(default_factory=list)
    fail_if_header_not_matches: list[HeaderMatch] = Field(default_factory=list)
    body: str | None = None
    compression: Literal["gzip", "br", "deflate", "identity", ""] = ""
    body_size_limit: int = 0
    # http_client_config, inline as in blackbox.yml
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    bearer_token: str | None = None
    bearer_token_file: str | None = None
    oauth2: OAuth2 | None = None
    proxy_url: str | None = None
    tls_config: TlsConfig = Field(default_factory=TlsConfig)
    follow_redirects: bool = True
    enable_http2: bool = True

    @field_validator("fail_if_body_matches_regexp", "fail_if_body_not_matches_regexp")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            check_regex(pattern)
        return value

    @field_validator("body_size_limit", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)

    @field_validator("compression")
    @classmethod
    def _compression(cls, value: str) -> str:
        assert value in (*COMPRESSIONS, "")
        return value

    @model_validator(mode="after")
    def _auth(self) -> HttpModule:
        given = [k for k in ("basic_auth", "authorization", "bearer_token", "bearer_token_file", "oauth2")
                 if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"at most one of {', '.join(given)} may be configured")
        if self.no_follow_redirects is not None:
            self.follow_redirects = not self.no_follow_redirects
        return self


class Module(_Strict):
    prober: str
    timeout: Duration = 0.0
    """0: the scrape's timeout (X-Prometheus-Scrape-Timeout-Seconds) less half a second, as blackbox."""
    http: HttpModule = Field(default_factory=HttpModule)
    tcp: dict[str, Any] | None = None
    icmp: dict[str, Any] | None = None
    dns: dict[str, Any] | None = None
    grpc: dict[str, Any] | None = None


class BlackboxConfig(_Strict):
    modules: dict[str, Module] = Field(default_factory=dict)


def _unsupported(doc: yamlfile.Document) -> list[str]:
    errors: list[str] = []
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("modules", {}), dict):
        return [doc.error((), "the file must be a mapping with `modules:`")]
    for name, module in (data.get("modules") or {}).items():
        prober = module.get("prober") if isinstance(module, dict) else None
        if prober is not None and prober != SUPPORTED:
            errors.append(doc.error(("modules", name, "prober"),
                                    f"unsupported prober {prober!r}: probe-agent runs blackbox_exporter's http "
                                    f"modules only; keep blackbox_exporter for this module or remove it"))
    return errors


def parse_blackbox(text: str, path: str) -> BlackboxConfig:
    return _load(yamlfile.parse(text, path))


def load_blackbox(path: str) -> BlackboxConfig:
    return _load(yamlfile.read(path))


def _load(doc: yamlfile.Document) -> BlackboxConfig:
    errors = _unsupported(doc)
    if errors:
        raise ConfigError(errors)
    return yamlfile.validate(doc, BlackboxConfig)
