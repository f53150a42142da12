"""Bearer tokens of the demo API: issued by POST /auth/token, accepted by /api/* for an hour."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

TOKEN_LIFETIME = 3600
# Scripted probes log in on every run; keep memory bounded by forgetting the oldest tokens first.
MAX_TOKENS = 10_000


class TokenIssuer:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_tokens: int = MAX_TOKENS) -> None:
        self._clock = clock
        self._max_tokens = max_tokens
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def issue(self, user: str) -> str:
        token = "demo-" + secrets.token_urlsafe(24)
        self._tokens[token] = (user, self._clock() + TOKEN_LIFETIME)
        while len(self._tokens) > self._max_tokens:
            self._tokens.popitem(last=False)
        return token

    def user_of(self, token: str) -> str | None:
        entry = self._tokens.get(token)
        if entry is None:
            return None
        user, expires = entry
        if expires <= self._clock():
            del self._tokens[token]
            return None
        return user
