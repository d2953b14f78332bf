"""diff.html: the changes between two reports, in the style of report.html, one file that loads nothing."""

from __future__ import annotations

from pathlib import Path

from qa.output.files import write_atomic
from qa.output.html.page import environment, message_text
from qa.report.diff import ReportDiff
from qa.rules.codes import CODES, SEVERITY_RANK
from qa.rules.finding import Finding

MAX_ROWS = 2_000


def ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.case or "", f.path or "", f.code))


def render_diff(diff: ReportDiff) -> str:
    return environment().get_template("diff.html.j2").render(
        d=diff, s=diff.summary, new=ordered(diff.new_findings)[:MAX_ROWS],
        fixed=ordered(diff.fixed_findings)[:MAX_ROWS], max_rows=MAX_ROWS, message=message_text,
        titles={code: c.title for code, c in CODES.items()})


def write_diff_html(diff: ReportDiff, out_dir: Path) -> Path:
    path = out_dir / "diff.html"
    write_atomic(path, render_diff(diff))
    return path
