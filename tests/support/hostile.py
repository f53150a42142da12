"""A raw-socket HTTP server on 127.0.0.1 that misbehaves on request: hangs, huge bodies, garbage,
resets, redirect loops, byte-per-second drips. Raw asyncio rather than a framework, because frameworks
refuse to send most of these."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

HEALTHY = json.dumps({
    "status": "healthy",
    "components": [{"name": "db", "status": "healthy"}, {"name": "index", "status": "healthy"}],
    "total": 3,
    "version": "1.2.3",
    "tags": ["a", "b"],
}).encode()
DEGRADED = json.dumps({
    "status": "degraded",
    "components": [{"name": "db", "status": "healthy"}, {"name": "index", "status": "down"}],
    "total": 0,
}).encode()


def _response(status: int, body: bytes, content_type: str = "application/json",
              extra: dict[str, str] | None = None) -> bytes:
    head = (f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n")
    for key, value in (extra or {}).items():
        head += f"{key}: {value}\r\n"
    return head.encode() + b"\r\n" + body


class HostileServer:
    def __init__(self) -> None:
        self.port = 0
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> HostileServer:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            self.requests += 1
            parts = request_line.decode().split()
            target = urlsplit(parts[1] if len(parts) > 1 else "/")
            await self._route(target.path, parse_qs(target.query), writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _route(self, path: str, query: dict[str, list[str]], writer: asyncio.StreamWriter) -> None:
        if path == "/ok":
            writer.write(_response(200, HEALTHY, extra={"X-Version": "1.2.3"}))
        elif path == "/degraded":
            writer.write(_response(200, DEGRADED))
        elif path.startswith("/status/"):
            writer.write(_response(int(path.rsplit("/", 1)[1]), HEALTHY))
        elif path == "/slow":
            await asyncio.sleep(int(query.get("ms", ["100"])[0]) / 1000)
            writer.write(_response(200, HEALTHY))
        elif path == "/repeat":
            # `s` repeated `n` times, then `end`: bodies that make a backtracking regex take forever.
            text = query.get("s", ["a"])[0] * int(query.get("n", ["1"])[0]) + query.get("end", [""])[0]
            writer.write(_response(200, text.encode(), content_type="text/plain"))
        elif path == "/text":
            writer.write(_response(200, b"this is <not> json", content_type="text/plain"))
        elif path == "/hang":
            await asyncio.sleep(3600)
        elif path == "/big":
            size = 64 * 1024 * 1024
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            chunk = b"x" * 65536
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        elif path == "/big-chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"y" * 65536
            for _ in range(1024):
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif path == "/garbage":
            writer.write(b"\x00\x01NOT HTTP AT ALL\r\n\r\n")
        elif path == "/reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        elif path == "/redirect":
            writer.write(_response(302, b"", extra={"Location": "/redirect"}))
        elif path == "/drip":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):
                writer.write(b"z")
                await writer.drain()
                await asyncio.sleep(1)
        else:
            writer.write(_response(404, b'{"error": "not found"}'))
        await writer.drain()


@contextlib.contextmanager
def hostile_server() -> Iterator[HostileServer]:
    server = HostileServer().start()
    try:
        yield server
    finally:
        server.stop()
