"""Elasticsearch connections shared by the `elasticsearch` probe type and the results sink: where and as
whom to connect (`hosts`, credentials, `tls:`), the official async client built from that, and what a
client exception means as a probe reason."""

from __future__ import annotations

import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, SerializationError, TlsError, TransportError
from elasticsearch import ApiError, AsyncElasticsearch, UnsupportedProductError
from pydantic import Field, field_validator, model_validator

from probes.clients.tls import build_ssl_context
from probes.config.models import Strict, TlsConfig, check_http_url
from probes.redaction import register_secret

# The transport logs every request at INFO and a warning per failed one ("putting node on timeout"): at the
# agent's INFO level that is a line per probe run and bulk, and during an outage a warning per run and retry.
# Probe results and the sink's own once-per-outage lines already say what matters.
logging.getLogger("elastic_transport").setLevel(logging.WARNING)
logging.getLogger("elastic_transport.node_pool").setLevel(logging.ERROR)

# Elasticsearch's own rules for index names, minus the date-math forms nobody writes in a probe.
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")


def check_hosts(hosts: list[str]) -> list[str]:
    for host in hosts:
        check_http_url(host)
    if len({host.split("://", 1)[0] for host in hosts}) > 1:
        raise ValueError("hosts mix http:// and https://: use one scheme for all nodes")
    return hosts


def check_index_name(value: str) -> str:
    if not _INDEX_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid index name: lowercase letters, digits, and _ . + -, "
                         "not starting with _ . + -")
    return value


class ElasticsearchConnection(Strict):
    """Where and as whom to connect; shared by the probe type and the sink."""

    hosts: list[str] = Field(min_length=1)
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None

    _hosts = field_validator("hosts")(check_hosts)

    @model_validator(mode="after")
    def _auth(self) -> Any:
        for secret in (self.password, self.api_key):
            if secret is not None:
                register_secret(secret)
        for host in self.hosts:  # a password written into a host URL
            userinfo = urlsplit(host).netloc.rpartition("@")[0]
            if ":" in userinfo:
                register_secret(userinfo.partition(":")[2])
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together")
        if self.api_key is not None and self.username is not None:
            raise ValueError("give either api_key or username/password, not both")
        if self.tls is not None and self.tls.server_name is not None:
            # The client's aiohttp transport has no way to send another SNI name or check another one.
            raise ValueError("tls.server_name is not supported for Elasticsearch: "
                             "put the name in the certificate into hosts")
        return self



def ssl_context_for(conn: ElasticsearchConnection) -> ssl.SSLContext | None:
    """The TLS settings of `tls:` as one context, or None for the client's defaults (and for http://)."""
    if conn.tls is None or not conn.hosts[0].startswith("https://"):
        return None
    return build_ssl_context(conn.tls)


def make_client(conn: ElasticsearchConnection, *, request_timeout: float) -> AsyncElasticsearch:
    """Raises OSError / ssl.SSLError / ValueError for unusable TLS files: callers report, not crash."""
    options: dict[str, Any] = {
        "request_timeout": request_timeout,
        "max_retries": 0,
        "retry_on_timeout": False,
    }
    if conn.api_key is not None:
        options["api_key"] = conn.api_key
    elif conn.username is not None and conn.password is not None:
        options["basic_auth"] = (conn.username, conn.password)
    context = ssl_context_for(conn)
    if context is not None:
        options["ssl_context"] = context
    return AsyncElasticsearch(list(conn.hosts), **options)


def public_url(host: str) -> str:
    """A host URL without user:password, fit for results and logs."""
    parts = urlsplit(host)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


@dataclass(slots=True)
class Failure:
    reason: str
    message: str
    status_code: int = 0


def describe(exc: BaseException) -> Failure:
    """What went wrong talking to Elasticsearch, as a probe reason and a human message."""
    if isinstance(exc, UnsupportedProductError):
        return Failure("protocol", f"not Elasticsearch: {exc.message}", exc.meta.status)
    if isinstance(exc, ApiError):
        error = exc.body.get("error") if isinstance(exc.body, dict) else None
        if isinstance(error, dict):
            detail = f"{error.get('type', 'error')}: {error.get('reason', '')}".rstrip(": ")
        else:
            detail = str(error if error is not None else exc.message)[:200]
        return Failure("status", f"HTTP {exc.meta.status}: {detail}", exc.meta.status)
    if isinstance(exc, ConnectionTimeout):
        return Failure("timeout", f"request timed out: {_cause(exc)}")
    if isinstance(exc, TlsError):
        return Failure("tls", f"TLS error: {_cause(exc)}")
    if isinstance(exc, TransportConnectionError):
        return Failure("connection", f"cannot connect: {_cause(exc)}")
    if isinstance(exc, SerializationError):
        return Failure("protocol", f"unreadable response: {exc.message}")
    if isinstance(exc, TransportError):
        return Failure("connection", str(exc))
    if isinstance(exc, TimeoutError):
        return Failure("timeout", "timed out")
    return Failure("error", f"{type(exc).__name__}: {exc}")


def _cause(exc: TransportError) -> str:
    return str(exc.errors[0]) if exc.errors else str(exc.message)


