"""Fault injection inside any ASGI app: the demo target applies the proxy's fault model in-process.

An `abort` needs the connection's transport, which ASGI does not expose: uvicorn's `send` is a method
of an object holding it. So wrap the app as the outermost layer, or have the outermost layer call
`remember_transport(scope, send)` before it wraps `send`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers

from probes.faults.apply import (
    FAULT_HEADER,
    STATUS_ABORTED,
    STATUS_CLIENT_GAVE_UP,
    fault_response,
    hold,
    reset_connection,
    rewritten,
)
from probes.faults.store import ActiveFault, FaultStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Set in the scope when a fault ended the request without a response, so that an outer metrics
# layer can still count it (with the nginx-style status from probes.faults.apply).
UNANSWERED_STATUS = "probe_agent.unanswered_status"

_TRANSPORT = "probe_agent.transport"

DEFAULT_EXEMPT = ("/-/faults", "/metrics")


def remember_transport(scope: Scope, send: Send) -> None:
    if _TRANSPORT not in scope:
        scope[_TRANSPORT] = getattr(getattr(send, "__self__", None), "transport", None)


class FaultMiddleware:
    def __init__(self, app: ASGIApp, store: FaultStore, *, exempt: tuple[str, ...] = DEFAULT_EXEMPT) -> None:
        self.app = app
        self.store = store
        # Faults never touch the fault API itself (a drill must always be able to revert) nor /metrics.
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or any(path == p or path.startswith(p + "/") for p in self.exempt):
            await self.app(scope, receive, send)
            return
        decision = self.store.decide(scope["method"], path, Headers(scope=scope))
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)
        # Only the app's own answer is rewritten; `send` itself stays for the transport lookup of an abort.
        app_send = _rewriting(send, decision.rewrites) if decision.rewrites else send
        active = decision.terminal
        if active is None:
            await self.app(scope, receive, app_send)
            return
        kind = active.fault.type
        if kind in ("error", "unready"):
            await _respond(send, active)
        elif kind == "abort":
            remember_transport(scope, send)
            await _abort(scope, send)
        elif kind == "timeout":
            await self._hold(scope, receive, app_send, active)

    async def _hold(self, scope: Scope, receive: Receive, send: Send, active: ActiveFault) -> None:
        # Read the request body first so that the next receive() reports only a disconnect;
        # keep it to replay if the fault goes away before the client does.
        buffered: list[Message] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope[UNANSWERED_STATUS] = STATUS_CLIENT_GAVE_UP
                return
            buffered.append(message)
            if not message.get("more_body", False):
                break

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        if await hold(self.store, active, client_gone()):
            scope[UNANSWERED_STATUS] = STATUS_CLIENT_GAVE_UP
            return

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


def _rewriting(send: Send, rewrites: tuple[ActiveFault, ...]) -> Send:
    """A `send` that holds the response back until its body is complete, then sends it edited."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def send_rewritten(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        headers = list(start.get("headers", []))
        encoding = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-encoding"), None)
        edited = rewritten(body, encoding, rewrites)
        if edited is not None:
            body = edited
            headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"etag")]
            headers += [(b"content-length", str(len(body)).encode()),
                        (FAULT_HEADER.lower().encode(), ",".join(a.id for a in rewrites).encode())]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return send_rewritten


async def _respond(send: Send, active: ActiveFault) -> None:
    status, body, content_type = fault_response(active)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (FAULT_HEADER.lower().encode(), active.id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _abort(scope: Scope, send: Send) -> None:
    scope[UNANSWERED_STATUS] = STATUS_ABORTED
    if reset_connection(scope.get(_TRANSPORT)):
        # Let the server see the connection as lost before we return, so it does not try to answer.
        await asyncio.sleep(0)
        return
    # A server that hides its transport: start a response and never finish it; the server then
    # closes the connection and the client sees a broken response instead of an answer.
    await send({"type": "http.response.start", "status": 500, "headers": []})
