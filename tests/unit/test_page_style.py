"""One stylesheet for every HTML page the package writes: the status page, the drill and load reports."""

from __future__ import annotations

from probes.drills import html_report
from probes.load import report as load_report
from probes.page_style import CSS
from tests.unit.test_drill_reports import _report
from tests.unit.test_load_report import entry, raw_run


def test_drill_and_load_reports_inline_the_shared_stylesheet() -> None:
    drill_page = html_report.to_html(_report())
    load_page = load_report.to_html(load_report.build_report(raw_run([entry("search", "GET", {5: 10})]), []))
    for page in (drill_page, load_page):
        assert CSS in page
        assert "<link" not in page and "<script src" not in page  # self-contained: agents often have no internet
