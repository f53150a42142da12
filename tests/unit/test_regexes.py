"""User regexes: Python's syntax and answers, bounded time. RE2 where it gives Python's answer, the
deadline-bounded fallback elsewhere, and a load error for what neither can bound."""

from __future__ import annotations

import asyncio
import os
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.regexes import RegexTimeout, check_pattern, compile_bounded


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("healthy$", "healthy\n"),  # Python's $ matches before a final newline; RE2's does not
        ("x$", "x\n\n"),
        (r"^\d+$", "١٢٣"),  # Unicode digits: RE2's \d is ASCII-only
        (r"\bcafé\b", "un café noir"),
        (r"\s", "\u00a0"),
        (r"[^\d]", "1"),
        ("(?i)HEALTHY", "healthy"),
        (r"(?m)^b$", "a\nb\nc"),
        (r"(?s)^a.c$", "a\nc"),
        (r"(\w)\1", "caffè"),  # a backreference: the fallback
        (r"(?<=a)b", "ab"),  # a lookbehind: the fallback
    ],
)
def test_answers_are_pythons(pattern: str, text: str) -> None:
    assert (compile_bounded(pattern).search(text, deadline=1.0) is not None) == (re.search(pattern, text) is not None)


PIECES = ["a", "b", "é", ".", r"\d", r"\w", r"\s", r"\b", "$", "^", "[ab]", "[^a]", "(a|b)", "a*", "b+",
          "(?:ab)?", "1", " ", "\n", "\\n"]
pattern_strategy = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)
text_strategy = st.text(alphabet="ab \u00e91\n\u0661", max_size=12)  # \u0661: an Arabic-Indic digit


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "0")) or 300, deadline=2000, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(pattern=pattern_strategy, text=text_strategy)
def test_random_patterns_agree_with_python(pattern: str, text: str) -> None:
    try:
        expected = re.search(pattern, text) is not None
    except re.error:
        with pytest.raises(ValueError):
            check_pattern(pattern)
        return
    assert (compile_bounded(pattern).search(text, deadline=1.0) is not None) == expected, (pattern, text)


def test_a_catastrophic_pattern_re2_can_run_is_linear() -> None:
    pattern = compile_bounded("^(a+)+$")
    assert pattern.linear
    started = time.monotonic()
    assert pattern.search("a" * 200_000 + "b") is None  # Python's re would take longer than the universe
    assert time.monotonic() - started < 1.0


def test_a_catastrophic_fallback_pattern_gives_up_at_its_deadline_without_blocking_the_loop() -> None:
    pattern = compile_bounded(r"(\w+)\1+$")
    assert not pattern.linear

    async def scenario() -> tuple[float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        with pytest.raises(RegexTimeout, match=r"took longer than 0\.5s"):
            await pattern.search_async("ab" * 5000 + "c", deadline=0.5)
        task.cancel()
        return time.monotonic() - started, ticks

    elapsed, ticks = asyncio.run(scenario())
    assert elapsed < 3.0
    assert ticks >= elapsed / 0.01 / 4  # the loop kept turning while the regex ran


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("a{99999999999}", "the repetition number is too large"),
        ("(?:a{1000}){1000}", "counted repeats expand"),  # RE2 refuses it, and it is too big for the fallback
        (r"(a)(?:\1{100}){200}", "counted repeats expand"),
        ("x" * 5000, "longer than 4096"),
        ("(", "missing ), unterminated subpattern"),
        (r"\p{L}", "bad escape"),  # not Python's syntax, though RE2 would take it
    ],
)
def test_patterns_nothing_can_bound_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_pattern(pattern)
