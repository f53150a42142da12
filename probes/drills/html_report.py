"""The drill report as one self-contained HTML page: a table and an inline-SVG timeline per drill.

The timeline runs from the injection (0 s): the fault as a band until the revert; per alert, pending (amber)
then firing (red) until resolved, markers for Alertmanager and the receiver's notifications, and the
theoretical window [for, bound] as a hatched band, so a late alert is visible at a glance.
"""

from __future__ import annotations

import json
import math
from html import escape

from probes.drills.results import AlertResult, DrillResult, Report
from probes.page_style import CSS

WIDTH = 860
LEFT = 170
RIGHT = 30
ROW = 40

# The shared stylesheet, plus what only the timeline needs.
_CSS = CSS + """
td,th{text-align:right}td:first-child,th:first-child{text-align:left}
"""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _span(drill: DrillResult) -> float:
    times = [drill.reverted or 0.0]
    for alert in drill.alerts:
        times += [
            t for t in (alert.pending, alert.firing, alert.alertmanager, alert.notified) if t is not None
        ]
        if drill.reverted is not None:
            times += [drill.reverted + t for t in (alert.resolved, alert.resolved_notified) if t is not None]
        if alert.bound is not None and alert.bound.reachable:
            times.append(alert.bound.notified or alert.bound.firing)
    return max(1.0, max(times) * 1.08)


def _ticks(span: float) -> list[float]:
    raw = span / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(span / step) + 1)]


def _marker(x: float, y: float, color: str, title: str, shape: str = "circle") -> str:
    tip = f"<title>{escape(title)}</title>"
    if shape == "diamond":
        points = f"{x},{y - 6} {x + 6},{y} {x},{y + 6} {x - 6},{y}"
        return f'<polygon points="{points}" fill="{color}" stroke="#222">{tip}</polygon>'
    return f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{color}" stroke="#222">{tip}</circle>'


def timeline_svg(drill: DrillResult) -> str:
    span = _span(drill)
    rows = 1 + len(drill.alerts)
    height = 30 + rows * ROW + 24

    def x(t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * min(t, span) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="timeline of drill {escape(drill.name)}">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="3" height="6" fill="#9ab7e6"/></pattern></defs>',
    ]
    axis_y = 30 + rows * ROW
    for tick in _ticks(span):
        parts.append(f'<line x1="{x(tick):.1f}" y1="20" x2="{x(tick):.1f}" y2="{axis_y}" stroke="#eee"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{axis_y + 14}" text-anchor="middle">{tick:g}s</text>')
    y = 30
    parts.append(f'<text x="8" y="{y + 4}">fault</text>')
    end = drill.reverted if drill.reverted is not None else span
    if drill.injected:
        parts.append(
            f'<rect x="{x(0):.1f}" y="{y - 8}" width="{max(1.0, x(end) - x(0)):.1f}" height="16" '
            f'fill="#f3c1bd"><title>fault active 0-{_fmt(drill.reverted)}</title></rect>'
        )
        parts.append(_marker(x(0), y, "#555", "injected at 0 s", "diamond"))
        parts.append(f'<text x="{x(0) + 8:.1f}" y="{y - 11}">injected</text>')
    if drill.reverted is not None:
        parts.append(_marker(x(drill.reverted), y, "#fff", f"reverted at {_fmt(drill.reverted)}", "diamond"))
        parts.append(f'<text x="{x(drill.reverted) + 8:.1f}" y="{y - 11}">reverted</text>')
    for alert in drill.alerts:
        y += ROW
        parts.extend(_alert_row(alert, drill.reverted, y, x))
    parts.append("</svg>")
    return "\n".join(parts)


def _alert_row(alert: AlertResult, reverted: float | None, y: float, x: object) -> list[str]:
    assert callable(x)
    out = [f'<text x="8" y="{y + 4}">{escape(alert.alert[:24])}</text>']
    if alert.bound is not None and alert.bound.reachable:
        low, high = alert.bound.firing_min, alert.bound.firing
        out.append(
            f'<rect x="{x(low):.1f}" y="{y - 11}" width="{max(1.0, x(high) - x(low)):.1f}" height="22" '
            f'fill="url(#hatch)" opacity=".6"><title>theoretical firing window '
            f"{low:g}-{high:g} s</title></rect>"
        )
        out.append(
            f'<line x1="{x(high):.1f}" y1="{y - 13}" x2="{x(high):.1f}" y2="{y + 13}" stroke="#2356a8" '
            f'stroke-dasharray="3,2"><title>bound {high:g} s</title></line>'
        )
        out.append(f'<text x="{x(high) + 3:.1f}" y="{y + 15}" fill="#2356a8">bound</text>')
    resolved_at = None if reverted is None or alert.resolved is None else reverted + alert.resolved
    span_end = (WIDTH - RIGHT)
    if x(alert.within) < span_end:
        out.append(f'<line x1="{x(alert.within):.1f}" y1="{y - 13}" x2="{x(alert.within):.1f}" y2="{y + 13}" '
                   f'stroke="#b3261e" stroke-dasharray="2,2"><title>within {alert.within:g} s</title></line>')
        out.append(f'<text x="{x(alert.within) + 3:.1f}" y="{y - 8}" fill="#b3261e">within</text>')
    if alert.firing is None:
        out.append(f'<text x="{LEFT + 6}" y="{y + 4}" fill="#b3261e">never fired</text>')
    else:
        out.append(f'<text x="{x(alert.firing):.1f}" y="{y - 9}" text-anchor="middle">{alert.firing:.1f}s</text>')
    if alert.pending is not None:
        stop = alert.firing if alert.firing is not None else (resolved_at or reverted or 0.0)
        stop = max(stop, alert.pending)
        out.append(
            f'<rect x="{x(alert.pending):.1f}" y="{y - 5}" '
            f'width="{max(1.0, x(stop) - x(alert.pending)):.1f}" '
            f'height="10" fill="#f0b429"><title>pending</title></rect>'
        )
        out.append(_marker(x(alert.pending), y, "#f0b429", f"pending at {_fmt(alert.pending)}"))
    if alert.firing is not None:
        stop = resolved_at if resolved_at is not None else (reverted or alert.firing)
        out.append(
            f'<rect x="{x(alert.firing):.1f}" y="{y - 5}" width="{max(1.0, x(stop) - x(alert.firing)):.1f}" '
            f'height="10" fill="#d64541"><title>firing</title></rect>'
        )
        out.append(_marker(x(alert.firing), y, "#d64541", f"firing at {_fmt(alert.firing)}"))
    if alert.alertmanager is not None:
        out.append(
            _marker(
                x(alert.alertmanager),
                y + 14,
                "#8e6cc4",
                f"in Alertmanager at {_fmt(alert.alertmanager)}",
                "diamond",
            )
        )
    if alert.notified is not None:
        out.append(
            _marker(
                x(alert.notified), y, "#2f80ed", f"notified (firing) at {_fmt(alert.notified)}", "diamond"
            )
        )
    if resolved_at is not None:
        out.append(_marker(x(resolved_at), y, "#27ae60", f"resolved {_fmt(alert.resolved)} after the revert"))
    if reverted is not None and alert.resolved_notified is not None:
        out.append(
            _marker(
                x(reverted + alert.resolved_notified),
                y,
                "#27ae60",
                f"notified (resolved) {_fmt(alert.resolved_notified)} after the revert",
                "diamond",
            )
        )
    return out


def _bound_cell(alert: AlertResult) -> str:
    bound = alert.bound
    if bound is None:
        return "-"
    if not bound.reachable:
        return "cannot fire"
    mark = {True: " ✓", False: ' <span class="fail">outside</span>', None: ""}[alert.within_bound]
    return f"{bound.firing_min:.1f}&ndash;{bound.firing:.1f} s{mark}"


def _terms_title(alert: AlertResult) -> str:
    """The bound's terms as a tooltip on its cell."""
    if alert.bound is None:
        return ""
    return f' title="{escape(alert.bound.explain())}"'


def drill_section(drill: DrillResult) -> str:
    verdict = '<span class="pass">PASSED</span>' if drill.passed else '<span class="fail">FAILED</span>'
    rows = []
    for a in drill.alerts:
        labels = ", ".join(f"{k}={v}" for k, v in a.labels.items())
        ok = '<span class="pass">ok</span>' if a.passed else '<span class="fail">fail</span>'
        rows.append(
            f"<tr><td>{escape(a.alert)}{' {' + escape(labels) + '}' if labels else ''}</td>"
            f"<td>{_fmt(a.pending)}</td><td>{_fmt(a.firing)}</td>"
            f"<td{_terms_title(a)}>{_bound_cell(a)}</td><td>{a.within:g} s</td>"
            f"<td>{_fmt(a.notified) if a.notify else 'not expected'}</td><td>{_fmt(a.resolved)}</td>"
            f"<td>{ok}</td><td>{escape(a.message or '')}</td></tr>"
        )
    error = f'<p class="fail">{escape(drill.error)}</p>' if drill.error else ""
    return (
        f"<section><h2>{escape(drill.name)} — {verdict}</h2>{error}"
        f"<p>fault: <code>{escape(json.dumps(drill.fault))}</code>; started {escape(drill.started_at)}; "
        f"reverted after {_fmt(drill.reverted)}</p>"
        "<table><tr><th>alert</th><th>pending</th><th>firing</th><th>bound [min&ndash;max]</th><th>within</th>"
        "<th>notified</th><th>resolved after revert</th><th>result</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
        + timeline_svg(drill)
        + "</section>"
    )


def to_html(report: Report) -> str:
    passed = sum(1 for d in report.drills if d.passed)
    title = f"Fire drills: {passed}/{len(report.drills)} passed"
    note = ""
    if report.interrupted:
        note = f'<p class="fail">interrupted by {escape(report.interrupted)}</p>'
    legend = (
        "<p>Times are seconds from the injection (resolution: from the revert). Hatched band: the "
        "theoretical firing window, from the rule's <code>for</code> to the bound "
        "(probe run, scrapes, window fill, evaluations, for: hover a bound for its terms); "
        "amber: pending; red: firing; blue diamond: notification at the receiver; purple: Alertmanager; "
        "green: resolved.</p>"
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>'
        + escape(title)
        + "</title><style>"
        + _CSS
        + "</style></head><body><h1>"
        + escape(title)
        + "</h1>"
        + note
        + legend
        + "".join(drill_section(d) for d in report.drills)
        + "</body></html>\n"
    )


def page(title: str, body: str) -> str:
    """A page in the drill reports' look around `body`."""
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>' + escape(title) + "</title><style>"
        + _CSS + "</style></head><body><h1>" + escape(title) + "</h1>" + body + "</body></html>\n"
    )
