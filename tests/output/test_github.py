"""GitHub Actions output: workflow commands escaped as the runner parses them, at most ten per level, job summary."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from report_builders import finding, mask, report

from qa.output.github import annotation, annotations, append_summary, escape_data, escape_property, job_summary
from qa.report.gate import Gate, apply_gate
from qa.rules.baseline import baseline_of
from qa.rules.waivers import Waiver, Waivers

HOSTILE = "s0001/segmentations/50%,a:b::error::x\r\n::warning file=y::z.nii.gz"


def parse(command: str) -> tuple[str, dict[str, str], str]:
    """A workflow command as the runner reads it: '::' name, properties up to the next '::', then the message."""
    body = command.removeprefix("::")
    head, message = body.split("::", 1)
    name, _, props = head.partition(" ")
    fields = dict(p.split("=", 1) for p in props.split(",")) if props else {}

    def unescape(text: str) -> str:
        for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
            text = text.replace(escaped, raw)
        return text

    return name, {k: unescape(v) for k, v in fields.items()}, unescape(message)


def test_data_and_properties_are_escaped_like_actions_core() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert escape_data("%0A") == "%250A", "an escape sequence in the text is not taken for one"


def test_a_hostile_path_survives_the_round_trip_through_the_runners_parser() -> None:
    hostile = finding("FILE_UNEXPECTED", HOSTILE, "warning", subcode="unknown")
    assert hostile.path == HOSTILE.replace("\r\n", "\\r\\n")  # a finding holds control characters escaped
    command = annotation(hostile, "data")
    assert "\n" not in command and "\r" not in command
    name, props, message = parse(command)
    assert name == "warning" and sorted(props) == ["file", "title"]
    assert props["file"] == f"data/{hostile.path}" and props["title"] == "tsqa FILE_UNEXPECTED:unknown"
    assert message.startswith(hostile.path)


def test_a_file_outside_the_workspace_has_no_file_property() -> None:
    _, props, _ = parse(annotation(finding("FILE_CORRUPT", "s0002/ct.nii.gz"), None))
    assert "file" not in props


def test_at_most_ten_errors_and_ten_warnings_and_a_notice_of_the_rest() -> None:
    errors = [finding("FILE_MISSING", mask(f"s{k:04d}", "liver"), subcode="file") for k in range(12)]
    warnings = [finding("FILE_UNEXPECTED", f"s{k:04d}/x", "warning", subcode="unknown") for k in range(11)]
    infos = [finding("META_NORMALIZED", "meta.csv", "info")]
    lines = annotations(report(errors + warnings + infos), "")
    assert [parse(line)[0] for line in lines] == ["error"] * 10 + ["warning"] * 10 + ["notice"]
    assert parse(lines[-1])[2] == "2 more errors and 1 more warning are in the report"


def test_waived_and_unchanged_findings_are_not_annotated() -> None:
    known, waived, new = (finding("FILE_MISSING", mask("s0000", name), subcode="file")
                          for name in ("liver", "spleen", "aorta"))
    base = baseline_of([known], "totalsegmentator-v2", "/r", "quick", report([]).started, "0.2")
    waivers = Waivers(file="w.yaml", spec=None, entries=[Waiver(code="FILE_MISSING", path="*spleen*", reason="x")],
                      lines=[2])
    r = apply_gate(report([known, waived, new]), Gate(fail_on="error", today=date(2027, 1, 1), baseline=base,
                                                      waivers=waivers))
    (line,) = annotations(r, "")
    assert parse(line)[1]["file"] == new.path and parse(line)[1]["title"].endswith("(new)")


def test_the_job_summary_has_verdict_counts_new_findings_and_waivers(tmp_path: Path) -> None:
    waived = finding("FILE_MISSING", mask("s0000", "spleen"), subcode="file")
    hostile = finding("FILE_UNEXPECTED", "s0001/a|b<img src=x>.nii.gz", "warning", subcode="unknown")
    waivers = Waivers(file="w.yaml", spec=None, entries=[Waiver(code="FILE_MISSING", reason="pending | DATA-12",
                                                                expires=date(2027, 6, 30))], lines=[2])
    r = apply_gate(report([waived, hostile]), Gate(fail_on="warning", today=date(2027, 1, 1), waivers=waivers))
    text = job_summary(r, "reports/x/report.json")
    assert text.startswith("### tsqa: ❌ FAIL") and "1 finding fails the run (--fail-on warning" in text
    assert "| waived | 1 | 0 | 0 |" in text
    assert "`s0001/a\\|b<img src=x>.nii.gz`" in text, "paths are code spans, pipes escaped"
    assert "| 1 | `FILE_MISSING` | active | 1 | 2027-06-30 | pending \\| DATA-12 |" in text
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    append_summary(summary, text)
    assert summary.read_text() == "earlier step\n" + text
