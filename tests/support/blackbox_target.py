"""One local target with every behaviour the blackbox differential test needs (redirect chains, cookies set
on a redirect, repeated headers, gzip/br/deflate bodies, Last-Modified, big bodies, basic and bearer auth,
a Host check), served over HTTP, over HTTPS (two certificates) and over HTTP/2 (hypercorn); plus a forward
proxy (absolute-form requests and CONNECT) for `proxy_url`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import socket
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import brotli
from aiohttp import web

from tests.support.httpserver import BackgroundLoop

TEXT = b"ok body, decoded-text " * 20
TOKEN = "s3cret-token"
USER, PASSWORD = "probe", "pa55"
VHOST = "vhost.test"


def _raw_deflate(data: bytes) -> bytes:
    encoder = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return encoder.compress(data) + encoder.flush()


async def ok(request: web.Request) -> web.Response:
    return web.Response(body=TEXT, headers={"Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"})


async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status")


async def redirect(request: web.Request) -> web.Response:
    left = int(request.match_info["n"])
    if left <= 0:
        return web.Response(text="landed")
    raise web.HTTPFound(f"/redirect/{left - 1}")


async def cookie_set(request: web.Request) -> web.Response:
    resp = web.HTTPFound("/cookie/check")
    resp.set_cookie("session", "abc", path="/")
    raise resp


async def cookie_check(request: web.Request) -> web.Response:
    if request.cookies.get("session") != "abc":
        return web.Response(status=400, text="no session cookie")
    return web.Response(text="session ok")


async def repeated(request: web.Request) -> web.Response:
    resp = web.Response(text="repeated")
    resp.headers.add("X-Multi", "one")
    resp.headers.add("X-Multi", "two")
    return resp


async def encoded(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    body = {"gzip": gzip.compress, "br": brotli.compress, "deflate": _raw_deflate,
            "plain": lambda b: b}[kind](TEXT)
    headers = {} if kind == "plain" else {"Content-Encoding": kind}
    return web.Response(body=body, headers={**headers, "Content-Type": "text/plain"})


async def big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * int(request.query.get("size", "1000")))


async def basic(request: web.Request) -> web.Response:
    wanted = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if request.headers.get("Authorization") != wanted:
        return web.Response(status=401, text="who are you")
    return web.Response(text="welcome")


async def bearer(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return web.Response(status=401, text="bad token")
    return web.Response(text="welcome")


CLIENT_ID, CLIENT_SECRET = "probe-client", "client-s3cret"


async def token(request: web.Request) -> web.Response:
    """An OAuth2 token endpoint (client credentials grant), accepting the credentials in a Basic header or
    in the form, as RFC 6749 allows."""
    form = await request.post()
    given = (form.get("client_id"), form.get("client_secret"))
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        given = (user, password)
    if form.get("grant_type") != "client_credentials" or given != (CLIENT_ID, CLIENT_SECRET):
        return web.json_response({"error": "invalid_client"}, status=401)
    return web.json_response({"access_token": TOKEN, "token_type": "bearer", "expires_in": 3600})


async def post(request: web.Request) -> web.Response:
    if request.method != "POST" or await request.read() != b"ping":
        return web.Response(status=405, text="POST ping")
    return web.Response(text="pong")


async def host(request: web.Request) -> web.Response:
    return web.Response(status=200 if request.host.split(":")[0] == VHOST else 421, text=request.host)


async def via_proxy(request: web.Request) -> web.Response:
    return web.Response(status=200 if request.headers.get("X-Via-Proxy") else 403, text="via proxy?")


def app() -> web.Application:
    application = web.Application()
    r = application.router
    r.add_get("/ok", ok)
    r.add_get("/status/{code}", status)
    r.add_get("/redirect/{n}", redirect)
    r.add_get("/cookie/set", cookie_set)
    r.add_get("/cookie/check", cookie_check)
    r.add_get("/repeated", repeated)
    r.add_get("/encoded/{kind}", encoded)
    r.add_get("/big", big)
    r.add_get("/basic", basic)
    r.add_get("/bearer", bearer)
    r.add_route("*", "/post", post)
    r.add_post("/token", token)
    r.add_get("/host", host)
    r.add_get("/via-proxy", via_proxy)
    return application


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The HTTP/2 server's app: /ok as above."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200 if scope["path"] == "/ok" else 404,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": TEXT})


@contextlib.contextmanager
def serve_http2(cert_file: str, key_file: str) -> Iterator[str]:
    """hypercorn with TLS offering h2 (ALPN): a real HTTP/2 server; yields its https URL."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections made before hypercorn runs wait in the backlog
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.certfile, config.keyfile = cert_file, key_file
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = config.errorlog = None
    loop = BackgroundLoop()
    stop = asyncio.Event()
    started = threading.Event()

    async def run() -> None:
        started.set()
        await serve(asgi_app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    future = asyncio.run_coroutine_threadsafe(run(), loop.loop)
    try:
        started.wait(10)
        yield f"https://127.0.0.1:{port}"
    finally:
        loop.loop.call_soon_threadsafe(stop.set)
        with contextlib.suppress(Exception):
            future.result(10)
        loop.close()
        with contextlib.suppress(OSError):  # hypercorn closed the descriptor already
            sock.close()


class ForwardProxy:
    """A forward proxy: CONNECT tunnels, and absolute-form requests forwarded with `X-Via-Proxy: 1`."""

    def __init__(self) -> None:
        self.connects = 0
        self.forwarded = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, _, rest = head.decode("latin-1").partition("\r\n")
            method, target, version = line.split(" ", 2)
            if method == "CONNECT":
                self.connects += 1
                host, port = target.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                self.forwarded += 1
                without_scheme = target.split("://", 1)[1]
                hostport, _, path = without_scheme.partition("/")
                host, _, port = hostport.partition(":")
                up_reader, up_writer = await asyncio.open_connection(host, int(port or 80))
                headers = [h for h in rest.split("\r\n") if h and not h.lower().startswith(("proxy-", "connection"))]
                up_writer.write(f"{method} /{path} {version}\r\n".encode("latin-1") + "\r\n".join(
                    [*headers, "X-Via-Proxy: 1", "Connection: close"]).encode("latin-1") + b"\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


@contextlib.contextmanager
def serve_proxy() -> Iterator[tuple[str, ForwardProxy]]:
    loop = BackgroundLoop()
    proxy = ForwardProxy()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(proxy.handle, "127.0.0.1", 0)

    server = loop.call(start())
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", proxy
    finally:
        server.close()
        loop.close()
