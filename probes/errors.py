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


class ProbeFailed(Exception):
    """A probe run failed for a reason the target gave (status, assertion, timeout, ...): the one exception
    a prober raises inside itself; the prober turns it into a failed ProbeResult with that reason."""

    def __init__(self, reason: str, message: str) -> None:
        # One line, bounded: parser errors quote the offending bytes across several lines.
        message = " ".join(message.split())[:300]
        super().__init__(message)
        self.reason = reason
        self.message = message
