"""A webhook receiver that prints each Alertmanager notification, one line per alert (stdlib only).

deploy/compose.yaml runs it as the `receiver` service, so notifications have somewhere to go inside the
compose network; `docker compose logs -f receiver` shows them. Replace it with your real integrations.

    python3 webhook-log.py [--listen HOST:PORT]     (default 0.0.0.0:9099; port 0 picks a free one)
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


def describe(path: str, payload: object) -> list[str]:
    """`PATH STATUS ALERTNAME k=v ...` for each alert of an Alertmanager webhook payload (version 4)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return [f"{path} unexpected payload: {json.dumps(payload)[:200]}"]
    lines = []
    for alert in payload["alerts"]:
        labels = dict(alert.get("labels") or {}) if isinstance(alert, dict) else {}
        name = labels.pop("alertname", "?")
        status = alert.get("status", "?") if isinstance(alert, dict) else "?"
        pairs = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        lines.append(f"{path} {status} {name} {pairs}".rstrip())
    return lines


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self.send_error(400, "not JSON")
            return
        for line in describe(self.path, payload):
            print(line, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per alert is the log; no access log


def main() -> None:
    parser = argparse.ArgumentParser(description="Print Alertmanager webhook notifications.")
    parser.add_argument("--listen", default="0.0.0.0:9099", metavar="HOST:PORT")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    # The line the project's other servers print, so tests wait for it the same way.
    print(f"probe-agent: receiver listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
