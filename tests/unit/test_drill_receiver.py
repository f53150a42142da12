"""The webhook receiver accepts Alertmanager's webhook (version 4) on any path."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from probes.drills.receiver import Inbox, create_app


class _Client:
    """Synchronous calls into the ASGI app, in-process."""

    def __init__(self, inbox: Inbox) -> None:
        self.app = create_app(inbox)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._call("POST", path, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return self._call("GET", path)


def _payload(status: str, *alerts: tuple[str, dict[str, str]]) -> dict[str, object]:
    return {
        "version": "4", "groupKey": '{}:{alertname="HighErrorRate"}', "truncatedAlerts": 0, "status": status,
        "receiver": "drill", "groupLabels": {"alertname": "HighErrorRate"}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://am:9093",
        "alerts": [{"status": s, "labels": labels, "annotations": {}, "startsAt": "2024-01-01T00:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "abc"}
                   for s, labels in alerts],
    }


def test_records_firing_and_resolved_per_alert_on_any_path() -> None:
    inbox = Inbox()
    client = _Client(inbox)
    before = time.monotonic()
    high = {"alertname": "HighErrorRate", "job": "api", "severity": "critical"}
    other = {"alertname": "HighErrorRate", "job": "other"}
    response = client.post("/alerts", json=_payload("firing", ("firing", high), ("resolved", other)))
    assert response.status_code == 200 and response.json() == {"accepted": 2}
    assert client.post("/", json=_payload("resolved", ("resolved", high))).status_code == 200
    assert client.post("/deep/path/x", json=_payload("firing", ("firing", other))).status_code == 200

    assert inbox.first("firing", "HighErrorRate", {"job": "api"}, before) is not None
    assert inbox.first("resolved", "HighErrorRate", {"job": "api"}, before) is not None
    assert inbox.first("firing", "HighErrorRate", {"job": "nope"}, before) is None
    assert inbox.first("firing", "ProbeFailing", {}, before) is None
    assert inbox.first("firing", "HighErrorRate", {}, time.monotonic() + 1) is None
    assert len(client.get("/anything").json()["notifications"]) == 4


def test_rejects_what_is_not_a_webhook() -> None:
    inbox = Inbox()
    client = _Client(inbox)
    assert client.post("/", content=b"not json").status_code == 400
    assert client.post("/", json={"hello": 1}).status_code == 400
    assert inbox.rejected == 2 and inbox.notifications == []
