"""What a matched fault does to a request, independent of the server that carries it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Sequence

from probes.faults.rewrite import rewrite_json
from probes.faults.store import ActiveFault, FaultStore

# Status words for requests that never got a response, the way nginx logs them, so that metrics
# still count them: the server closed the connection (abort), or the client gave up (timeout).
STATUS_ABORTED = 444
STATUS_CLIENT_GAVE_UP = 499

FAULT_HEADER = "X-Probe-Fault"


def fault_response(active: ActiveFault) -> tuple[int, bytes, str]:
    """(status, body, content type) for an `error` or `unready` fault."""
    fault = active.fault
    if fault.body is not None:
        body = fault.body.encode()
        stripped = fault.body.lstrip()
        is_json = stripped.startswith(("{", "[")) and _parses(fault.body)
        return fault.status, body, "application/json" if is_json else "text/plain; charset=utf-8"
    if fault.type == "unready":
        payload: dict[str, str] = {"status": "not_ready", "fault": active.id}
    else:
        payload = {"error": "injected fault", "fault": active.id}
    return fault.status, json.dumps(payload).encode(), "application/json"


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def reset_connection(transport: asyncio.BaseTransport | None) -> bool:
    """Close with a TCP RST instead of a FIN (SO_LINGER 0), as a crashed peer or a firewall would."""
    if transport is None or transport.is_closing():
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()
    return True


async def hold(store: FaultStore, active: ActiveFault, client_gone: Awaitable[object]) -> bool:
    """Wait until the client gives up (True) or the fault is removed or expires (False).

    The fault's TTL bounds the wait, so a held request cannot outlive the fault that holds it.
    """
    released = asyncio.ensure_future(active.released.wait())
    gone = asyncio.ensure_future(client_gone)
    try:
        done, _ = await asyncio.wait(
            {released, gone}, timeout=store.remaining(active), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (released, gone):
            task.cancel()
        await asyncio.gather(released, gone, return_exceptions=True)
    return gone in done


def rewritten(body: bytes, content_encoding: str | None, rewrites: Sequence[ActiveFault]) -> bytes | None:
    """The body as the matched `rewrite` faults leave it, or None to send it unchanged.

    Encoded (compressed) bodies are left alone: a proxy passes the upstream's bytes through as they are.
    """
    if not rewrites or (content_encoding and content_encoding.lower() != "identity"):
        return None
    return rewrite_json(body, [op for active in rewrites for op in active.fault.rewrite])
