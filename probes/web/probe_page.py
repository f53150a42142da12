"""`/probes/NAME`: one probe's history and the debug record of its last run and last failure."""

from __future__ import annotations

import html
import time
from urllib.parse import quote

from probes.durations import format_duration
from probes.probers.base import Prober
from probes.redaction import redact_url
from probes.result import ProbeResult
from probes.web.debug_text import exchange_lines, result_summary
from probes.web.page_parts import ago, badge, header, ms, page, ratio, sparkline, utc
from probes.web.view import AgentView, ProbeHistoryView

DEFAULT_REFRESH = 10
HISTORY_ROWS = 20

# "Run now" posts, then reloads to show the new result; without JavaScript the form shows the JSON.
_RUN_SCRIPT = """<script>
document.getElementById('run-now').addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = event.target.querySelector('button');
  button.disabled = true; button.textContent = 'running…';
  await fetch(event.target.action, {method: 'POST'});
  location.reload();
});
</script>"""


def _record(title: str, result: ProbeResult | None, css_id: str, empty: str) -> str:
    if result is None:
        return f"<section id='{css_id}'><h2>{title}</h2><p class='muted'>{empty}</p></section>"
    state = "down" if not result.success else ("degraded" if result.degraded else "up")
    parts = [f"<section id='{css_id}' data-state='{state}'><h2>{title} {badge(state)}</h2>",
             f"<pre class='summary'>{html.escape(chr(10).join(result_summary(result)))}</pre>"]
    if result.steps:
        rows = "".join(
            f"<tr class='state-{'up' if s.success else 'down'}' data-step='{html.escape(s.step)}'>"
            f"<td>{html.escape(s.step)}</td>"
            f"<td>{badge('up' if s.success else ('pending' if s.reason == 'skipped' else 'down'))}</td>"
            f"<td class='num'>{s.status_code or '-'}</td><td class='num'>{ms(s.duration_seconds)}</td>"
            f"<td>{html.escape(s.reason or '')}</td><td>{html.escape(s.message)}</td></tr>"
            for s in result.steps)
        parts.append("<h3>steps</h3><table class='steps'><tr><th>step</th><th>result</th><th class='num'>status</th>"
                     f"<th class='num'>duration</th><th>reason</th><th>message</th></tr>{rows}</table>")
    if result.phases:
        cells = "".join(f"<tr><td>{html.escape(p)}</td><td class='num'>{ms(v)}</td></tr>"
                        for p, v in result.phases.items())
        parts.append(f"<h3>phases</h3><table class='phases'>{cells}</table>")
    for index, exchange in enumerate(result.exchanges, 1):
        label = f"request {index}" + (f" (step {html.escape(exchange.step)})" if exchange.step else "")
        parts.append(f"<h3>{label}</h3><pre class='exchange'>"
                     f"{html.escape(chr(10).join(exchange_lines(exchange)))}</pre>")
    parts.append("</section>")
    return "".join(parts)


def _history_table(history: ProbeHistoryView, now: float) -> str:
    rows = []
    for run in list(history.runs)[::-1][:HISTORY_ROWS]:
        state = "down" if not run.success else ("degraded" if run.degraded else "up")
        rows.append(f"<tr class='state-{state}'><td>{utc(run.started_at)}</td>"
                    f"<td class='num'>{ago(now - run.started_at)} ago</td><td>{badge(state)}</td>"
                    f"<td class='num'>{ms(run.duration_seconds)}</td>"
                    f"<td>{html.escape(run.reason or '')}</td></tr>")
    return ("<table class='history'><tr><th>started</th><th class='num'>when</th><th>state</th>"
            f"<th class='num'>duration</th><th>reason</th></tr>{''.join(rows)}</table>")


def render_probe_page(agent: AgentView, prober: Prober, history: ProbeHistoryView, *,
                      refresh: int = DEFAULT_REFRESH) -> str:
    now = time.time()
    cfg = prober.config
    name = prober.name
    path = f"/probes/{quote(name, safe='')}"
    since = f" for {ago(now - history.state_since)}" if history.state_since is not None else ""
    facts = (f"<p id='state' data-state='{history.state}'>{badge(history.state)}{since} · "
             f"success {ratio(history.success_ratio)} of the last {len(history.runs)} runs · "
             f"{html.escape(cfg.type)} · every {format_duration(cfg.interval)}, "
             f"timeout {format_duration(cfg.timeout)} · "
             f"<code>{html.escape(redact_url(cfg.target()))}</code></p>")
    actions = (f"<form id='run-now' method='post' action='{path}/run'><button type='submit'>Run now</button> "
               f"<a href='{path}?debug=true'>plain-text debug view</a></form>")
    last, failure = history.last, history.last_failure
    failure_html = (_record("Last failure", failure, "last-failure", "No failure in this agent's memory.")
                    if failure is None or failure is not last else
                    "<section id='last-failure'><h2>Last failure</h2><p class='muted'>The last run, above.</p>"
                    "</section>")
    body = (header(agent, html.escape(name)) + facts + actions
            + f"<h2>Recent runs</h2>{sparkline(list(history.runs), history.size)}" + _history_table(history, now)
            + _record("Last run", last, "last-run", "No run yet.") + failure_html + _RUN_SCRIPT)
    return page(f"{name}: {history.state}", body, refresh=refresh)
