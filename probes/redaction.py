"""Secrets never leave the agent: one place that knows what a secret looks like and how it is shown.

What counts as a secret: URL userinfo; query parameters named like token, key, secret, password or
signature; the headers Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key and any header
a probe lists in `secret_headers`; and every value registered with `register_secret` (values that came
from `${VAR}` or `${file:/path}`, values a scripted step extracted). All of them show as `<redacted>`.
Results are redacted where they are made, so every output (pages, /api, `once`, Elasticsearch, logs)
gets clean data without knowing any of this.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
_SECRET_PARAM = re.compile(r"token|key|secret|passw(or)?d|pwd|signature|sig$|auth|credential", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
# Values shorter than this are not searched for in free text: "1" or "ab" would shred every message.
_MIN_SECRET_LEN = 4

# Values extracted at run time (a fresh token every run) are kept for the last this many only: an agent
# runs for months, and neither memory nor the cost of redacting may grow with the number of runs. A step
# redacts its own messages right after extracting (no await in between), so its values are always among
# the newest; the rest of the window covers other outputs of recent runs.
MAX_TRANSIENT = 64

if TYPE_CHECKING:
    from probes.result import ProbeResult

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_transient: OrderedDict[str, None] = OrderedDict()


def register_secret(value: str, *, transient: bool = False) -> None:
    """A value that must never be shown: from the environment or a secret file (kept for the life of the
    process), or with `transient`, extracted at run time (only the most recent MAX_TRANSIENT are kept)."""
    global _pattern
    value = value.strip()
    if len(value) < _MIN_SECRET_LEN or value in _secrets:
        return
    with _lock:
        if transient:
            _transient[value] = None
            _transient.move_to_end(value)
            while len(_transient) > MAX_TRANSIENT:
                _transient.popitem(last=False)
            return
        _transient.pop(value, None)
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: a secret containing another
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def secret_param(name: str) -> bool:
    return bool(_SECRET_PARAM.search(name))


def secret_header(name: str, extra: Iterable[str] = ()) -> bool:
    lowered = name.lower()
    return lowered in SECRET_HEADERS or lowered in {e.lower() for e in extra}


def redact_url(url: str) -> str:
    """The URL without userinfo and with the values of secret-looking query parameters hidden."""
    return redact_values(_url_structure(url))


@lru_cache(maxsize=4096)
def _url_structure(url: str) -> str:
    # Cached: the same few targets come by on every run, and parsing a query string is not free.
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(secret_param(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if secret_param(k) else v) for k, v in pairs], safe="<>")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]],
                   extra: Iterable[str] = ()) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    extra_set = {e.lower() for e in extra}
    return [(k, REDACTED if secret_header(k, extra_set) else redact_values(v)) for k, v in items]


def redact_values(text: str) -> str:
    """Every registered secret value in `text` replaced."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if _transient:
        for value in reversed(list(_transient)):  # newest first: the value of this very run
            if value in text:
                text = text.replace(value, REDACTED)
    return text


def redact_text(text: str) -> str:
    """Free text (an error message, a log line): URLs inside it cleaned, registered values replaced.
    Exceptions of aiohttp, httpx and the Elasticsearch client print the URL they were given."""
    if not text:
        return text
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return redact_values(text)


def redact_result(result: ProbeResult) -> ProbeResult:
    """The result with its target and every message cleaned, in place; what every output then shows."""
    result.target = redact_url(result.target) if result.target else result.target
    result.message = redact_text(result.message)
    for step in result.steps or ():
        step.message = redact_text(step.message)
    return result
