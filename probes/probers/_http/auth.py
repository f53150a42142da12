"""`basic_auth`, `bearer_token`, `bearer_token_file`, `oauth2`: the Authorization header of a request."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from probes.config.models import BasicAuth, OAuth2
from probes.errors import ProbeFailed

# (url, form fields, headers) -> (status, body): a POST through the agent's client, within the run's deadline.
Post = Callable[[str, dict[str, str], dict[str, str]], Awaitable[tuple[int, bytes]]]

_EARLY = 10.0  # renew a token this long before it expires (as golang.org/x/oauth2 does)


@dataclass(frozen=True, slots=True)
class Auth:
    basic: BasicAuth | None = None
    bearer_token: str | None = None
    bearer_token_file: str | None = None
    oauth2: OAuth2 | None = None

    def __bool__(self) -> bool:
        return bool(self.basic or self.bearer_token or self.bearer_token_file or self.oauth2)

    async def header(self, post: Post, tokens: dict[Any, tuple[str, float]]) -> str:
        """Files are read on every run, so rotated credentials are picked up (as blackbox does)."""
        if self.basic is not None:
            password = self.basic.password or ""
            if self.basic.password_file:
                password = _read(self.basic.password_file)
            token = base64.b64encode(f"{self.basic.username}:{password}".encode()).decode()
            return f"Basic {token}"
        if self.oauth2 is not None:
            return await _oauth2_header(self.oauth2, post, tokens)
        if self.bearer_token_file:
            return f"Bearer {_read(self.bearer_token_file)}"
        return f"Bearer {self.bearer_token}"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise ProbeFailed("error", f"cannot read {path}: {exc.strerror}") from None


async def _oauth2_header(cfg: OAuth2, post: Post, tokens: dict[Any, tuple[str, float]]) -> str:
    secret = _read(cfg.client_secret_file) if cfg.client_secret_file else (cfg.client_secret or "")
    key = (cfg.token_url, cfg.client_id, secret, tuple(cfg.scopes), tuple(sorted(cfg.endpoint_params.items())))
    cached = tokens.get(key)
    if cached is not None and cached[1] > time.time():
        return cached[0]
    form = {**cfg.endpoint_params, "grant_type": "client_credentials"}
    if cfg.scopes:
        form["scope"] = " ".join(cfg.scopes)
    # golang.org/x/oauth2 tries the client's credentials in a Basic header first, then in the form.
    basic = base64.b64encode(f"{quote(cfg.client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
    status, body = await post(cfg.token_url, form, {"Authorization": f"Basic {basic}"})
    if not 200 <= status < 300:
        status, body = await post(cfg.token_url, {**form, "client_id": cfg.client_id, "client_secret": secret}, {})
    if not 200 <= status < 300:
        raise ProbeFailed("error", f"oauth2: the token endpoint answered {status}")
    try:
        answer = json.loads(body)
        access, kind = str(answer["access_token"]), str(answer.get("token_type") or "Bearer")
        lifetime = float(answer.get("expires_in") or 0)
    except (ValueError, KeyError, TypeError):
        raise ProbeFailed("error", "oauth2: the token endpoint's answer has no access_token") from None
    header = f"{kind[:1].upper()}{kind[1:]} {access}" if kind.lower() != "bearer" else f"Bearer {access}"
    if lifetime > _EARLY:
        tokens[key] = (header, time.time() + lifetime - _EARLY)
    return header
