"""Following redirects by hand, as Go's http.Client (and so blackbox_exporter) does: a cookie jar that lives
for one run, `max_redirects: N` follows N and stops at the N+1th, and the method, body and headers of each
next request decided per status code. The transports (aiohttp, httpx for HTTP/2) only make single requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from http.cookies import BaseCookie, CookieError, SimpleCookie
from typing import Any

import aiohttp
from yarl import URL

# Headers Go drops when a redirect leaves the original host: credentials are for that host only.
_SENSITIVE = ("authorization", "www-authenticate", "cookie")


@dataclass(slots=True)
class HopRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    json: Any = None
    data: Any = None
    server_hostname: str | None = None
    """TLS server name (SNI and verification) when it is not the URL's host."""


def next_request(req: HopRequest, status: int, location: str | None) -> HopRequest | None:
    """The request a redirect asks for, or None if this response is final (not a redirect, no Location)."""
    if status not in (301, 302, 303, 307, 308) or not location:
        return None
    try:
        current = URL(req.url)
        if req.params:
            current = current.update_query(req.params)
        target = current.join(URL(location))
    except ValueError:
        return None
    method, json, data = req.method, req.json, req.data
    if status in (301, 302, 303) and method not in ("GET", "HEAD"):
        method, json, data = "GET", None, None
    elif status in (301, 302, 303):
        json, data = None, None
    headers = dict(req.headers)
    same_host = target.host == current.host
    if not same_host:
        headers = {k: v for k, v in headers.items() if k.lower() not in _SENSITIVE}
    if json is None and data is None:
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
    # A Host header survives only a relative redirect (Go's client, golang/go#22233).
    if URL(location).is_absolute():
        headers = {k: v for k, v in headers.items() if k.lower() != "host"}
    return replace(req, method=method, url=str(target), headers=headers, params=None, json=json, data=data,
                   server_hostname=req.server_hostname if same_host else None)


class RunCookies:
    """The cookies of one run: what a redirect sets reaches the redirect's target; nothing outlives the run."""

    def __init__(self) -> None:
        # unsafe: probes often address servers by IP, where Go's jar keeps host-only cookies too.
        self._jar = aiohttp.CookieJar(unsafe=True, quote_cookie=False)

    def store(self, set_cookie_values: list[str], url: str) -> None:
        for value in set_cookie_values:
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(value)
            except CookieError:
                continue
            self._jar.update_cookies(cookie, URL(url))

    def header_for(self, url: str) -> str | None:
        found: BaseCookie[str] = self._jar.filter_cookies(URL(url))
        if not found:
            return None
        return "; ".join(f"{name}={morsel.value}" for name, morsel in found.items())


def with_cookies(req: HopRequest, cookies: RunCookies | None) -> HopRequest:
    if cookies is None:
        return req
    value = cookies.header_for(req.url)
    if value is None:
        return req
    headers = dict(req.headers)
    own = next((k for k in headers if k.lower() == "cookie"), None)
    headers[own or "Cookie"] = f"{headers[own]}; {value}" if own else value
    return replace(req, headers=headers)
