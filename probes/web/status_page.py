"""`/`: one row per probe, failing first, with state, success ratio, a sparkline and time in state.

The `<tr data-probe="NAME" data-state="up|degraded|down|pending">` attributes are a contract: scripts and
browser tests find probes by them. No JavaScript is needed; the page refreshes itself.
"""

from __future__ import annotations

import html
import time
from urllib.parse import quote

from probes.plural import count
from probes.redaction import redact_url
from probes.web.page_parts import STATE_ORDER, ago, badge, header, ms, page, ratio, sparkline
from probes.web.view import AgentView

DEFAULT_REFRESH = 5


def render_status_page(agent: AgentView, *, refresh: int = DEFAULT_REFRESH) -> str:
    now = time.time()
    rows: list[tuple[int, str, str]] = []
    counts: dict[str, int] = {}
    for name, prober in agent.probers().items():
        cfg = prober.config
        history = agent.probe_history(name)
        state = history.state if history is not None else "pending"
        counts[state] = counts.get(state, 0) + 1
        last = history.last if history is not None else None
        runs = list(history.runs) if history is not None else []
        size = history.size if history is not None else 1
        since = ago(now - history.state_since) if history and history.state_since is not None else "-"
        if last is None:
            detail, duration, when = "waiting for the first run", "-", "-"
        else:
            detail = (f"{last.reason}: " if last.reason else "") + last.message
            duration, when = ms(last.duration_seconds), f"{ago(now - last.started_at)} ago"
        link = f"/probes/{quote(name, safe='')}"
        rows.append((STATE_ORDER.get(state, 9), name, (
            f'<tr class="state-{state}" data-probe="{html.escape(name)}" data-state="{state}">'
            f'<td><a href="{link}">{html.escape(name)}</a></td><td>{badge(state)}</td>'
            f'<td class="num">{since}</td><td class="num">{ratio(history.success_ratio if history else None)}</td>'
            f"<td>{sparkline(runs, size)}</td><td class='num'>{duration}</td><td class='num'>{when}</td>"
            f"<td class='detail'>{html.escape(detail)}</td><td>{html.escape(cfg.type)}</td>"
            f"<td class='muted'>{html.escape(redact_url(cfg.target()))}</td></tr>"
        )))
    rows.sort(key=lambda row: (row[0], row[1]))
    summary = " · ".join(f'<span class="{state}">{counts[state]} {state}</span>'
                         for state in sorted(counts, key=lambda s: STATE_ORDER.get(s, 9)))
    warning = ""
    if agent.last_reload_error:
        warning = ('<p class="down">The last reload failed; still running the previous config:</p>'
                   f"<pre>{html.escape(agent.last_reload_error)}</pre>")
    refreshing = f" <span class='muted'>· refreshes every {refresh}s</span>" if refresh > 0 else ""
    body = (header(agent, "probe-agent") + warning
            + f"<p>{count(len(rows), 'probe')}: {summary or 'none configured'}"
            + f"{refreshing}</p>")
    table = (
        "<table id='probes' class='probes'><thead><tr><th>probe</th><th>state</th><th class='num'>for</th>"
        "<th class='num'>success</th><th>recent runs</th><th class='num'>duration</th>"
        "<th class='num'>last run</th><th>detail</th><th>type</th><th>target</th></tr></thead><tbody>"
        + "".join(row for _, _, row in rows)
        + "</tbody></table>"
    )
    failing = counts.get("down", 0)
    title = f"probe-agent: {failing} down" if failing else "probe-agent: all up"
    return page(title, body + table, refresh=refresh)
