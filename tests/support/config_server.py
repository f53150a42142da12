"""A config server for fleet tests: serves one agent.yaml at /fleet.yaml with an ETag and Last-Modified and
answers 304 to a matching conditional request, like nginx or an object store would; and misbehaves on
demand (500, a huge body, a hang) the way config servers do in production."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate

from aiohttp import web

from tests.support.httpserver import serve_aiohttp


@dataclass
class ConfigServer:
    text: str
    mode: str = "serve"  # serve | error | huge | hang
    huge_bytes: int = 2 * 1024 * 1024
    hang_seconds: float = 3.0
    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    last_modified: str = field(default_factory=lambda: formatdate(usegmt=True))

    def set_text(self, text: str) -> None:
        self.text = text
        self.mode = "serve"
        self.last_modified = formatdate(usegmt=True)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.text.encode()).hexdigest()[:16] + '"'

    @property
    def config_url(self) -> str:
        return f"{self.url}/fleet.yaml"

    def statuses(self) -> list[str]:
        return [r["answer"] for r in self.requests]


def _app(state: ConfigServer) -> web.Application:
    async def fleet(request: web.Request) -> web.StreamResponse:
        record = {k.lower(): v for k, v in request.headers.items()}
        state.requests.append(record)
        if state.mode == "error":
            record["answer"] = "500"
            return web.Response(status=500, text="upstream unavailable")
        if state.mode == "hang":
            record["answer"] = "hang"
            await asyncio.sleep(state.hang_seconds)
            return web.Response(text=state.text)
        if state.mode == "huge":
            record["answer"] = "huge"
            response = web.StreamResponse()  # no Content-Length: the reader must count
            await response.prepare(request)
            chunk = b"# " + b"x" * 65532 + b"\n"
            with contextlib.suppress(ConnectionError):
                for _ in range(state.huge_bytes // len(chunk) + 1):
                    await response.write(chunk)
            return response
        if request.headers.get("If-None-Match") == state.etag:
            record["answer"] = "304"
            return web.Response(status=304, headers={"ETag": state.etag})
        record["answer"] = "200"
        return web.Response(text=state.text, content_type="application/yaml",
                            headers={"ETag": state.etag, "Last-Modified": state.last_modified})

    app = web.Application()
    app.router.add_get("/fleet.yaml", fleet)
    return app


@contextlib.contextmanager
def config_server(text: str, *, host: str = "127.0.0.1") -> Iterator[ConfigServer]:
    state = ConfigServer(text)
    with serve_aiohttp(_app(state), host=host) as url:
        state.url = url
        yield state
