"""Exceptions that the CLI turns into exit codes instead of tracebacks."""

from __future__ import annotations


class UsageError(Exception):
    """Invalid invocation or invalid input: exit 2."""

    exit_code = 2


class ConfigError(UsageError):
    """An invalid config file; each message is already `FILE:LINE: field.path: message`."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


class CannotRun(Exception):
    """A dependency is unreachable or there is no data: exit 3."""

    exit_code = 3
