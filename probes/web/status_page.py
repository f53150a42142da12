"""A plain HTML page of the probes and their last results (no JavaScript; refreshes itself)."""

from __future__ import annotations

import html
import time

from probes import __version__
from probes.web.view import AgentView

_STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}
.up{color:#137333;font-weight:600}.down{color:#c5221f;font-weight:600}.degraded{color:#b06000;font-weight:600}
.muted{color:#777}
"""


def render_status_page(agent: AgentView) -> str:
    now = time.time()
    rows = []
    for name, prober in sorted(agent.probers().items()):
        result = agent.latest.get(name)
        cfg = prober.config
        if result is None:
            state, detail, when, duration = '<span class="muted">pending</span>', "", "", ""
        else:
            css = "degraded" if result.degraded else ("up" if result.success else "down")
            label = "DEGRADED" if result.degraded else ("UP" if result.success else "DOWN")
            state = f'<span class="{css}">{label}</span>'
            detail = html.escape((f"{result.reason}: " if result.reason else "") + result.message)
            when = f"{now - result.started_at:.0f}s ago"
            duration = f"{result.duration_seconds * 1000:.1f} ms"
        target = html.escape(cfg.target())
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(cfg.type)}</td><td>{state}</td>"
                    f"<td>{duration}</td><td>{when}</td><td>{cfg.interval:g}s</td><td>{target}</td>"
                    f"<td>{detail}</td></tr>")
    warning = ""
    if agent.last_reload_error:
        warning = (f'<p class="down">The last reload failed; still running the previous config:</p>'
                   f"<pre>{html.escape(agent.last_reload_error)}</pre>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='5'>"
        f"<title>probe-agent</title><style>{_STYLE}</style></head><body>"
        f"<h1>probe-agent</h1><p class='muted'>version {__version__} · region "
        f"{html.escape(agent.identity.region)} · agent {html.escape(agent.identity.agent)} · "
        f"config {html.escape(agent.config_path)} · <a href='/metrics'>/metrics</a></p>{warning}"
        "<table><tr><th>probe</th><th>type</th><th>state</th><th>duration</th><th>last run</th>"
        f"<th>every</th><th>target</th><th>detail</th></tr>{''.join(rows)}</table></body></html>"
    )
