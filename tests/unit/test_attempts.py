"""One scheduled run of any prober: the hard deadline, a prober that raises, retries and `negative:`."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from probes.agent.attempts import HARD_DEADLINE_MARGIN, run_probe
from probes.agent.config_file import parse_config
from probes.probers.base import Prober, RunContext
from probes.result import ProbeResult


class Scripted(Prober):
    """Answers run by run from a list: True/False for a result, an exception to raise, "hang" to ignore
    its deadline."""

    has_steps: ClassVar[bool] = True

    def __init__(self, config: Any, answers: list[Any]) -> None:
        super().__init__(config)
        self.answers = answers
        self.calls = 0

    async def run(self, ctx: RunContext) -> ProbeResult:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if answer == "hang":
            await asyncio.sleep(3600)
        if isinstance(answer, Exception):
            raise answer
        return ProbeResult(self.name, "http", bool(answer), 0.01, reason=None if answer else "status",
                           message="fine" if answer else "status 500")


def config(extra: str = "") -> Any:
    text = f"probes:\n  - {{name: p, type: http, url: 'http://x.test/', timeout: 200ms, interval: 10s{extra}}}\n"
    return parse_config(text, "agent.yaml", env={}).probes[0]


def attempt(prober: Prober) -> ProbeResult:
    return asyncio.run(run_probe(prober, RunContext(run=0, timeout=prober.config.timeout, http=None)))  # type: ignore[arg-type]


def test_a_prober_that_ignores_its_deadline_is_cut_off_with_reason_timeout() -> None:
    start = time.perf_counter()
    result = attempt(Scripted(config(), ["hang"]))
    elapsed = time.perf_counter() - start
    assert (result.success, result.reason) == (False, "timeout")
    assert 0.2 + HARD_DEADLINE_MARGIN <= elapsed < 0.2 + HARD_DEADLINE_MARGIN + 2
    assert result.steps == []  # shaped like the type's results: it has steps


def test_a_prober_bug_fails_the_probe_not_the_agent() -> None:
    result = attempt(Scripted(config(), [KeyError("oops")]))
    assert (result.success, result.reason) == (False, "error") and "KeyError" in result.message


def test_retries_until_an_attempt_succeeds_waiting_retry_delay_between() -> None:
    prober = Scripted(config(", retries: 2, retry_delay: 100ms"), [False, True])
    start = time.perf_counter()
    result = attempt(prober)
    assert result.success and result.attempts == 2 and prober.calls == 2
    assert time.perf_counter() - start >= 0.1
    exhausted = Scripted(config(", retries: 2, retry_delay: 10ms"), [False])
    assert attempt(exhausted).attempts == 3 and exhausted.calls == 3


def test_negative_inverts_the_verdict_and_says_why() -> None:
    refused = attempt(Scripted(config(", negative: true"), [False]))
    assert refused.success and refused.message.startswith("failed as expected: status")
    allowed = attempt(Scripted(config(", negative: true"), [True]))
    assert (allowed.success, allowed.reason) == (False, "assertion")
    assert allowed.message.startswith("expected the check to fail")
