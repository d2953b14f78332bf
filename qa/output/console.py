"""The summary printed after a check: verdict, counts by code and severity, the worst cases, where the report is."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from qa.output.text import counted
from qa.report.gate import describe
from qa.report.model import ArchiveReport, Report
from qa.rules.codes import CODES, SEVERITY_RANK
from qa.rules.text import safe_text


def severities_text(counts: Counter) -> str:
    """The severity a code was reported at, or each with its count ('warning 3, info 2'), the most severe first."""
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{s} {counts[s]}" for s in sorted(counts, key=lambda s: -SEVERITY_RANK[s]))


CHECKSUM_TEXT = {
    "matches": "size and MD5 match the published {published}",
    "differs": "size or MD5 differs from the published {published}",
    "unpublished": "no published size or MD5 to compare with",
    "skipped": "MD5 not computed (--no-checksum)",
    "unreadable": "MD5 could not be computed",
}


def archive_text(archive: ArchiveReport) -> str:
    """One line on the archive the release was read from: is the download complete and intact?"""
    methods = ", ".join(f"{n:,} {m}" for n, m in ((archive.stored, "stored"), (archive.deflated, "deflated")) if n)
    state = "complete" if archive.complete else "INCOMPLETE (see ARCHIVE_ findings)"
    verdict = CHECKSUM_TEXT[archive.checksum].format(published=archive.published)
    return (f"archive: {archive.name}, {archive.size / 1e9:.2f} GB, {archive.members:,} members ({methods or 'none'}), "
            f"{state}; {verdict}")


def print_summary(report: Report, path: Path, console: Console | None = None) -> None:
    console = console or Console()
    s = report.summary
    verdict = "[bold green]PASS[/]" if s.passed else "[bold red]FAIL[/]"
    scope = ", counting only new findings" if s.counted == "new" else ""
    console.print(f"{verdict} {report.spec_id}, {s.cases} cases, {s.files} files, {report.duration_s:.1f} s: "
                  f"{counted(s.by_severity['error'], 'error')}, {counted(s.by_severity['warning'], 'warning')}, "
                  f"{s.by_severity['info']:,} info "
                  f"(fail on {s.fail_on}{scope})", soft_wrap=True)
    if report.cache is not None:
        verified = ", gzip trailers verified" if report.cache.verified else ""
        console.print(f"fact cache: {report.cache.files} of {s.files} files ({report.cache.cases} of {s.cases} cases) "
                      f"unchanged since an earlier check, not read again{verified}", soft_wrap=True, markup=False,
                      highlight=False)
    for line in describe(report):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    if s.by_code:
        severities: dict[str, Counter] = {}
        for f in report.findings:
            severities.setdefault(f.code, Counter())[f.severity] += 1
        table = Table("code", "severity", "count", "meaning", box=None, pad_edge=False)
        for code, count in sorted(s.by_code.items(), key=lambda kv: -kv[1]):
            title = CODES[code].title if code in CODES else ""
            table.add_row(code, severities_text(severities[code]), str(count), title)
        console.print(table)
    # Case ids come from folder names and meta.csv and the path from the command line: printed as Text, so that
    # '[/red]' is not markup and an escape sequence reaches the terminal as the characters that spell it.
    if s.worst_cases:
        console.print(Text(f"worst cases: {', '.join(safe_text(case) for case in s.worst_cases)}"), soft_wrap=True)
    if report.archive is not None:
        console.print(Text(archive_text(report.archive)), soft_wrap=True)
    html = path.with_name("report.html")
    where = f"report: {safe_text(str(path))}" + (f" and {html.name} beside it" if html.exists() else "")
    console.print(Text(where), soft_wrap=True)
