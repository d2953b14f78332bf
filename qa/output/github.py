"""GitHub Actions: workflow-command annotations for the top errors and warnings, and a Markdown job summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

from qa.output.markdown import finding_table, table
from qa.output.text import counted, md_code, md_text, readable
from qa.report.model import Report
from qa.rules.codes import SEVERITY_RANK
from qa.rules.finding import Finding, fails

# GitHub shows at most 10 error and 10 warning annotations of a step; more would only be dropped.
MAX_PER_LEVEL = 10
SUMMARY_ROWS = 30


def escape_data(text: str) -> str:
    """A workflow command's message: '%', CR and LF escaped, as @actions/core does."""
    return readable(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as a message, and ':' and ',' too, which end a property."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def shown(report: Report) -> list[Finding]:
    """The findings worth a person's attention in CI: not waived, not unchanged against the baseline; those that
    fail the run first, then the most severe."""
    s = report.summary
    only_new = s.counted == "new"
    wanted = [f for f in report.findings if f.waived is None and not (only_new and f.baseline == "unchanged")]
    return sorted(wanted, key=lambda f: (not fails(f, s.fail_on, only_new), -SEVERITY_RANK[f.severity],
                                         f.case or "", f.path or "", f.code))


def annotation(f: Finding, release_prefix: str | None) -> str:
    """One `::error` or `::warning` command; `file=` when the file lies in the workspace (release_prefix is the
    release root relative to it)."""
    level = "error" if f.severity == "error" else "warning"
    props: dict[str, str] = {}
    file, line = f.details.get("file"), f.details.get("line")
    if f.path is not None and release_prefix is not None:
        props["file"] = str(PurePosixPath(release_prefix, f.path)) if release_prefix else f.path
    elif f.path is None and isinstance(file, str) and not Path(file).is_absolute():
        props["file"] = file
        if isinstance(line, int) and line >= 1:
            props["line"] = str(line)
    new = " (new)" if f.baseline in ("new", "worse") else ""
    props["title"] = f"tsqa {f.code}" + (f":{f.subcode}" if f.subcode else "") + new
    message = f.message if f.path is None or f.message.startswith(f.path) else f"{f.path}: {f.message}"
    return f"::{level} " + ",".join(f"{k}={escape_property(v)}" for k, v in props.items()) + f"::{escape_data(message)}"


def annotations(report: Report, release_prefix: str | None) -> list[str]:
    """At most MAX_PER_LEVEL error and warning annotations, and a notice of how many more the report has."""
    found = shown(report)
    errors = [f for f in found if f.severity == "error"]
    warnings = [f for f in found if f.severity == "warning"]
    lines = [annotation(f, release_prefix) for f in errors[:MAX_PER_LEVEL] + warnings[:MAX_PER_LEVEL]]
    more_errors, more_warnings = max(len(errors) - MAX_PER_LEVEL, 0), max(len(warnings) - MAX_PER_LEVEL, 0)
    if more_errors or more_warnings:
        lines.append("::notice title=tsqa::" + escape_data(
            f"{counted(more_errors, 'more error')} and {counted(more_warnings, 'more warning')} are in the report"))
    return lines


def verdict_line(report: Report) -> str:
    s = report.summary
    icon = "✅ PASS" if s.passed else "❌ FAIL"
    scope = ("counting only findings new against the baseline" if s.counted == "new" else "counting every finding")
    return (f"### tsqa: {icon} · {md_text(report.spec_id)} · {md_code(report.release)}\n\n"
            f"{s.failing} finding{'' if s.failing == 1 else 's'} fail{'s' if s.failing == 1 else ''} the run "
            f"(--fail-on {s.fail_on}, {scope}; waived findings never count).")


def counts_table(report: Report) -> str:
    levels = ("error", "warning", "info")
    rows = [["all", *(str(report.summary.by_severity.get(sev, 0)) for sev in levels)]]
    if report.summary.counted == "new":
        new = Counter(f.severity for f in report.findings if f.baseline in ("new", "worse"))
        rows.append(["new against the baseline", *(str(new[sev]) for sev in levels)])
    waived = Counter(f.severity for f in report.findings if f.waived is not None)
    rows.append(["waived", *(str(waived[sev]) for sev in levels)])
    return table(["findings", "errors", "warnings", "info"], rows, right=(1, 2, 3))


def waivers_table(report: Report) -> str:
    w = report.waivers
    if w is None or not w.entries:
        return ""
    rows = [[str(u.entry), md_code(u.waiver.target()), u.state, str(u.matched), str(u.waiver.expires or "–"),
             md_text(u.waiver.reason)] for u in w.entries[:SUMMARY_ROWS]]
    more = f"\n\n{len(w.entries) - SUMMARY_ROWS} more in the report." if len(w.entries) > SUMMARY_ROWS else ""
    return (f"#### Waivers ({md_code(w.file)}, judged on {w.today})\n\n"
            + table(["#", "matches", "state", "findings", "expires", "reason"], rows, right=(0, 3)) + more)


def job_summary(report: Report, report_path: str | None = None) -> str:
    """The step's Markdown summary: verdict, counts, the findings that need attention, waivers, baseline fixes."""
    parts = [verdict_line(report), counts_table(report)]
    if report.baseline is not None and report.summary.baseline is not None:
        b = report.summary.baseline
        parts.append(f"Baseline {md_code(report.baseline.file)}: {b.new} new, {b.worse} worse, {b.unchanged} "
                     f"unchanged, {b.fixed} fixed since.")
    found = shown(report)
    if found:
        title = "New findings" if report.summary.counted == "new" else "Findings"
        parts.append(f"#### {title} ({len(found)})\n\n" + finding_table(found, SUMMARY_ROWS))
    waivers = waivers_table(report)
    if waivers:
        parts.append(waivers)
    if report.fixed:
        rows = [[md_text(e.code + (f":{e.subcode}" if e.subcode else "")), md_code(e.case), md_code(e.path),
                 str(e.count)] for e in report.fixed[:SUMMARY_ROWS]]
        parts.append(f"#### Fixed since the baseline ({len(report.fixed)})\n\n"
                     + table(["code", "case", "path", "findings"], rows, right=(3,)))
    if report_path:
        parts.append(f"Full report: {md_code(report_path)}")
    return "\n\n".join(parts) + "\n"


def append_summary(path: Path, text: str) -> None:
    """Append to $GITHUB_STEP_SUMMARY: other steps' and tools' summaries in the file stay."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
