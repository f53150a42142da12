"""The one JUnit XML writer (probe results, load thresholds, drills): CI servers read `tests`, `failures`,
`errors` and `skipped` from each suite, so they are always counted from the cases written."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree import ElementTree as ET


@dataclass(slots=True)
class Case:
    name: str
    classname: str
    time: float = 0.0
    failure: str | None = None
    """A failed check: the message (also the element's text unless `details` is given)."""
    failure_type: str = "failure"
    error: str | None = None
    """Could not check at all (e.g. a drill that never injected)."""
    skipped: str | None = None
    details: str | None = None
    """Longer text for the failure or error element."""
    output: str | None = None
    """`system-out`: what a person reading the CI log wants to see for a passing case too."""


@dataclass(slots=True)
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)
    time: float | None = None
    timestamp: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


def render(suites: list[Suite], name: str) -> str:
    root = ET.Element("testsuites", name=name)
    for suite in suites:
        attrs = {
            "name": suite.name,
            "tests": str(len(suite.cases)),
            "failures": str(sum(1 for c in suite.cases if c.failure is not None)),
            "errors": str(sum(1 for c in suite.cases if c.error is not None)),
            "skipped": str(sum(1 for c in suite.cases if c.skipped is not None)),
            "time": f"{suite.time if suite.time is not None else sum(c.time for c in suite.cases):.3f}",
        }
        if suite.timestamp:
            attrs["timestamp"] = suite.timestamp
        element = ET.SubElement(root, "testsuite", attrs)
        if suite.properties:
            props = ET.SubElement(element, "properties")
            for key, value in suite.properties.items():
                ET.SubElement(props, "property", name=key, value=value)
        for case in suite.cases:
            item = ET.SubElement(element, "testcase", classname=case.classname, name=case.name,
                                 time=f"{case.time:.3f}")
            if case.error is not None:
                ET.SubElement(item, "error", message=case.error).text = case.details or case.error
            elif case.failure is not None:
                ET.SubElement(item, "failure", type=case.failure_type,
                              message=case.failure).text = case.details or case.failure
            elif case.skipped is not None:
                ET.SubElement(item, "skipped", message=case.skipped)
            if case.output:
                ET.SubElement(item, "system-out").text = case.output
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
