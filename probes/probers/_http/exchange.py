"""The debug record of one request (probes.result.Exchange), built from what was sent and what came back,
with secrets redacted here so that no page ever sees them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from probes.probers._http.client import USER_AGENT, HttpResponse
from probes.redaction import REDACTED, redact_headers, redact_url, redact_values
from probes.result import BODY_EXCERPT_BYTES, Exchange


def _url_with_params(url: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def _hider(values: Iterable[Any]) -> Callable[[str], str]:
    """Replaces this run's extracted values (tokens) too: they change every run, so they are hidden here
    rather than registered globally."""
    hidden = sorted({v for v in values if isinstance(v, str) and len(v) >= 4}, key=len, reverse=True)
    if not hidden:
        return redact_values
    pattern = re.compile("|".join(re.escape(v) for v in hidden))
    return lambda text: redact_values(pattern.sub(REDACTED, text))


def build_exchange(method: str, url: str, args: Mapping[str, Any], response: HttpResponse | None, *,
                   step: str | None = None, error: str = "", secret_headers: Iterable[str] = (),
                   hide: Iterable[Any] = ()) -> Exchange:
    """`args` are the request arguments given to HttpClient.request (params, headers, ...); `hide` are
    values extracted by a scripted probe in this run."""
    secret = tuple(secret_headers)
    clean = _hider(hide)

    def headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, clean(v)) for k, v in redact_headers(items, secret)]

    if response is None:
        sent: Mapping[str, str] = {"User-Agent": USER_AGENT, **(args.get("headers") or {})}
        return Exchange(step=step, method=method, url=clean(redact_url(_url_with_params(url, args.get("params")))),
                        request_headers=headers(sent.items()), error=clean(error))
    return Exchange(
        step=step,
        method=response.method,
        url=clean(redact_url(response.url)),
        request_headers=headers(response.request_headers.items()),
        status=response.status,
        response_headers=headers(response.headers.items()),
        body_excerpt=clean(response.body[:BODY_EXCERPT_BYTES].decode("utf-8", errors="replace")),
        body_bytes=len(response.body),
        phases=dict(response.phases),
        error=clean(error),
    )
