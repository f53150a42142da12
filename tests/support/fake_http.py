"""An in-process stand-in for the agent's HttpClient, for unit tests of probers' own logic (what they do with
an answer); the real client is tested against real servers in tests/integration."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from probes.probers._http.client import HttpResponse

Handler = Callable[[str, str, dict[str, Any]], Awaitable[HttpResponse] | HttpResponse]
PHASES = {"resolve": 0.001, "connect": 0.002, "tls": 0.0, "processing": 0.003, "transfer": 0.001}


def response(status: int = 200, body: Any = None, headers: dict[str, str] | None = None,
             elapsed: float = 0.007, cert_der: bytes | None = None) -> HttpResponse:
    raw = body.encode() if isinstance(body, str) else json.dumps(body if body is not None else {}).encode()
    return HttpResponse(status=status, headers=CIMultiDictProxy(CIMultiDict(headers or {})), body=raw,
                        url="http://api.test/", elapsed=elapsed, phases=dict(PHASES), cert_der=cert_der)


class FakeHttp:
    """Stands in for HttpClient: records each request and answers with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        self.calls.append((method, url, kwargs))
        answer = self.handler(method, url, kwargs)
        if isinstance(answer, HttpResponse):
            return answer
        return await answer
