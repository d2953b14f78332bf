"""The short summary printed after a check: verdict, counts by code, the worst cases, where the report is."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from qa.codes import CODES
from qa.report import Report


def print_summary(report: Report, path: Path, console: Console | None = None) -> None:
    console = console or Console()
    s = report.summary
    verdict = "[bold green]PASS[/]" if s.passed else "[bold red]FAIL[/]"
    console.print(f"{verdict} {report.spec_id}, {s.cases} cases, {s.files} files, {report.duration_s:.1f} s: "
                  f"{s.by_severity['error']} errors, {s.by_severity['warning']} warnings, {s.by_severity['info']} info "
                  f"(fail on {s.fail_on})", soft_wrap=True)
    if s.by_code:
        severity = {f.code: f.severity for f in report.findings}
        table = Table("code", "severity", "count", "meaning", box=None, pad_edge=False)
        for code, count in sorted(s.by_code.items(), key=lambda kv: -kv[1]):
            table.add_row(code, severity[code], str(count), CODES[code].title if code in CODES else "")
        console.print(table)
    if s.worst_cases:
        console.print(f"worst cases: {', '.join(s.worst_cases)}")
    html = path.with_name("report.html")
    console.print(f"report: {path}" + (f" and {html.name} beside it" if html.exists() else ""), soft_wrap=True)
