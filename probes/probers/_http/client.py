"""The agent's one HTTP client: aiohttp in the hot path (cheapest CPU per probe), shared by
every probe, with blackbox_exporter's phase timings (resolve, connect, tls, processing, transfer).

Phases are taken without aiohttp's TraceConfig (which costs CPU on every request): a resolver wrapper
marks DNS, and a thin wrapper around the connector's event loop marks the moment the TCP socket is
connected and the TLS handshake is done (aiohttp connects the socket, then calls
`loop.create_connection(sock=..., ssl=...)` for the handshake).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDictProxy

from probes import __version__
from probes.clients.tls import build_ssl_context
from probes.config.models import TlsConfig
from probes.errors import ProbeFailed

USER_AGENT = f"probe-agent/{__version__}"
_clock = time.perf_counter


@dataclass(slots=True)
class _Marks:
    start: float
    resolve_start: float = 0.0
    resolve_end: float = 0.0
    tcp_end: float = 0.0
    tls_end: float = 0.0
    cert_der: bytes | None = None


_marks: ContextVar[_Marks | None] = ContextVar("probe_http_marks", default=None)


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: str
    elapsed: float
    phases: dict[str, float] = field(default_factory=dict)
    cert_der: bytes | None = None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _TimedResolver(AbstractResolver):
    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        marks = _marks.get()
        if marks is not None:
            marks.resolve_start = _clock()
        try:
            return await self._inner.resolve(host, port, family)
        finally:
            if marks is not None:
                marks.resolve_end = _clock()

    async def close(self) -> None:
        await self._inner.close()


class _TimedLoop:
    """Delegates to the real loop; notes when aiohttp hands a connected socket over for TLS."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._loop, name)
        if callable(value):
            # aiohttp calls loop methods several times per request: look each up through here once.
            self.__dict__[name] = value
        return value

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        marks = _marks.get()
        handshake_start = _clock()
        transport, protocol = await self._loop.create_connection(*args, **kwargs)
        if marks is not None:
            marks.tls_end = _clock()
            # Without TLS this call only wraps the socket: it belongs to connect.
            marks.tcp_end = handshake_start if kwargs.get("ssl") else marks.tls_end
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                marks.cert_der = ssl_object.getpeercert(binary_form=True)
        return transport, protocol


def _connector(*, fresh: bool) -> aiohttp.TCPConnector:
    # limit=0: the scheduler's semaphore is the one concurrency cap. No DNS cache: like
    # blackbox_exporter, every probe resolves, so a DNS outage shows up in probe results.
    return aiohttp.TCPConnector(
        force_close=fresh,
        limit=0,
        use_dns_cache=False,
        resolver=_TimedResolver(aiohttp.ThreadedResolver()),
        enable_cleanup_closed=False,
    )


def _error_reason(exc: BaseException) -> tuple[str, str]:
    # Order matters: the DNS and certificate errors are subclasses of ClientConnectorError.
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns", f"cannot resolve host: {exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "tls", f"certificate verification failed: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "tls", f"TLS handshake failed: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection", f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "redirect", f"too many redirects ({len(exc.history)})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection", "server closed the connection without a response"
    if isinstance(exc, aiohttp.ClientOSError | ConnectionError):
        return "connection", f"connection error: {exc}"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "protocol", f"malformed response body: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "protocol", f"malformed response: {exc.message}"
    if isinstance(exc, aiohttp.InvalidURL):
        return "error", f"invalid URL: {exc}"
    return "error", f"{type(exc).__name__}: {exc}"


def tls_context(tls: TlsConfig | None) -> ssl.SSLContext | bool:
    return True if tls is None else build_ssl_context(tls)


class HttpClient:
    """Built once per agent inside its event loop; `request` is safe to call concurrently."""

    def __init__(self) -> None:
        self._fresh: aiohttp.ClientSession | None = None
        self._reuse: aiohttp.ClientSession | None = None
        self._tls: dict[tuple[Any, ...], ssl.SSLContext | bool] = {}
        self._closed = False

    def _session(self, reuse: bool) -> aiohttp.ClientSession:
        session = self._reuse if reuse else self._fresh
        if session is None:
            if self._closed:
                raise ProbeFailed("error", "the agent is shutting down")
            connector = _connector(fresh=not reuse)
            session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
            )
            # The session checks that both use the same loop at construction; swap afterwards.
            connector._loop = _TimedLoop(connector._loop)  # type: ignore[assignment]
            if reuse:
                self._reuse = session
            else:
                self._fresh = session
        return session

    def ssl_for(self, tls: TlsConfig | None) -> ssl.SSLContext | bool:
        if tls is None:
            return True
        key = tuple(tls.model_dump().values())
        if key not in self._tls:
            self._tls[key] = tls_context(tls)
        return self._tls[key]

    async def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        tls: TlsConfig | None = None,
        follow_redirects: bool = True,
        max_redirects: int = 10,
        reuse_connections: bool = False,
        max_body_bytes: int = 4 * 1024 * 1024,
    ) -> HttpResponse:
        """One request, body read up to `max_body_bytes`; raises ProbeFailed with a reason."""
        # Built before the clock starts: the first run would otherwise count loading the CA bundle
        # (tens of milliseconds) as its connect phase.
        session = self._session(reuse_connections)
        try:
            ssl_context = self.ssl_for(tls)
        except (OSError, ssl.SSLError) as exc:
            raise ProbeFailed("tls", f"cannot load the TLS files: {exc}") from None
        marks = _Marks(start=_clock())
        token = _marks.set(marks)
        headers_at = 0.0
        try:
            async with asyncio.timeout(timeout):
                async with session.request(
                    method,
                    url,
                    params=params or None,
                    headers=headers or None,
                    json=json,
                    data=data,
                    ssl=ssl_context,
                    server_hostname=tls.server_name if tls else None,
                    allow_redirects=follow_redirects,
                    max_redirects=max_redirects,
                ) as resp:
                    headers_at = _clock()
                    cert_der = marks.cert_der
                    if cert_der is None and reuse_connections:
                        cert_der = _reused_peer_cert(resp)
                    body = await _read_capped(resp, max_body_bytes)
                    end = _clock()
                    return HttpResponse(
                        status=resp.status,
                        headers=resp.headers,
                        body=body,
                        url=str(resp.url),
                        elapsed=end - marks.start,
                        phases=_phases(marks, headers_at, end),
                        cert_der=cert_der,
                    )
        except TimeoutError:
            stage = "waiting for the response body" if headers_at else "waiting for response headers"
            if not headers_at and not marks.tcp_end and marks.resolve_start:
                stage = "connecting"
            raise ProbeFailed("timeout", f"timed out after {timeout:g}s {stage}") from None
        except ProbeFailed:
            raise
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            reason, message = _error_reason(exc)
            raise ProbeFailed(reason, message) from None
        finally:
            _marks.reset(token)

    async def aclose(self) -> None:
        self._closed = True
        for session in (self._fresh, self._reuse):
            if session is not None:
                await session.close()
        self._fresh = self._reuse = None


def _reused_peer_cert(resp: aiohttp.ClientResponse) -> bytes | None:
    """The certificate of a kept-alive connection: no handshake in this request marked it, and without
    it cert_expires_after would pass unchecked and the expiry metric would vanish."""
    # A small body arrives with the headers and releases the connection at once, so `resp.connection`
    # is often None already; the protocol (and its transport) stays referenced by the response.
    protocol = getattr(resp, "_protocol", None)  # not `or`: an empty ResponseHandler is falsy
    if protocol is None and resp.connection is not None:
        protocol = resp.connection.protocol
    transport = protocol.transport if protocol is not None else None
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    length = resp.content_length
    if length is not None and length > limit:
        raise ProbeFailed("body_too_large", f"response body of {length} bytes exceeds max_body_bytes ({limit})")
    if length is not None and resp.headers.get("Content-Encoding") is None:
        return await resp.read()
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await resp.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ProbeFailed("body_too_large", f"response body exceeds max_body_bytes ({limit})")
        chunks.append(chunk)


def _phases(m: _Marks, headers_at: float, end: float) -> dict[str, float]:
    """Split [start, end] into blackbox_exporter's phases so that they add up to the total."""
    if m.tcp_end:  # a new connection was made
        resolve_end = m.resolve_end or m.start
        tls_end = m.tls_end or m.tcp_end
        return {
            "resolve": resolve_end - m.start,
            "connect": m.tcp_end - resolve_end,
            "tls": tls_end - m.tcp_end,
            "processing": headers_at - tls_end,
            "transfer": end - headers_at,
        }
    return {"resolve": 0.0, "connect": 0.0, "tls": 0.0,
            "processing": headers_at - m.start, "transfer": end - headers_at}
