"""One scheduled run of a probe, whatever the prober does: a hard deadline, retries, `negative:`,
and no exception ever escapes into the scheduler."""

from __future__ import annotations

import asyncio
import logging
import time

from probes.probers.base import Prober, RunContext
from probes.redaction import redact_result
from probes.result import ProbeResult

log = logging.getLogger(__name__)

# A prober gets ctx.timeout; the runner cancels it this much later, so a prober that ignores its
# own deadline (a bug, or a library that does) still cannot hold a run open.
HARD_DEADLINE_MARGIN = 0.5


async def _attempt(prober: Prober, ctx: RunContext) -> ProbeResult:
    start = time.perf_counter()
    cfg = prober.config
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for costs a task per run.
        async with asyncio.timeout(ctx.timeout + HARD_DEADLINE_MARGIN):
            return await prober.run(ctx)
    except TimeoutError:
        return prober.failure("timeout", f"no result within {ctx.timeout:g}s", time.perf_counter() - start)
    except Exception as exc:  # a prober bug must fail the probe, not the agent
        log.exception("probe %s raised", cfg.name)
        return prober.failure("error", f"{type(exc).__name__}: {exc}", time.perf_counter() - start)


def _invert(result: ProbeResult) -> ProbeResult:
    if result.success:
        result.success, result.degraded = False, False
        result.reason, result.message = "assertion", f"expected the check to fail, but it passed ({result.message})"
    else:
        result.success = True
        result.message = f"failed as expected: {result.reason}: {result.message}"
        result.reason = None
    return result


async def run_probe(prober: Prober, ctx: RunContext) -> ProbeResult:
    cfg = prober.config
    started_at = time.time()
    attempts = cfg.retries + 1
    result = await _attempt(prober, ctx)
    attempt = 1
    while attempt < attempts and result.success == cfg.negative:
        await asyncio.sleep(cfg.retry_delay)
        result = await _attempt(prober, ctx)
        attempt += 1
    result.attempts = attempt
    result.started_at = started_at
    # Probers clean what they make; this catches what they could not know (a prober bug's exception
    # text, a value that became secret after the message was made), so no output ever sees a secret.
    return redact_result(_invert(result) if cfg.negative else result)
