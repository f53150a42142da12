"""A blackbox http module plus a target -> the equivalent agent.yaml `http` probe (a plain mapping, so that
`import-blackbox` prints it and the drop-in endpoint validates it with the probe model itself)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from probes.blackbox.config import HeaderMatch, Module
from probes.durations import format_duration

# blackbox's Go client follows at most 10 redirects whatever the module says.
BLACKBOX_MAX_REDIRECTS = 10


def target_url(target: str) -> str:
    return target if target.startswith(("http://", "https://")) else f"http://{target}"


def probe_name(module: str, target: str) -> str:
    host = urlsplit(target_url(target)).netloc or target
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", f"{module}-{host}").strip("_")


def _header_rules(matches: list[HeaderMatch], *, combine: bool) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for match in matches:
        name = match.header.lower()
        regex = match.regexp
        if name in rules:
            if not combine:
                raise ValueError(f"header {match.header} is listed twice in fail_if_header_not_matches; "
                                 f"join the two into one regexp")
            regex = f"(?:{rules[name]['regex']})|(?:{regex})"
        rules[name] = {"regex": regex, "allow_missing": match.allow_missing}
    return {name: rule if rule["allow_missing"] else rule["regex"] for name, rule in rules.items()}


def module_to_probe(name: str, module: Module, target: str) -> dict[str, Any]:
    """Raises ValueError for what cannot be expressed (the message names the blackbox option)."""
    http = module.http
    url = target_url(target)
    probe: dict[str, Any] = {"name": name, "type": "http", "url": url}
    if module.timeout:
        probe["timeout"] = format_duration(module.timeout)
        if module.timeout > 30:
            probe["interval"] = format_duration(module.timeout)
    if http.method.upper() != "GET":
        probe["method"] = http.method.upper()
    headers = dict(http.headers)
    if http.authorization is not None:
        auth = http.authorization
        if auth.type.lower() == "bearer":
            if auth.credentials_file:
                probe["bearer_token_file"] = auth.credentials_file
            else:
                probe["bearer_token"] = auth.credentials or ""
        elif auth.credentials_file:
            raise ValueError(f"authorization.credentials_file with type {auth.type}: only Bearer can read a file")
        else:
            headers["Authorization"] = f"{auth.type} {auth.credentials or ''}"
    if headers:
        probe["headers"] = headers
    if http.body:
        probe["body"] = http.body
    if not http.follow_redirects:
        probe["follow_redirects"] = False
    # else: max_redirects' default is blackbox's fixed limit, BLACKBOX_MAX_REDIRECTS
    if http.body_size_limit:
        probe["max_body_bytes"] = http.body_size_limit
    if http.compression:
        probe["compression"] = http.compression
    if http.enable_http2 and url.startswith("https://"):
        # Go's client offers HTTP/2 over TLS by default: so does the probe, to answer with the same version.
        probe["http_version"] = "2"
    if http.proxy_url:
        probe["proxy_url"] = http.proxy_url
    # blackbox prefers IPv6 unless told otherwise, falling back to IPv4.
    probe["ip_protocol"] = http.preferred_ip_protocol or "ip6"
    if not http.ip_protocol_fallback:
        probe["ip_protocol_fallback"] = False
    if http.basic_auth is not None:
        basic = {"username": http.basic_auth.username}
        if http.basic_auth.password_file:
            basic["password_file"] = http.basic_auth.password_file
        else:
            basic["password"] = http.basic_auth.password or ""
        probe["basic_auth"] = basic
    if http.bearer_token is not None:
        probe["bearer_token"] = http.bearer_token
    if http.oauth2 is not None:
        probe["oauth2"] = http.oauth2.model_dump(exclude_defaults=True)
    if http.bearer_token_file is not None:
        probe["bearer_token_file"] = http.bearer_token_file
    tls = {k: v for k, v in http.tls_config.model_dump().items() if v not in (None, False)}
    if tls:
        probe["tls"] = tls
    expect: dict[str, Any] = {}
    if http.valid_status_codes:
        expect["status"] = list(http.valid_status_codes)
    if http.valid_http_versions:
        expect["http_versions"] = list(http.valid_http_versions)
    if http.fail_if_ssl and http.fail_if_not_ssl:
        raise ValueError("fail_if_ssl and fail_if_not_ssl together always fail")
    if http.fail_if_ssl:
        expect["ssl"] = False
    if http.fail_if_not_ssl:
        expect["ssl"] = True
    if http.fail_if_body_not_matches_regexp:
        expect["body_matches"] = list(http.fail_if_body_not_matches_regexp)
    if http.fail_if_body_matches_regexp:
        expect["body_not_matches"] = list(http.fail_if_body_matches_regexp)
    if http.fail_if_header_not_matches:
        expect["headers"] = _header_rules(http.fail_if_header_not_matches, combine=False)
    if http.fail_if_header_matches:
        expect["headers_not_matching"] = _header_rules(http.fail_if_header_matches, combine=True)
    if expect:
        probe["expect"] = expect
    return probe
