"""The log formatter is the last line of defence: whatever a library puts into a message or a traceback,
no URL password and no registered secret reaches the log, in text or in JSON."""

from __future__ import annotations

import json
import logging
import sys

from probes.log_format import JsonFormatter, RedactingTextFormatter
from probes.redaction import register_secret


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ConnectionError("Cannot connect to http://elastic:tb-pass-5150@es:9200/_bulk")
        except ConnectionError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("probes.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_text_lines_and_tracebacks_are_redacted() -> None:
    register_secret("log-secret-6262")
    line = RedactingTextFormatter().format(_record("sending %s to %s", "log-secret-6262",
                                                   "https://bob:pw-3131@host/x?token=tk-7171", exc=True))
    for secret in ("log-secret-6262", "pw-3131", "tk-7171", "tb-pass-5150"):
        assert secret not in line
    assert "WARNING probes.test: sending <redacted> to https://<redacted>@host/x?token=<redacted>" in line
    assert "ConnectionError: Cannot connect to http://<redacted>@es:9200/_bulk" in line


def test_json_lines_carry_the_extra_fields_and_are_redacted() -> None:
    register_secret("json-secret-4242")
    line = JsonFormatter().format(_record("probe %s is down: %s", "api", "saw json-secret-4242", exc=True,
                                          probe="api", state="down", outage_seconds=1.5,
                                          color_message="\x1b[31mignored"))
    event = json.loads(line)
    assert event["level"] == "warning" and event["logger"] == "probes.test"
    assert event["msg"] == "probe api is down: saw <redacted>"
    assert (event["probe"], event["state"], event["outage_seconds"]) == ("api", "down", 1.5)
    assert "color_message" not in event
    assert "tb-pass-5150" not in event["exc"] and "<redacted>@es:9200" in event["exc"]
    assert event["ts"].endswith("Z")
