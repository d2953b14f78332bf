"""JUnit XML for CI test views (GitLab, Jenkins, GitHub test-report actions): one test per case and check family.

A test fails when a finding in it fails the run (--fail-on, with the baseline and waivers); its failure lists those
findings with their details. A test whose findings were all waived is skipped with the waivers' reasons; findings
that do not fail the run (below --fail-on, or unchanged against the baseline) are listed in its system-out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from qa.output.files import write_atomic
from qa.output.text import one_line, readable
from qa.report.model import Report
from qa.rules.finding import Finding, fails

# Check families by code prefix, in the order of the pipeline; a test is named after its case within a family.
FAMILIES = {"META": "meta", "CASE": "cases", "FILE": "files", "GEOM": "geometry", "IMAGE": "image", "LABEL": "labels",
            "QA": "tsqa"}
RELEASE_TEST = "(release)"  # release-level findings; parentheses keep it apart from any case id
MESSAGE_CHARS = 400


def family(code: str) -> str:
    prefix = code.split("_", 1)[0]
    return FAMILIES.get(prefix, prefix.lower())


def finding_line(f: Finding) -> str:
    """One finding as a line of a failure or system-out: severity, code, state, path, message, details."""
    name = f.code + (f":{f.subcode}" if f.subcode else "")
    state = "waived: " + f.waived.reason if f.waived else f.baseline
    details = "; ".join(f"{k}={v}" for k, v in f.details.items())
    return one_line(f"{f.severity} {name}" + (f" [{state}]" if state else "") + f" {f.path or '-'}: {f.message}"
                    + (f" ({details})" if details else ""))


def _summary(found: list[Finding]) -> str:
    text = "; ".join(f"{f.code} {f.path or ''}".strip() for f in found)
    head = f"{len(found)} finding{'' if len(found) == 1 else 's'}: "
    return one_line(head + (text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…"))


def _testcase(suite: ET.Element, name: str, found: list[Finding], report: Report) -> tuple[int, int]:
    """Append one test; returns (failed, skipped) as 0 or 1."""
    fail_on, only_new = report.summary.fail_on, report.summary.counted == "new"
    case = ET.SubElement(suite, "testcase", name=readable(name), classname=f"tsqa.{suite.get('name')}", time="0")
    failing = [f for f in found if fails(f, fail_on, only_new)]
    skipped = not failing and bool(found) and all(f.waived is not None for f in found)
    if failing:
        failure = ET.SubElement(case, "failure", message=_summary(failing), type=failing[0].code)
        failure.text = "\n".join(finding_line(f) for f in failing)
    elif skipped:
        reasons = sorted({f.waived.reason for f in found if f.waived is not None})
        ET.SubElement(case, "skipped", message=one_line("waived: " + "; ".join(reasons)))
    if found:
        ET.SubElement(case, "system-out").text = "\n".join(finding_line(f) for f in found)
    return int(bool(failing)), int(skipped)


def _properties(parent: ET.Element, report: Report) -> None:
    props = ET.SubElement(parent, "properties")
    s = report.summary
    values = {"spec": report.spec_id, "release": report.release, "mode": report.mode, "fail_on": s.fail_on,
              "counted": s.counted, "tsqa": report.version}
    if report.baseline is not None:
        values["baseline"] = report.baseline.file
    if report.waivers is not None:
        values["waivers"] = report.waivers.file
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=readable(str(value)))


def _families(report: Report) -> Iterable[str]:
    seen = list(FAMILIES.values())
    return seen + sorted({family(f.code) for f in report.findings} - set(seen))


def junit_xml(report: Report) -> str:
    """The report as JUnit XML: a test suite per check family, a test per case (and one for the release)."""
    grouped: dict[tuple[str, str], list[Finding]] = {}
    for f in report.findings:
        grouped.setdefault((family(f.code), f.case or RELEASE_TEST), []).append(f)
    names = [RELEASE_TEST, *(c.case for c in report.cases)]
    names += sorted({case for _, case in grouped} - set(names))  # a finding naming a case the report did not scan
    started = report.started.strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element("testsuites", name=readable(f"tsqa {report.spec_id} {report.release}"),
                      time=f"{report.duration_s:.3f}")
    totals = [0, 0, 0]
    for name in _families(report):
        suite = ET.SubElement(root, "testsuite", name=name, timestamp=started, hostname="tsqa", time="0")
        _properties(suite, report)
        failed = skipped = 0
        for case in names:
            f, s = _testcase(suite, case, grouped.get((name, case), []), report)
            failed, skipped = failed + f, skipped + s
        suite.set("tests", str(len(names)))
        suite.set("failures", str(failed))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
        totals = [totals[0] + len(names), totals[1] + failed, totals[2] + skipped]
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", "0")
    root.set("skipped", str(totals[2]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: Report, path: Path) -> Path:
    write_atomic(path, junit_xml(report))
    return path
