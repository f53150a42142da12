"""HTTP/2 for probes that ask for it (`http_version: "2"`): httpx with its `http2` extra, offered over TLS by
ALPN (the server may still answer HTTP/1.1, as with Go's client). aiohttp, the cheaper hot path, speaks
HTTP/1.1 only. One httpx client per TLS/proxy setting, built once and shared (never one per probe)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

import httpx
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from probes.errors import ProbeFailed
from probes.probers._http.addresses import preferred
from probes.probers._http.redirects import HopRequest

if TYPE_CHECKING:
    from probes.probers._http.client import Hop, _Marks

_clock = time.perf_counter


async def _resolved(req: HopRequest, marks: _Marks) -> tuple[str, dict[str, str], str | None]:
    """With ip_protocol, resolve here as blackbox does: connect to the chosen address, keep the name in the
    Host header and as the TLS server name (httpx's own connect has no family preference)."""
    target = URL(req.url)
    host = target.host or ""
    try:
        ipaddress.ip_address(host)
        return req.url, req.headers, None
    except ValueError:
        pass
    marks.resolve_start = _clock()
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, target.port, type=socket.SOCK_STREAM)
        address = str(preferred(infos, lambda info: info[0], *marks.prefer)[0][4][0])
    except OSError as exc:
        raise ProbeFailed("dns", f"cannot resolve host: {exc}") from None
    finally:
        marks.resolve_end = _clock()
    headers = dict(req.headers)
    if not any(k.lower() == "host" for k in headers):
        headers["Host"] = target.raw_authority
    return str(target.with_host(address)), headers, host


class Http2Transport:
    def __init__(self, user_agent: str) -> None:
        self._user_agent = user_agent
        self._clients: dict[tuple[Any, ...], httpx.AsyncClient] = {}

    def _client(self, ssl_context: ssl.SSLContext | bool, reuse: bool, proxy_url: str | None) -> httpx.AsyncClient:
        key = (id(ssl_context), reuse, proxy_url)
        client = self._clients.get(key)
        if client is None:
            # keep-alive off unless asked: a probe measures a fresh connection, like blackbox_exporter.
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=None if reuse else 0)
            client = httpx.AsyncClient(http2=True, verify=ssl_context, limits=limits, proxy=proxy_url,
                                       trust_env=False, follow_redirects=False, timeout=None,
                                       headers={"User-Agent": self._user_agent})
            self._clients[key] = client
        return client

    async def hop(self, req: HopRequest, ssl_context: ssl.SSLContext | bool, marks: _Marks, reuse: bool,
                  proxy_url: str | None) -> Hop:
        from probes.probers._http.client import Hop

        client = self._client(ssl_context, reuse, proxy_url)

        async def trace(event: str, info: dict[str, Any]) -> None:
            # "connection.*" direct, "http_proxy.start_tls.*" through a CONNECT tunnel.
            if event.endswith(".connect_tcp.complete"):
                marks.tcp_end = marks.tls_end = _clock()
                stream = info.get("return_value")
                addr = stream.get_extra_info("server_addr") if stream is not None else None
                if addr:
                    marks.peer = str(addr[0])
            elif event.endswith(".start_tls.complete"):
                marks.tls_end = _clock()
                stream = info.get("return_value")
                ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
                if ssl_object is not None:
                    marks.cert_der = ssl_object.getpeercert(binary_form=True)
                    marks.tls_version = ssl_object.version()

        extensions: dict[str, Any] = {"trace": trace}
        url, send_headers = req.url, req.headers
        if marks.prefer[0] is not None:
            url, send_headers, sni = await _resolved(req, marks)
            if sni:
                extensions["sni_hostname"] = sni
        if req.server_hostname:
            extensions["sni_hostname"] = req.server_hostname
        body: dict[str, Any] = {}
        if req.json is not None:
            body["json"] = req.json
        elif isinstance(req.data, bytes):
            body["content"] = req.data
        elif req.data is not None:
            body["data"] = req.data
        request = client.build_request(req.method, url, params=req.params, headers=send_headers,
                                       extensions=extensions, **body)
        resp = await client.send(request, stream=True)
        headers_at = _clock()
        headers = CIMultiDictProxy(CIMultiDict(resp.headers.multi_items()))
        version = {"HTTP/2": "HTTP/2.0"}.get(resp.http_version, resp.http_version)

        async def read(limit: int) -> bytes:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_raw():
                size += len(chunk)
                if size > limit:
                    raise ProbeFailed("body_too_large", f"response body exceeds max_body_bytes ({limit})")
                chunks.append(chunk)
            return b"".join(chunks)

        # The URL asked for, not the address connected to: redirects and cookies go by the name.
        return Hop(resp.status_code, headers, req.url, version, marks, headers_at, marks.cert_der,
                   read, resp.aclose)

    @staticmethod
    def error_reason(exc: BaseException) -> tuple[str, str] | None:
        if isinstance(exc, httpx.ProxyError):
            return "connection", f"proxy error: {exc}"
        if isinstance(exc, httpx.ConnectError):
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
                return "tls", f"TLS handshake failed: {text}"
            if "Name or service not known" in text or "nodename nor servname" in text:
                return "dns", f"cannot resolve host: {text}"
            return "connection", f"cannot connect: {text}"
        if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
            return "protocol", f"malformed response: {exc}"
        if isinstance(exc, httpx.TransportError):
            return "connection", f"connection error: {exc}"
        if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
            return "error", f"invalid URL: {exc}"
        return None

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
