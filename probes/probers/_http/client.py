"""The agent's one HTTP client: aiohttp in the hot path (cheapest CPU per probe), shared by
every probe, with blackbox_exporter's phase timings (resolve, connect, tls, processing, transfer).

Phases are taken without aiohttp's TraceConfig (which costs CPU on every request): a resolver wrapper
marks DNS, and a thin wrapper around the connector's event loop marks the moment the TCP socket is
connected and the TLS handshake is done (aiohttp connects the socket, then calls
`loop.create_connection(sock=..., ssl=...)` for the handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
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
from probes.probers._http.addresses import preferred
from probes.probers._http.auth import Auth
from probes.probers._http.compression import decode
from probes.probers._http.http2 import Http2Transport
from probes.probers._http.redirects import HopRequest, RunCookies, next_request, with_cookies

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
    tls_version: str | None = None
    peer: str | None = None
    prefer: tuple[str | None, bool] = (None, True)
    """ip_protocol and ip_protocol_fallback of the request, for the resolver."""


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
    method: str = "GET"
    request_headers: Mapping[str, str] = field(default_factory=dict)
    """What was actually sent (with the client's defaults), for the debug view."""
    redirects: int = 0
    """Redirect responses received (blackbox's probe_http_redirects)."""
    redirect_limit: bool = False
    """This is a redirect that was not followed because max_redirects was reached."""
    http_version: str = "HTTP/1.1"
    tls_version: str | None = None
    """"TLS 1.3" etc. when the final response came over TLS."""
    content_length: int = -1
    """The Content-Length header, -1 without one."""
    peer: str | None = None
    """The address the first request connected to (None when a kept-alive connection was reused)."""
    dns_seconds: float = 0.0

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class ResponseFailed(ProbeFailed):
    """A response arrived, but its body could not be taken (too large, not decodable): the status and headers
    are still facts of the run, as blackbox reports the real status of a body over its limit."""

    def __init__(self, failed: ProbeFailed, response: HttpResponse) -> None:
        super().__init__(failed.reason, failed.message)
        self.response = response


_TLS_NAMES = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}


def tls_name(version: str | None) -> str | None:
    return None if version is None else _TLS_NAMES.get(version, version)


class _TimedResolver(AbstractResolver):
    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        marks = _marks.get()
        if marks is not None:
            marks.resolve_start = _clock()
        try:
            found = await self._inner.resolve(host, port, family)
        finally:
            if marks is not None:
                marks.resolve_end = _clock()
        return found if marks is None else preferred(found, lambda r: r["family"], *marks.prefer)

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
                marks.tls_version = ssl_object.version()
            peer = transport.get_extra_info("peername")
            if peer:
                marks.peer = str(peer[0])
        return transport, protocol


    async def start_tls(self, transport: Any, protocol: Any, sslcontext: Any, **kwargs: Any) -> Any:
        # TLS over an established connection: aiohttp's way through a CONNECT proxy.
        marks = _marks.get()
        started = _clock()
        tls_transport = await self._loop.start_tls(transport, protocol, sslcontext, **kwargs)
        if marks is not None:
            marks.tcp_end, marks.tls_end = marks.tcp_end or started, _clock()
            ssl_object = tls_transport.get_extra_info("ssl_object") if tls_transport is not None else None
            if ssl_object is not None:
                marks.cert_der = ssl_object.getpeercert(binary_form=True)
                marks.tls_version = ssl_object.version()
        return tls_transport


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


@dataclass(slots=True)
class Hop:
    """One response, headers received: a redirect to follow or the final answer."""

    status: int
    headers: CIMultiDictProxy[str]
    url: str
    version: str
    marks: _Marks
    headers_at: float
    cert_der: bytes | None
    read: Callable[[int], Awaitable[bytes]]
    release: Callable[[], Awaitable[None]]
    sent_headers: Mapping[str, str] | None = None
    """The request headers as the client sent them (its defaults included), when it tells."""


class HttpClient:
    """Built once per agent inside its event loop; `request` is safe to call concurrently."""

    def __init__(self) -> None:
        self._fresh: aiohttp.ClientSession | None = None
        self._reuse: aiohttp.ClientSession | None = None
        self._tls: dict[tuple[Any, ...], ssl.SSLContext | bool] = {}
        self._h2: Http2Transport | None = None
        self._tokens: dict[Any, tuple[str, float]] = {}
        """oauth2 tokens until they expire."""
        self._closed = False

    def _session(self, reuse: bool) -> aiohttp.ClientSession:
        session = self._reuse if reuse else self._fresh
        if session is None:
            if self._closed:
                raise ProbeFailed("error", "the agent is shutting down")
            connector = _connector(fresh=not reuse)
            # No session cookie jar: a run keeps its own (RunCookies), so nothing is carried across runs.
            session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=False,
            )
            # The session checks that both use the same loop at construction; swap afterwards.
            connector._loop = _TimedLoop(connector._loop)  # type: ignore[assignment]
            if reuse:
                self._reuse = session
            else:
                self._fresh = session
        return session

    def _http2(self) -> Http2Transport:
        if self._h2 is None:
            if self._closed:
                raise ProbeFailed("error", "the agent is shutting down")
            self._h2 = Http2Transport(USER_AGENT)
        return self._h2

    def ssl_for(self, tls: TlsConfig | None, *, http2: bool = False) -> ssl.SSLContext | bool:
        """HTTP/2 gets contexts of its own: httpx sets ALPN on the context it is given, and aiohttp on the
        same context would then be offered h2, which it cannot speak."""
        if tls is None and not http2:
            return True
        key = (http2, *(tls or TlsConfig()).model_dump().values())
        if key not in self._tls:
            self._tls[key] = tls_context(tls or TlsConfig())
        return self._tls[key]

    async def _aiohttp_hop(self, req: HopRequest, ssl_context: ssl.SSLContext | bool, marks: _Marks,
                           reuse: bool, proxy_url: str | None) -> Hop:
        session = self._session(reuse)
        resp = await session.request(
            req.method, req.url, params=req.params or None, headers=req.headers or None, json=req.json,
            data=req.data, ssl=ssl_context, server_hostname=req.server_hostname, allow_redirects=False,
            proxy=proxy_url, skip_auto_headers=_NO_AUTO_ENCODING)
        headers_at = _clock()
        cert_der = marks.cert_der
        if cert_der is None and reuse:
            cert_der = _reused_peer_cert(resp)
            if cert_der is not None:
                marks.tls_version = _reused_tls_version(resp)
        version = f"HTTP/{resp.version.major}.{resp.version.minor}" if resp.version else "HTTP/1.1"
        return Hop(resp.status, resp.headers, str(resp.url), version, marks, headers_at, cert_der,
                   lambda limit: _read_capped(resp, limit), _releaser(resp), resp.request_info.headers)

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
        compression: str | None = None,
        proxy_url: str | None = None,
        auth: Auth | None = None,
        ip_protocol: str | None = None,
        ip_protocol_fallback: bool = True,
        http_version: str = "1.1",
    ) -> HttpResponse:
        """One request and its redirects, body read up to `max_body_bytes`; raises ProbeFailed with a reason."""
        # Built before the clock starts: the first run would otherwise count loading the CA bundle
        # (tens of milliseconds) as its connect phase.
        try:
            ssl_context = self.ssl_for(tls, http2=http_version == "2")
        except (OSError, ssl.SSLError) as exc:
            raise ProbeFailed("tls", f"cannot load the TLS files: {exc}") from None
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = await self._authorization(auth, timeout, tls)
        server_name = tls.server_name if tls is not None and tls.server_name else _host_header(headers)
        req = HopRequest(method, url, headers, params or None, json, data, server_name)
        h2 = self._http2() if http_version == "2" else None
        if h2 is None:
            self._session(reuse_connections)
        start = _clock()
        current: _Marks | None = None
        first: _Marks | None = None
        hop: Hop | None = None
        unreleased: Hop | None = None  # a response to let go of, whatever happens
        phases = dict.fromkeys(PHASES, 0.0)
        cookies: RunCookies | None = None
        redirects = 0
        token = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    current = _Marks(start=_clock(), prefer=(ip_protocol, ip_protocol_fallback))
                    first = first or current
                    token = _marks.set(current)
                    hop = None
                    if h2 is not None:
                        hop = await h2.hop(req, ssl_context, current, reuse_connections, proxy_url)
                    else:
                        hop = await self._aiohttp_hop(req, ssl_context, current, reuse_connections, proxy_url)
                    unreleased = hop
                    _marks.reset(token)
                    token = None
                    follow = next_request(req, hop.status, hop.headers.get("Location"))
                    if follow is None:
                        break
                    redirects += 1
                    if not follow_redirects or redirects > max_redirects:
                        break
                    _add(phases, _phases(current, hop.headers_at, hop.headers_at))
                    set_cookies = hop.headers.getall("Set-Cookie", [])
                    if set_cookies:
                        cookies = cookies or RunCookies()
                        cookies.store(set_cookies, hop.url)
                    unreleased = None
                    await hop.release()
                    req = with_cookies(follow, cookies)
                limited = follow is not None
                # A redirect not followed is the answer as it came; its body is not read (blackbox's way).
                raw = b"" if limited else await hop.read(max_body_bytes)
                end = _clock()
                unreleased = None
                await hop.release()
        except TimeoutError:
            headers_at = hop.headers_at if hop is not None else 0.0
            stage = "waiting for the response body" if headers_at else "waiting for response headers"
            if not headers_at and current is not None and not current.tcp_end and current.resolve_start:
                stage = "connecting"
            raise ProbeFailed("timeout", f"timed out after {timeout:g}s {stage}") from None
        except ProbeFailed as failed:
            if hop is None or failed.reason != "body_too_large":
                raise
            raise ResponseFailed(failed, self._response(hop, req, b"", start, _clock(), phases, redirects,
                                                         first)) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            reason, message = _error_reason(exc)
            raise ProbeFailed(reason, message) from None
        except Exception as exc:
            found = h2.error_reason(exc) if h2 is not None else None
            if found is None:
                raise
            raise ProbeFailed(*found) from None
        finally:
            if token is not None:
                _marks.reset(token)
            if unreleased is not None:
                # A body left half read (timeout, too large): the connection is closed, never reused.
                with contextlib.suppress(Exception):
                    await unreleased.release()
        _add(phases, _phases(hop.marks, hop.headers_at, end))
        response = self._response(hop, req, raw, start, end, phases, redirects, first)
        response.redirect_limit = limited and follow_redirects
        try:
            response.body = decode(raw, compression, max_body_bytes)
        except ProbeFailed as failed:
            response.body = b""
            raise ResponseFailed(failed, response) from None
        return response

    async def _authorization(self, auth: Auth, timeout: float, tls: TlsConfig | None) -> str:
        async def post(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
            resp = await self.request("POST", url, timeout=timeout, data=form, headers=headers, tls=tls)
            return resp.status, resp.body

        try:
            async with asyncio.timeout(timeout):
                return await auth.header(post, self._tokens)
        except TimeoutError:
            raise ProbeFailed("timeout", f"timed out after {timeout:g}s fetching the oauth2 token") from None

    @staticmethod
    def _response(hop: Hop, req: HopRequest, body: bytes, start: float, end: float, phases: dict[str, float],
                  redirects: int, first: _Marks | None) -> HttpResponse:
        length = hop.headers.get("Content-Length", "")
        dns = (first.resolve_end - first.resolve_start) if first is not None and first.resolve_end else 0.0
        return HttpResponse(
            status=hop.status, headers=hop.headers, body=body, url=hop.url, elapsed=end - start,
            phases=phases, cert_der=hop.cert_der, redirects=redirects, http_version=hop.version,
            tls_version=tls_name(hop.marks.tls_version) if hop.cert_der is not None else None,
            content_length=int(length) if length.isdigit() else -1,
            peer=first.peer if first is not None else None, dns_seconds=dns,
            method=req.method, request_headers=hop.sent_headers if hop.sent_headers is not None else req.headers,
        )

    async def aclose(self) -> None:
        self._closed = True
        for session in (self._fresh, self._reuse):
            if session is not None:
                await session.close()
        self._fresh = self._reuse = None
        if self._h2 is not None:
            await self._h2.aclose()
            self._h2 = None


PHASES = ("resolve", "connect", "tls", "processing", "transfer")
_NO_AUTO_ENCODING = frozenset({"Accept-Encoding"})


def _releaser(resp: aiohttp.ClientResponse) -> Callable[[], Awaitable[None]]:
    async def release() -> None:
        resp.release()

    return release


def _add(total: dict[str, float], more: dict[str, float]) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0.0) + value


def _host_header(headers: dict[str, str]) -> str | None:
    """A configured Host header names the TLS server (virtual hosts probed by address), as in blackbox."""
    value = next((v for k, v in headers.items() if k.lower() == "host"), None)
    if not value:
        return None
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value.strip("[]")


def _reused_tls_version(resp: aiohttp.ClientResponse) -> str | None:
    protocol = getattr(resp, "_protocol", None)
    transport = protocol.transport if protocol is not None else None
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return None if ssl_object is None else str(ssl_object.version())


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
