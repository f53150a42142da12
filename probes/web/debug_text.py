"""The debug record of a probe as plain text (`/probes/NAME?debug=true`, like blackbox_exporter's
`debug=true`); the HTML probe page shows the same blocks inside <pre>."""

from __future__ import annotations

from probes.redaction import redact_url
from probes.result import BODY_EXCERPT_BYTES, Exchange, ProbeResult
from probes.web.page_parts import STATE_WORDS, ago, ms, ratio, utc
from probes.web.view import ProbeHistoryView


def exchange_lines(exchange: Exchange) -> list[str]:
    """Request line and headers (`>`), status and response headers (`<`), then the start of the body."""
    lines = [f"> {exchange.method} {exchange.url}"]
    lines += [f"> {name}: {value}" for name, value in exchange.request_headers]
    if exchange.status:
        lines.append(f"< HTTP {exchange.status}")
        lines += [f"< {name}: {value}" for name, value in exchange.response_headers]
        shown = min(exchange.body_bytes, BODY_EXCERPT_BYTES)
        lines.append(f"body ({exchange.body_bytes} bytes" + (f", first {shown} shown)" if shown < exchange.body_bytes
                                                              else ")") + ":")
        lines.append(exchange.body_excerpt)
    else:
        lines.append("< (no response)")
    if exchange.error:
        lines.append(f"error: {exchange.error}")
    return lines


def result_summary(result: ProbeResult) -> list[str]:
    verdict = "FAILED" if not result.success else ("DEGRADED" if result.degraded else "OK")
    lines = [f"{verdict} at {utc(result.started_at)} in {ms(result.duration_seconds)}"
             f" (attempts: {result.attempts}, status: {result.status_code or '-'})"]
    if result.reason:
        lines.append(f"reason: {result.reason}")
    if result.message:
        lines.append(f"message: {result.message}")
    return lines


def result_lines(result: ProbeResult) -> list[str]:
    lines = result_summary(result)
    if result.phases:
        lines += ["", "phases:"] + [f"  {phase:<11} {ms(seconds):>10}" for phase, seconds in result.phases.items()]
    if result.steps:
        lines += ["", "steps:"]
        for step in result.steps:
            verdict = "ok" if step.success else ("skipped" if step.reason == "skipped" else "FAILED")
            lines.append(f"  {step.step:<20} {verdict:<8} {ms(step.duration_seconds):>10}  "
                         f"{step.status_code or '-':>3}  {step.message}")
    for index, exchange in enumerate(result.exchanges, 1):
        title = f"request {index}" + (f" (step {exchange.step})" if exchange.step else "")
        lines += ["", f"{title}:", *exchange_lines(exchange)]
    return lines


def debug_text(name: str, type_: str, target: str, history: ProbeHistoryView, now: float) -> str:
    lines = [f"probe: {name}", f"type: {type_}", f"target: {redact_url(target)}"]
    state = STATE_WORDS.get(history.state, history.state)
    since = f" for {ago(now - history.state_since)}" if history.state_since is not None else ""
    lines.append(f"state: {state}{since}")
    lines.append(f"success ratio: {ratio(history.success_ratio)} of the last {len(history.runs)} runs")
    last, failure = history.last, history.last_failure
    lines += ["", "=== last run ==="]
    lines += result_lines(last) if last is not None else ["no run yet"]
    lines += ["", "=== last failure ==="]
    if failure is None:
        lines.append("no failure in this agent's memory")
    elif failure is last:
        lines.append("the last run (above)")
    else:
        lines += result_lines(failure)
    return "\n".join(lines) + "\n"
