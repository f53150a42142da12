"""Regular expressions from users, evaluated in bounded time.

Users write Python's syntax (`re`) and get Python's answers. A pattern RE2 can run is run by RE2
(`google-re2`), in time linear in the text, so no body can make it backtrack catastrophically. The rest
(backreferences, lookarounds, a few Python-only escapes), and texts where RE2 would answer differently
(its \\d \\w \\s \\b are ASCII-only; Python's are Unicode), run on the `regex` module, which releases
the GIL and gives up after a deadline. Patterns whose repeats would expand beyond what it can bound are
refused when the config loads, not when a probe runs.
"""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from typing import Any, Protocol

import re2
import regex

MAX_PATTERN_LENGTH = 4096
MAX_FALLBACK_WEIGHT = 10_000
"""How many pattern items a fallback pattern may expand to once counted repeats are multiplied out."""
SYNC_DEADLINE = 0.05
"""The most one synchronous fallback search may take (header values, request paths: short texts)."""
ASYNC_DEADLINE = 1.0
"""The most one fallback search of a body may take, in a worker thread beside the event loop."""

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 logs every pattern it declines to stderr otherwise
_RE2_OPTIONS.max_mem = 8 << 20


class RegexTimeout(Exception):
    """A fallback pattern ran past its deadline on this text."""


class Match(Protocol):
    def group(self, *groups: int | str) -> Any: ...


def _weight(parsed: Any) -> int:
    """Items of an sre parse tree, nested counted repeats multiplied out (`(a{100}){100}` -> 10,000)."""
    from re import _constants as c  # type: ignore[attr-defined]

    total = 0
    for op, av in parsed:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, high, sub = av
            factor = high if high != c.MAXREPEAT else max(low, 1)
            total += max(factor, 1) * _weight(sub)
        elif op in (c.SUBPATTERN, c.ATOMIC_GROUP):
            total += _weight(av[-1])
        elif op == c.BRANCH:
            total += sum(_weight(branch) for branch in av[1])
        elif op in (c.ASSERT, c.ASSERT_NOT):
            total += _weight(av[1])
        elif op == c.GROUPREF_EXISTS:
            total += _weight(av[1]) + (_weight(av[2]) if av[2] else 0)
        else:
            total += 1
        if total > MAX_FALLBACK_WEIGHT:
            return total
    return total


_UNICODE_AT = ("AT_BOUNDARY", "AT_NON_BOUNDARY")


def _features(parsed: Any) -> tuple[bool, bool]:
    """(uses \\d \\w \\s \\b or their negations, uses `$`) anywhere in an sre parse tree."""
    from re import _constants as c  # type: ignore[attr-defined]

    unicode_classes = at_end = False
    stack = [parsed]
    while stack:
        for op, av in stack.pop():
            if op == c.CATEGORY or (op == c.AT and str(av) in _UNICODE_AT):
                unicode_classes = True
            elif op == c.AT and av == c.AT_END:
                at_end = True
            elif op == c.IN:
                stack.append(av)
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                stack.append(av[2])
            elif op in (c.SUBPATTERN, c.ATOMIC_GROUP):
                stack.append(av[-1])
            elif op == c.BRANCH:
                stack.extend(av[1])
            elif op in (c.ASSERT, c.ASSERT_NOT):
                stack.append(av[1])
            elif op == c.GROUPREF_EXISTS:
                stack.extend(branch for branch in av[1:] if branch)
    return unicode_classes, at_end


class BoundedRegex:
    """One compiled user pattern; `search` never runs unbounded."""

    __slots__ = ("_at_end", "_fallback", "_re2", "_unicode_classes", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ValueError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")
        try:
            parsed = re._parser.parse(pattern)  # type: ignore[attr-defined]
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            raise ValueError(str(exc) or type(exc).__name__) from None
        self._re2: Any = None
        self._fallback: Any = None
        self._unicode_classes, self._at_end = _features(parsed)
        try:
            self._re2 = re2.compile(pattern, _RE2_OPTIONS)
        except Exception:  # re2.error: a construct RE2 lacks; the fallback decides
            pass
        if self._re2 is not None and not self._unicode_classes:
            return
        # RE2 took it, but its \d \w \s \b are ASCII-only where Python's are Unicode: the fallback
        # answers for non-ASCII texts. RE2 bounded the repeats of such a pattern already.
        if self._re2 is None and _weight(parsed) > MAX_FALLBACK_WEIGHT:
            raise ValueError(f"its counted repeats expand to more than {MAX_FALLBACK_WEIGHT} items, "
                             "too many to evaluate in bounded time")
        try:
            self._fallback = regex.compile(pattern, regex.VERSION0)
        except (regex.error, OverflowError, RecursionError, ValueError) as exc:
            raise ValueError(f"cannot be evaluated in bounded time: {exc}") from None

    @property
    def linear(self) -> bool:
        """Whether RE2 answers for every text (else for ASCII texts at most)."""
        return self._re2 is not None and self._fallback is None

    def _by_re2(self, text: str) -> bool:
        return self._re2 is not None and (self._fallback is None or text.isascii())

    def search(self, text: str, deadline: float = SYNC_DEADLINE) -> Match | None:
        """Search `text` here and now; a fallback pattern gives up after `deadline` (RegexTimeout)."""
        if self._by_re2(text):
            match: Match | None = self._re2.search(text)
            if match is None and self._at_end and text.endswith("\n"):
                # Python's `$` also matches just before a final newline; RE2's only at the very end.
                match = self._re2.search(text[:-1])
            return match
        try:
            found: Match | None = self._fallback.search(text, timeout=deadline, concurrent=True)
        except TimeoutError:
            raise RegexTimeout(f"/{self.pattern}/ took longer than {deadline:g}s") from None
        return found

    async def search_async(self, text: str, deadline: float = ASYNC_DEADLINE) -> Match | None:
        """Like `search`; a fallback pattern runs in a worker thread so the event loop keeps its timing."""
        if self._by_re2(text):
            return self.search(text)
        return await asyncio.to_thread(self.search, text, deadline)


@lru_cache(maxsize=4096)
def compile_bounded(pattern: str) -> BoundedRegex:
    """A BoundedRegex (cached); raises ValueError with a message for users."""
    return BoundedRegex(pattern)


def check_pattern(pattern: str) -> str:
    """`pattern` if it can be evaluated in bounded time, else ValueError naming it."""
    try:
        compile_bounded(pattern)
    except ValueError as exc:
        shown = pattern if len(pattern) <= 80 else pattern[:77] + "..."
        raise ValueError(f"invalid regular expression {shown!r}: {exc}") from None
    return pattern
