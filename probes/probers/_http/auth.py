"""`basic_auth`, `bearer_token`, `bearer_token_file`: the Authorization header of a request."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from probes.config.models import BasicAuth
from probes.errors import ProbeFailed


@dataclass(frozen=True, slots=True)
class Auth:
    basic: BasicAuth | None = None
    bearer_token: str | None = None
    bearer_token_file: str | None = None

    def __bool__(self) -> bool:
        return bool(self.basic or self.bearer_token or self.bearer_token_file)

    def header(self) -> str:
        """Files are read on every run, so rotated credentials are picked up (as blackbox does)."""
        if self.basic is not None:
            password = self.basic.password or ""
            if self.basic.password_file:
                password = _read(self.basic.password_file)
            token = base64.b64encode(f"{self.basic.username}:{password}".encode()).decode()
            return f"Basic {token}"
        if self.bearer_token_file:
            return f"Bearer {_read(self.bearer_token_file)}"
        return f"Bearer {self.bearer_token}"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise ProbeFailed("error", f"cannot read {path}: {exc.strerror}") from None
