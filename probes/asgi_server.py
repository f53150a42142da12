"""Run ASGI apps (agent web, demo target, proxy control, webhook receiver) inside the caller's event loop.

The one place servers start, so every listener gets the same treatment:
- a port in use is one line, `cannot listen on HOST:PORT: address already in use`, exit 3 (CannotRun);
- `--web.config.file` (TLS and basic auth, exporter-toolkit's format) applied by `WebSecurity`;
- bounded resources (`Limits`): a cap on connections, header and body sizes, and a deadline for a
  request's headers, so slow or greedy clients cannot hold the port or the process's file descriptors.

uvicorn's own signal capture is disabled: the process owner decides what SIGINT, SIGTERM and SIGHUP
mean (a drill must revert its fault first, the agent reloads on SIGHUP).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import hashlib
import logging
import socket
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from probes.errors import CannotRun, UsageError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def split_host_port(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `[::1]:PORT` -> (host, port); raises UsageError."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise UsageError(f"invalid listen address {text!r}: expected HOST:PORT")
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"invalid port in {text!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"port out of range in {text!r}")
    return host, port


def cannot_listen(host: str, port: int, exc: OSError) -> CannotRun:
    """The one wording of a failed bind, whoever binds (uvicorn here, aiohttp in the proxy, Locust)."""
    if exc.errno == errno.EADDRINUSE:
        why = "address already in use"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "address not available on this host"
    else:
        why = (exc.strerror or str(exc)).lower()
    shown = f"[{host}]" if ":" in host else host
    return CannotRun(f"cannot listen on {shown}:{port}: {why}")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound to host:port; raises CannotRun (exit 3) if that is impossible."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CannotRun(f"cannot listen on {host}:{port}: cannot resolve {host!r}: {exc.strerror}") from None
    # One socket: for a name like `localhost`, the IPv4 address (what clients try first and what the
    # printed URL says works).
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Like every server: a restarted agent must not wait for TIME_WAIT of its previous connections.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise cannot_listen(host, port, exc) from None
    sock.set_inheritable(True)
    return sock


def check_can_listen(listen: str) -> None:
    """Fail now (exit 3) if `listen` cannot be bound, before starting something slow that would bind it
    later (Locust's metrics port)."""
    host, port = split_host_port(listen)
    bind_socket(host, port).close()


@dataclass(frozen=True, slots=True)
class WebSecurity:
    """What `--web.config.file` asks for; loaded and checked by probes.config.web_config."""

    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    require_client_cert: bool = False
    users: dict[str, bytes] = field(default_factory=dict)
    """User name -> bcrypt hash; empty: no basic auth."""

    @property
    def tls(self) -> bool:
        return self.cert_file is not None


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int = 512
    """Open connections (and requests in flight) before new ones get 503: bounded file descriptors."""
    header_timeout: float = 10.0
    """Seconds a client has to send a request's headers; then the connection is closed (slowloris)."""
    keep_alive: float = 5.0
    """Seconds an idle kept-alive connection stays open."""
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 1024 * 1024


DEFAULT_LIMITS = Limits()


class _GuardedH11(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for the headers of each request: uvicorn itself only times
    out idle kept-alive connections, so a client trickling one header byte a second holds a connection
    (and a file descriptor) forever."""

    header_timeout = DEFAULT_LIMITS.header_timeout
    max_connections = DEFAULT_LIMITS.max_connections
    _header_deadline: asyncio.TimerHandle | None = None
    _waiting_for: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline = None
        if len(self.connections) > self.max_connections:
            # uvicorn's own cap answers 503 only once a request has arrived, holding the descriptor until
            # then (forever, from a client that sends nothing): over the cap, answer and close at once.
            transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                            b"content-length: 20\r\nconnection: close\r\n\r\ntoo many connections")
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        self._waiting_for = self.cycle
        self._header_deadline = self.loop.call_later(
            self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_deadline is not None and self.cycle is not self._waiting_for:
            self._disarm()  # a new request cycle began: its headers are complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._disarm()
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.cycle is self._waiting_for and not self.transport.is_closing():
            self.transport.close()


def _guarded_protocol(limits: Limits) -> type[_GuardedH11]:
    return type("GuardedH11", (_GuardedH11,), {"header_timeout": limits.header_timeout,
                                               "max_connections": limits.max_connections})


async def _respond(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class SizeLimits:
    """431 for a header block over the limit (h11's own limit only applies to headers arriving in pieces),
    413 for a declared body over the limit; a chunked one that grows past it ends as a disconnect."""

    def __init__(self, app: App, max_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or ()
        if sum(len(k) + len(v) + 4 for k, v in headers) > self.max_header_bytes:
            await _respond(send, 431, f"request headers over {self.max_header_bytes} bytes\n")
            return
        length = dict(headers).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _respond(send, 413, f"request body over {self.max_bytes} bytes\n")
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, bounded, send)


class BasicAuth:
    """HTTP basic auth against bcrypt hashes, as exporter-toolkit does it: every path, 401 with
    WWW-Authenticate otherwise. Hash checks run in a thread (bcrypt takes tens of milliseconds by design),
    at most two at a time, and a verified user/password pair is remembered so a scrape every few seconds
    costs no bcrypt at all. An unknown user costs a hash check too, so timing does not tell users apart."""

    CACHE_SIZE = 256
    BEARER_PATHS = ("/-/faults",)
    """The fault API checks its own bearer token (constant time, always required): a request there that
    carries one goes on to that check, so drills keep working with the same token when basic auth is on.
    Basic credentials alone never reach the fault API, so a scrape password cannot inject faults."""

    def __init__(self, app: App, users: dict[str, bytes]) -> None:
        self.app = app
        self.users = users
        self._verified: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._hashing = asyncio.Semaphore(2)
        self._dummy: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization", b"")
        bearer = header[:7].lower() == b"bearer " and str(scope.get("path", "")).startswith(self.BEARER_PATHS)
        if bearer:
            await self.app(scope, receive, send)
            return
        if await self._allowed(header):
            # The credentials were for this layer: the app behind it (the demo API reads Authorization
            # as its own bearer token) must not see them.
            scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers") or () if k != b"authorization"]}
            await self.app(scope, receive, send)
            return
        await _respond(send, 401, "Unauthorized\n",
                       [(b"www-authenticate", b'Basic realm="probe-agent", charset="UTF-8"')])

    async def _allowed(self, header: bytes) -> bool:
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        key = (user, hashlib.sha256(password.encode()).digest())
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        hashed = self.users.get(user)
        if hashed is None:
            hashed = self._dummy_hash()
        async with self._hashing:
            ok = await asyncio.to_thread(_checkpw, password.encode(), hashed)
        if ok and user in self.users:
            self._verified[key] = None
            while len(self._verified) > self.CACHE_SIZE:
                self._verified.popitem(last=False)
            return True
        return False

    def _dummy_hash(self) -> bytes:
        if self._dummy is None:
            import bcrypt

            self._dummy = bcrypt.hashpw(b"probe-agent: no such user", bcrypt.gensalt(rounds=10))
        return self._dummy


def _checkpw(password: bytes, hashed: bytes) -> bool:
    import bcrypt

    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:  # a malformed hash is refused at load; never a reason to let someone in
        return False


def protect(app: App, security: WebSecurity | None, limits: Limits) -> App:
    """The app as served: body limit inside, basic auth outside (an unauthenticated client's body is
    never read)."""
    wrapped: App = SizeLimits(app, limits.max_body_bytes, limits.max_header_bytes)
    if security is not None and security.users:
        wrapped = BasicAuth(wrapped, security.users)
    return wrapped


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AsgiServer:
    """One uvicorn server on host:port (port 0 picks a free one); `url` is known after `start`."""

    def __init__(self, app: Any, host: str, port: int, *, security: WebSecurity | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.security = security
        self.limits = limits
        tls: dict[str, Any] = {}
        if security is not None and security.tls:
            tls = {"ssl_certfile": security.cert_file, "ssl_keyfile": security.key_file}
            if security.client_ca_file is not None:
                tls["ssl_ca_certs"] = security.client_ca_file
                tls["ssl_cert_reqs"] = ssl.CERT_REQUIRED if security.require_client_cert else ssl.CERT_OPTIONAL
        config = uvicorn.Config(
            protect(app, security, limits),
            host=host,
            port=port,
            log_level="warning",
            # No handlers of uvicorn's own: its records go through the process's formatter (redacted,
            # text or JSON) like every other line.
            log_config=None,
            access_log=False,
            lifespan="on",
            loop="none",
            http=_guarded_protocol(limits),
            timeout_graceful_shutdown=2,
            limit_concurrency=limits.max_connections,
            timeout_keep_alive=int(max(1, limits.keep_alive)),
            h11_max_incomplete_event_size=limits.max_header_bytes,
            **tls,
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.security is not None and self.security.tls else "http"
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                sock.close()
                exc = self._task.exception()
                raise CannotRun(f"cannot listen on {self.host}:{self.port}: {exc or 'startup failed'}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._task, timeout=5)
        self._task = None


async def start_server(app: Any, listen: str, *, fallback_to_free_port: bool = False,
                       security: WebSecurity | None = None, limits: Limits = DEFAULT_LIMITS) -> AsgiServer:
    """Serve `app` on `listen`; with the fallback, a taken port means a free one instead of an error."""
    host, port = split_host_port(listen)
    server = AsgiServer(app, host, port, security=security, limits=limits)
    try:
        await server.start()
    except CannotRun:
        if not fallback_to_free_port or port == 0:
            raise
        log.warning("%s is in use, listening on a free port instead", listen)
        server = AsgiServer(app, host, 0, security=security, limits=limits)
        await server.start()
    return server
