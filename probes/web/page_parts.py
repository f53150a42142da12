"""Pieces shared by the agent's HTML pages and the text debug view: state words, times, the sparkline."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from probes import __version__
from probes.page_style import style_tag
from probes.web.view import AgentView, RunView

STATE_WORDS = {"up": "UP", "degraded": "DEGRADED", "down": "DOWN", "pending": "PENDING"}
# Failing first: what the on-call engineer opened the page for.
STATE_ORDER = {"down": 0, "degraded": 1, "pending": 2, "up": 3}


def badge(state: str) -> str:
    return f'<span class="badge {state}">{STATE_WORDS.get(state, state.upper())}</span>'


def ago(seconds: float) -> str:
    """45s, 3m 12s, 2h 5m, 3d 4h: the two largest units are enough to read at a glance."""
    seconds = max(0, int(seconds))
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for word, size in units:
        if seconds >= size or (word == "s" and not parts):
            parts.append(f"{seconds // size}{word}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _run_state(run: RunView) -> str:
    if not run.success:
        return "down"
    return "degraded" if run.degraded else "up"


_COLOURS = {"up": "#137333", "degraded": "#b06000", "down": "#c5221f"}


def sparkline(runs: Sequence[RunView], slots: int, *, bar: int = 2, height: int = 22) -> str:
    """One bar per run, oldest left; height is the run's duration, failures are full-height red."""
    step = bar + 1
    width = max(1, slots) * step
    longest = max((r.duration_seconds for r in runs), default=0.0) or 1.0
    offset = (max(1, slots) - len(runs)) * step  # right-aligned: the newest run is always at the end
    bars = []
    for index, run in enumerate(runs):
        state = _run_state(run)
        h = height if state == "down" else max(3, round(run.duration_seconds / longest * height))
        bars.append(f'<rect x="{offset + index * step}" y="{height - h}" width="{bar}" height="{h}" '
                    f'fill="{_COLOURS[state]}"/>')
    failed = sum(not r.success for r in runs)
    label = f"last {len(runs)} runs: {failed} failed"
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{label}"><title>{label}</title>'
            f'<rect width="{width}" height="{height}" fill="#f1f3f4"/>{"".join(bars)}</svg>')


def page(title: str, body: str, *, refresh: int) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh > 0 else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
            f"<title>{html.escape(title)}</title>{style_tag()}</head><body>{body}</body></html>")


def header(agent: AgentView, title: str) -> str:
    identity = agent.identity
    return (f"<h1>{title}</h1><p class='muted'>probe-agent {__version__} · region "
            f"<b>{html.escape(identity.region)}</b> · agent <b>{html.escape(identity.agent)}</b> · config "
            f"{html.escape(agent.config_path)} · <a href='/'>all probes</a> · <a href='/metrics'>/metrics</a>"
            " · <a href='/api/results'>/api/results</a></p>")
