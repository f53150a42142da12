"""The one small stylesheet of every HTML page the package makes: the agent's status and probe pages,
the drill timeline and the load report. Inlined into each page (agents often have no internet)."""

from __future__ import annotations

CSS = """
:root{--up:#137333;--down:#c5221f;--degraded:#b06000;--pending:#5f6368;--line:#dadce0;--soft:#f6f8fa}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em 2em;color:#202124}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .4em}
a{color:#1a61c4;text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;margin:.5em 0 1em}
td,th{padding:.3em .7em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft)}
code{padding:0 .3em}pre{padding:.6em .8em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
section{border-top:1px solid var(--line);padding-top:.6em;margin-top:1.2em}
.muted{color:#5f6368}
.badge{display:inline-block;min-width:5.5em;padding:.05em .5em;border-radius:3px;color:#fff;
  font-weight:600;text-align:center;letter-spacing:.03em}
.badge.up,.badge.pass{background:var(--up)}.badge.down,.badge.fail{background:var(--down)}
.badge.degraded{background:var(--degraded)}.badge.pending{background:var(--pending)}
.up,.pass{color:var(--up);font-weight:600}.down,.fail{color:var(--down);font-weight:600}
.degraded{color:var(--degraded);font-weight:600}.pending{color:var(--pending)}
.badge.up,.badge.down,.badge.degraded,.badge.pass,.badge.fail{color:#fff}
tr.state-down td:first-child{box-shadow:inset 4px 0 var(--down)}
tr.state-degraded td:first-child{box-shadow:inset 4px 0 var(--degraded)}
table.probes td{white-space:nowrap}table.probes td.detail{white-space:normal;min-width:16em}
tr.state-down td.detail{color:var(--down)}
svg text{font-size:11px;font-family:system-ui,sans-serif}
button{font:inherit;padding:.25em .9em;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
button:hover{background:var(--soft)}
"""


def style_tag() -> str:
    return f"<style>{CSS}</style>"
