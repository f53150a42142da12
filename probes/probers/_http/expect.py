"""Checks of one HTTP response against an `expect:` block: status, latency, body regex, headers,
JSONPath checks, JSON Schema, certificate expiry. The first failed check decides the reason."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema

from probes.config.models import Expect, JsonCheck, as_list, header_rule
from probes.errors import ProbeFailed
from probes.jsonpaths import compile_path
from probes.probers._http.certs import not_after
from probes.probers._http.client import HttpResponse
from probes.regexes import BoundedRegex, RegexTimeout, compile_bounded

_MISSING = object()


@dataclass(slots=True)
class Verdict:
    success: bool
    reason: str | None = None
    message: str = ""
    degraded: bool = False


OK = Verdict(True)


def _regex(pattern: str) -> BoundedRegex:
    return compile_bounded(pattern)


async def _search(pattern: str, text: str, what: str) -> bool:
    """Whether `pattern` is found in `text`; a pattern that runs past its deadline fails the check."""
    try:
        return await _regex(pattern).search_async(text) is not None
    except RegexTimeout as exc:
        raise ProbeFailed("assertion", f"{what}: {exc}") from None


class ResponseView:
    """A response with its body decoded and parsed at most once, whatever the checks ask for."""

    __slots__ = ("_json", "_text", "response")

    def __init__(self, response: HttpResponse) -> None:
        self.response = response
        self._text: str | None = None
        self._json: Any = _MISSING

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.response.text()
        return self._text

    def json(self) -> Any:
        if self._json is _MISSING:
            try:
                self._json = json.loads(self.response.body)
            except ValueError as exc:
                raise ProbeFailed("assertion", f"response is not valid JSON: {exc}") from None
        return self._json


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


async def check_json(check: JsonCheck, document: Any) -> None:
    matches = [m.value for m in compile_path(check.path).find(document)]
    op = check.operator
    if op == "exists":
        if bool(matches) != check.exists:
            raise ProbeFailed("assertion", f"{check.path} {'matched nothing' if check.exists else 'exists'}")
        return
    if not matches:
        raise ProbeFailed("assertion", f"{check.path} matched nothing")
    first = matches[0]
    if op == "all_equal":
        bad = [m for m in matches if m != check.all_equal]
        if bad:
            raise ProbeFailed("assertion", f"{check.path}: {len(bad)} of {len(matches)} values are not "
                                      f"{_short(check.all_equal)} (e.g. {_short(bad[0])})")
    elif op == "equals" and first != check.equals:
        raise ProbeFailed("assertion", f"{check.path} is {_short(first)}, expected {_short(check.equals)}")
    elif op == "not_equals" and first == check.not_equals:
        raise ProbeFailed("assertion", f"{check.path} is {_short(first)}")
    elif op in ("gt", "lt"):
        limit = check.gt if op == "gt" else check.lt
        if not isinstance(first, int | float) or isinstance(first, bool):
            raise ProbeFailed("assertion", f"{check.path} is {_short(first)}, not a number")
        assert limit is not None
        if (op == "gt" and not first > limit) or (op == "lt" and not first < limit):
            raise ProbeFailed("assertion", f"{check.path} is {first}, expected {'>' if op == 'gt' else '<'} {limit:g}")
    elif op == "contains":
        if isinstance(first, str):
            found = isinstance(check.contains, str) and check.contains in first
        elif isinstance(first, list | dict):
            found = check.contains in first
        else:
            found = False
        if not found:
            raise ProbeFailed("assertion", f"{check.path} ({_short(first)}) does not contain {_short(check.contains)}")
    elif op == "matches":
        assert check.matches is not None
        text = first if isinstance(first, str) else json.dumps(first)
        if not await _search(check.matches, text, check.path):
            raise ProbeFailed("assertion", f"{check.path} ({_short(first)}) does not match /{check.matches}/")


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


class RegexMismatch(ProbeFailed):
    """A header or body regex decided the failure (blackbox's probe_failed_due_to_regex)."""


async def check_headers(expect: Expect, resp: HttpResponse) -> None:
    """Every value of a repeated header is looked at, so the verdict does not depend on header order."""
    for name, rule in expect.headers_not_matching.items():
        match = header_rule(rule)
        values = resp.headers.getall(name, [])
        if not values and not match.allow_missing:
            raise RegexMismatch("assertion", f"header {name} missing")
        bad = None
        for value in values:
            if await _search(match.regex, value, f"header {name}"):
                bad = value
                break
        if bad is not None:
            raise RegexMismatch("assertion", f"header {name}: {bad!r} matches /{match.regex}/")
    for name, rule in expect.headers.items():
        match = header_rule(rule)
        values = resp.headers.getall(name, [])
        if not values:
            if match.allow_missing:
                continue
            raise RegexMismatch("assertion", f"header {name} missing")
        if not any([await _search(match.regex, v, f"header {name}") for v in values]):
            raise RegexMismatch("assertion", f"header {name}: {values[0]!r} does not match /{match.regex}/")


async def check_response(expect: Expect, view: ResponseView) -> None:
    """Everything but latency; raises ProbeFailed."""
    resp = view.response
    if expect.status is None:
        if not 200 <= resp.status < 300:
            raise ProbeFailed("status", f"status {resp.status}, expected 2xx")
    elif resp.status not in expect.status:
        raise ProbeFailed("status", f"status {resp.status}, expected one of {expect.status}")
    await check_headers(expect, resp)
    for pattern in as_list(expect.body_matches):
        if not await _search(pattern, view.text, "body"):
            raise RegexMismatch("assertion", f"body does not match /{pattern}/")
    for pattern in as_list(expect.body_not_matches):
        if await _search(pattern, view.text, "body"):
            raise RegexMismatch("assertion", f"body matches /{pattern}/")
    if expect.http_versions is not None and resp.http_version not in expect.http_versions:
        raise ProbeFailed("assertion", f"answered over {resp.http_version}, expected one of {expect.http_versions}")
    if expect.ssl is not None and (resp.tls_version is not None) != expect.ssl:
        raise ProbeFailed("tls", "the final response came over TLS" if expect.ssl is False
                          else "the final response did not come over TLS")
    if expect.json_checks:
        document = view.json()
        for check in expect.json_checks:
            await check_json(check, document)
    if expect.json_schema is not None:
        validator = _validator(json.dumps(expect.json_schema, sort_keys=True))
        error = next(iter(validator.iter_errors(view.json())), None)
        if error is not None:
            where = "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)
            raise ProbeFailed("assertion", f"schema: {where}: {error.message}")
    if expect.cert_expires_after is not None and resp.cert_der is not None:
        left = not_after(resp.cert_der) - time.time()
        if left < expect.cert_expires_after:
            raise ProbeFailed("tls", f"certificate expires in {left / 86400:.1f} days, "
                                f"less than {expect.cert_expires_after / 86400:g} days")


def check_latency(expect: Expect, elapsed: float) -> Verdict:
    if expect.max_latency is not None and elapsed > expect.max_latency:
        return Verdict(False, "latency", f"took {elapsed * 1000:.0f}ms, max_latency is "
                                         f"{expect.max_latency * 1000:.0f}ms")
    if expect.degraded_latency is not None and elapsed > expect.degraded_latency:
        return Verdict(True, None, f"degraded: took {elapsed * 1000:.0f}ms, over "
                                   f"{expect.degraded_latency * 1000:.0f}ms", degraded=True)
    return OK
