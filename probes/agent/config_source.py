"""Where agent.yaml comes from: a local file, or an http(s):// URL that one server shares with a whole fleet.

A source only fetches text; loading it, and keeping the last good config when a fetch fails, is the agent's
job. A URL is fetched with `If-None-Match` / `If-Modified-Since` so that a fleet polling one small server
costs it a 304 per agent and poll, with a bounded body and a total deadline: a config server that hangs,
drips or streams gigabytes must never stall or exhaust the agent.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from probes import __version__
from probes.errors import ConfigError, UsageError
from probes.redaction import redact_url, register_secret

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 10.0
MAX_CONFIG_BYTES = 16 * 1024 * 1024


class FetchFailed(Exception):
    """The source could not deliver a config; `reason` is timeout, status, connection or too_large (a config
    that arrives but does not load is a ConfigError, reason invalid)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Fetched:
    text: str
    changed: bool
    """False when the source says or shows that the text is the one it gave last time."""


class ConfigSource(Protocol):
    @property
    def name(self) -> str:
        """For people and error messages (`NAME:LINE: ...`): the path, or the URL without secrets."""
        ...

    @property
    def remote(self) -> bool:
        """Whether the agent should poll it (a file is reloaded on SIGHUP or POST /-/reload)."""
        ...

    @property
    def base_dir(self) -> str:
        """Where relative paths in the config (e.g. queries_file) are resolved."""
        ...

    async def fetch(self) -> Fetched: ...

    async def aclose(self) -> None: ...


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def open_source(location: str, *, bearer_token_file: str | None = None, timeout: float = FETCH_TIMEOUT,
                max_bytes: int = MAX_CONFIG_BYTES) -> ConfigSource:
    if is_url(location):
        return UrlSource(location, bearer_token_file=bearer_token_file, timeout=timeout, max_bytes=max_bytes)
    if bearer_token_file is not None:
        raise UsageError("--config-bearer-token-file is for a config given as an http(s):// URL, "
                         f"not for the file {location}")
    return FileSource(location)


class FileSource:
    remote = False

    def __init__(self, path: str) -> None:
        self.name = path
        self.base_dir = os.path.dirname(os.path.abspath(path))
        self._last: str | None = None

    async def fetch(self) -> Fetched:
        try:
            text = await asyncio.to_thread(Path(self.name).read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError([f"{self.name}: cannot read: {reason}"]) from None
        changed, self._last = text != self._last, text
        return Fetched(text, changed)

    async def aclose(self) -> None:
        pass


class UrlSource:
    remote = True

    def __init__(self, url: str, *, bearer_token_file: str | None = None, timeout: float = FETCH_TIMEOUT,
                 max_bytes: int = MAX_CONFIG_BYTES) -> None:
        self.url = url
        self.name = redact_url(url)
        self.base_dir = os.getcwd()
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._token_file = bearer_token_file
        self._token: str | None = None
        if bearer_token_file is not None:
            self._token = self._read_token(bearer_token_file)
        self._client: httpx.AsyncClient | None = None
        self._last: str | None = None
        self._etag: str | None = None
        self._last_modified: str | None = None

    @staticmethod
    def _read_token(path: str) -> str:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--config-bearer-token-file {path}: cannot read: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        if not token:
            raise UsageError(f"--config-bearer-token-file {path}: the file is empty")
        register_secret(token)
        return token

    def _current_token(self) -> str | None:
        # Read again on every fetch: mounted tokens (Kubernetes, Vault agents) rotate under a running agent.
        if self._token_file is None:
            return None
        try:
            self._token = self._read_token(self._token_file)
        except UsageError as exc:
            log.warning("%s; using the token read before", exc)
        return self._token

    def _headers(self) -> dict[str, str]:
        headers = {}
        if self._last is not None:
            if self._etag:
                headers["If-None-Match"] = self._etag
            if self._last_modified:
                headers["If-Modified-Since"] = self._last_modified
        token = self._current_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def fetch(self) -> Fetched:
        if self._client is None:
            # One client for the life of the agent: building one costs tens of milliseconds.
            self._client = httpx.AsyncClient(follow_redirects=True, max_redirects=5, timeout=self.timeout,
                                             headers={"User-Agent": f"probe-agent/{__version__}"})
        try:
            # httpx's timeout bounds each read; this bounds the whole fetch (a server dripping bytes).
            async with asyncio.timeout(self.timeout):
                body, etag, last_modified = await self._get(self._client)
        except (TimeoutError, httpx.TimeoutException):
            raise FetchFailed("timeout", f"{self.name}: no complete answer within {self.timeout:g}s") from None
        except httpx.TooManyRedirects:
            raise FetchFailed("status", f"{self.name}: more than 5 redirects") from None
        except httpx.HTTPError as exc:
            raise FetchFailed("connection", f"{self.name}: cannot connect: {exc or type(exc).__name__}") from None
        if body is None:
            assert self._last is not None
            return Fetched(self._last, changed=False)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError([f"{self.name}:1: (file): the body is not UTF-8 text"]) from None
        changed = text != self._last
        self._last, self._etag, self._last_modified = text, etag, last_modified
        return Fetched(text, changed)

    async def _get(self, client: httpx.AsyncClient) -> tuple[bytes | None, str | None, str | None]:
        """The body (None: not modified), ETag and Last-Modified; raises FetchFailed for status and size."""
        async with client.stream("GET", self.url, headers=self._headers()) as response:
            if response.status_code == 304 and self._last is not None:
                return None, None, None
            if response.status_code != 200:
                raise FetchFailed("status", f"{self.name}: HTTP {response.status_code} {response.reason_phrase}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise FetchFailed("too_large", f"{self.name}: the body is {int(declared)} bytes, "
                                               f"more than the limit of {self.max_bytes}")
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decoded: a gzip bomb counts in full
                body += chunk
                if len(body) > self.max_bytes:
                    raise FetchFailed("too_large", f"{self.name}: the body is more than the limit "
                                                   f"of {self.max_bytes} bytes")
            return bytes(body), response.headers.get("etag"), response.headers.get("last-modified")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
