"""The fault API, identical on the demo target and on the proxy's control port.

GET /-/faults -> 200 {"faults": [...]}; POST /-/faults -> 201 {"id", "expires_at"};
GET|DELETE /-/faults/{id}; DELETE /-/faults clears all. Bearer token required (401 without, 403 wrong);
with no token configured the routes do not exist at all (404), so the API is off by default.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from probes.faults.model import Fault, describe_validation_error
from probes.faults.store import FaultStore, TooManyFaults

PREFIX = "/-/faults"
MAX_REQUEST_BYTES = 256 * 1024


async def _bounded_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it is known to be too large (never read whole first)."""
    too_large = HTTPException(413, f"a fault is at most {MAX_REQUEST_BYTES} bytes of JSON")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def install_fault_api(app: FastAPI, store: FaultStore, token: str | None) -> None:
    """Add the fault routes to `app` itself (not an included router), so route templates stay
    plain `APIRoute`s that request metrics can label by."""
    if not token:
        return
    expected = token.encode()

    def authorize(request: Request) -> None:
        header = request.headers.get("authorization")
        scheme, _, given = (header or "").partition(" ")
        if not header or scheme.lower() != "bearer" or not given.strip():
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(403, "wrong bearer token")

    async def list_faults(request: Request) -> dict[str, object]:
        authorize(request)
        return {"faults": [active.to_json() for active in store.list()]}

    async def add_fault(request: Request) -> JSONResponse:
        authorize(request)
        raw = await _bounded_body(request)
        if not raw.strip():
            example = '{"type": "error", "status": 503, "match": {"path": "^/api"}, "ttl": "2m"}'
            return JSONResponse({"detail": f"invalid fault: empty body; send a fault as JSON, e.g. {example}",
                                 "errors": ["empty body"]}, 422)
        try:
            fault = Fault.model_validate_json(raw, context={"max_ttl": store.max_ttl})
        except ValidationError as exc:
            errors = describe_validation_error(exc)
            return JSONResponse({"detail": "invalid fault: " + "; ".join(errors), "errors": errors}, 422)
        try:
            active = store.add(fault)
        except TooManyFaults as exc:
            raise HTTPException(409, str(exc)) from None
        body = active.to_json()
        return JSONResponse({"id": body["id"], "expires_at": body["expires_at"]}, 201)

    async def clear_faults(request: Request) -> dict[str, object]:
        authorize(request)
        return {"deleted": store.clear()}

    async def get_fault(request: Request, fault_id: str) -> dict[str, object]:
        authorize(request)
        active = store.get(fault_id)
        if active is None:
            raise HTTPException(404, f"no active fault {fault_id!r}")
        return active.to_json()

    async def delete_fault(request: Request, fault_id: str) -> dict[str, object]:
        authorize(request)
        if not store.remove(fault_id):
            raise HTTPException(404, f"no active fault {fault_id!r}")
        return {"deleted": 1}

    app.add_api_route(PREFIX, list_faults, methods=["GET"], tags=["faults"])
    app.add_api_route(PREFIX, add_fault, methods=["POST"], status_code=201, tags=["faults"])
    app.add_api_route(PREFIX, clear_faults, methods=["DELETE"], tags=["faults"])
    app.add_api_route(PREFIX + "/{fault_id}", get_fault, methods=["GET"], tags=["faults"])
    app.add_api_route(PREFIX + "/{fault_id}", delete_fault, methods=["DELETE"], tags=["faults"])
