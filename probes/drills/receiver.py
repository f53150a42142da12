"""The webhook receiver: Alertmanager's webhook (payload version 4) on any path; remembers every alert in it.

Each alert in a notification is recorded with its own status (`firing` or `resolved`) and the receipt time,
so a drill can ask "did a firing notification for HighErrorRate{severity=page} arrive after injection".
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass(frozen=True)
class Notification:
    received: float  # time.monotonic()
    status: str  # firing | resolved
    labels: dict[str, str]
    receiver: str


class Inbox:
    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.rejected = 0

    def add(self, payload: object) -> int:
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
            self.rejected += 1
            return 0
        now = time.monotonic()
        receiver = str(payload.get("receiver", ""))
        count = 0
        for alert in payload["alerts"]:
            if not isinstance(alert, dict):
                continue
            labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
            status = str(alert.get("status") or payload.get("status") or "firing")
            self.notifications.append(Notification(now, status, labels, receiver))
            count += 1
        return count

    def first(self, status: str, alertname: str, labels: dict[str, str], after: float) -> float | None:
        """Receipt time (monotonic) of the first matching notification at or after `after`."""
        for note in self.notifications:
            if (
                note.received >= after
                and note.status == status
                and note.labels.get("alertname") == alertname
                and all(note.labels.get(k) == v for k, v in labels.items())
            ):
                return note.received
        return None


def create_app(inbox: Inbox) -> Starlette:
    async def receive(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(
                {
                    "notifications": [
                        {"status": n.status, "labels": n.labels, "receiver": n.receiver}
                        for n in inbox.notifications
                    ]
                }
            )
        try:
            payload = json.loads(await request.body())
        except ValueError:
            inbox.rejected += 1
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
            inbox.rejected += 1
            return JSONResponse({"error": "not an Alertmanager webhook payload"}, status_code=400)
        return JSONResponse({"accepted": inbox.add(payload)})

    return Starlette(
        routes=[
            Route("/{path:path}", receive, methods=["GET", "POST"]),
        ]
    )
