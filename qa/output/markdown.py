"""Markdown for people reading CI: tables of findings, and the diff of two reports as a pull-request comment."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qa.output.files import write_atomic
from qa.output.text import md_code, md_text
from qa.report.diff import ReportDiff
from qa.rules.codes import SEVERITY_RANK
from qa.rules.finding import Finding

DIFF_ROWS = 50


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A GitHub-flavoured Markdown table; cells must already be escaped (md_text, md_code)."""
    rule = ["---:" if k in right else "---" for k in range(len(headers))]
    lines = [headers, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def code_name(f: Finding) -> str:
    return f.code + (f":{f.subcode}" if f.subcode else "")


def message_only(f: Finding) -> str:
    """The message without a leading 'path: ', which the path column shows."""
    prefix = f"{f.path}: "
    return f.message[len(prefix):] if f.path and f.message.startswith(prefix) else f.message


def finding_table(findings: Sequence[Finding], limit: int) -> str:
    """The first `limit` findings, most severe first, and how many more there are."""
    ordered = sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.case or "", f.path or "", f.code))
    rows = [[f.severity, md_code(code_name(f)), md_code(f.case), md_code(f.path), md_text(message_only(f))]
            for f in ordered[:limit]]
    more = f"\n\n{len(findings) - limit} more in the report." if len(findings) > limit else ""
    return table(["severity", "code", "case", "path", "message"], rows) + more


def _volume(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _change(value: float | None) -> str:
    return "–" if value is None else f"{value:+.0%}"


def diff_markdown(diff: ReportDiff) -> str:
    """The diff for a pull-request comment: the verdict on new findings, then each kind of change."""
    s, old, new = diff.summary, diff.old, diff.new
    icon = "✅" if s.passed else "❌"
    parts = [
        f"### tsqa diff: {icon} {s.new} new, {s.fixed} fixed, {s.unchanged} unchanged findings",
        f"{md_code(old.file)} ({old.started:%Y-%m-%d %H:%M} UTC, {old.cases} cases) → {md_code(new.file)} "
        f"({new.started:%Y-%m-%d %H:%M} UTC, {new.cases} cases), {md_text(new.spec_id)}, {new.mode} mode. "
        f"{s.failing} new finding{'' if s.failing == 1 else 's'} at or above {s.fail_on} that no waiver accepts.",
    ]
    if old.spec_id != new.spec_id or old.mode != new.mode:
        parts.append(f"Note: the reports differ in spec or mode ({md_text(old.spec_id)} {old.mode} → "
                     f"{md_text(new.spec_id)} {new.mode}); findings of one only may be new or fixed for that reason.")
    if diff.new_findings:
        parts.append(f"#### New findings ({s.new})\n\n" + finding_table(diff.new_findings, DIFF_ROWS))
    if diff.fixed_findings:
        parts.append(f"#### Fixed findings ({s.fixed})\n\n" + finding_table(diff.fixed_findings, DIFF_ROWS))
    if diff.severity_changes:
        rows = [[md_code(code_name(c.finding)), md_code(c.finding.path), f"{c.old_severity} → {c.finding.severity}"]
                for c in diff.severity_changes[:DIFF_ROWS]]
        parts.append(f"#### Severity changed ({s.severity_changed})\n\n" + table(["code", "path", "severity"], rows))
    if diff.by_code:
        rows = [[md_code(c.code), str(c.old), str(c.new), f"{c.new - c.old:+d}"] for c in diff.by_code]
        parts.append("#### Findings per code\n\n" + table(["code", "old", "new", "change"], rows, right=(1, 2, 3)))
    if diff.cases_added or diff.cases_removed:
        lines = []
        if diff.cases_added:
            lines.append(f"Added ({s.cases_added}): " + ", ".join(md_code(c) for c in diff.cases_added[:DIFF_ROWS]))
        if diff.cases_removed:
            lines.append(f"Removed ({s.cases_removed}): "
                         + ", ".join(md_code(c) for c in diff.cases_removed[:DIFF_ROWS]))
        parts.append("#### Cases\n\n" + "\n\n".join(lines))
    if diff.split_moves:
        rows = [[md_code(m.case), md_code(m.old), md_code(m.new)] for m in diff.split_moves[:DIFF_ROWS]]
        parts.append(f"#### Split moves ({s.split_moves})\n\n" + table(["case", "old split", "new split"], rows))
    if diff.class_changes:
        rows = [[md_code(c.name), "–" if c.cases_old is None else str(c.cases_old),
                 "–" if c.cases_new is None else str(c.cases_new), _volume(c.volume_ml_median_old),
                 _volume(c.volume_ml_median_new), _change(c.volume_change)] for c in diff.class_changes[:DIFF_ROWS]]
        parts.append(f"#### Classes ({s.class_changes}: cases containing them changed, or median volume by more "
                     f"than {diff.volume_change:.0%})\n\n"
                     + table(["class", "cases before", "cases now", "median mL before", "median mL now", "change"],
                             rows, right=(1, 2, 3, 4, 5)))
    elif not diff.classes_compared:
        parts.append("Classes were not compared: per-class statistics come from the deep pass, and one of the "
                     "reports was made in quick mode.")
    return "\n\n".join(parts) + "\n"


def write_diff_markdown(diff: ReportDiff, path: Path) -> Path:
    write_atomic(path, diff_markdown(diff))
    return path
