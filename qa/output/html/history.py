"""The reports folder as a history: index.html shows each release's runs, newest first, with verdicts and counts
over time, and every other report kept in a folder of its own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from pydantic import ValidationError

from qa.output.files import Folder, opened
from qa.output.html.page import environment, write_html
from qa.output.runs import REPORT, RUN, RunRecord, read_record, release_dirs, runs
from qa.report.model import Report, Summary
from qa.rules.text import safe_text

INDEX = "index.html"
SPARK_WIDTH, SPARK_HEIGHT = 160, 28


@dataclass(frozen=True)
class HistoryEntry:
    """One report kept in the folder, as its index row shows it."""

    folder: str
    link: str
    release: str
    spec_id: str
    mode: str
    subset: bool
    started: datetime
    passed: bool
    cases: int
    errors: int
    warnings: int
    infos: int
    version: str
    new: int | None = None  # findings new against a baseline, when the run had one
    waived: int = 0

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class Row:
    """An entry with how its counts moved since the run before it of the same release."""

    entry: HistoryEntry
    errors_change: int | None
    warnings_change: int | None


@dataclass(frozen=True)
class ReleaseHistory:
    """The runs of one release under one spec (or one report in a folder of its own), newest first."""

    title: str
    folder: str
    spec_id: str
    rows: list[Row]
    spark: Spark | None

    @property
    def latest(self) -> HistoryEntry:
        return self.rows[0].entry


@dataclass(frozen=True)
class Spark:
    """Errors and warnings over the runs, oldest on the left, as SVG polyline points on one scale."""

    errors: str
    warnings: str
    high: int
    width: int = SPARK_WIDTH
    height: int = SPARK_HEIGHT


def _entry(folder: str, link: str, release: str, spec_id: str, mode: str, subset: bool, started: datetime,
           version: str, s: Summary) -> HistoryEntry:
    return HistoryEntry(
        folder=folder, link=link, release=release, spec_id=spec_id, mode=mode, subset=subset, started=started,
        passed=s.passed, cases=s.cases, errors=s.by_severity.get("error", 0), warnings=s.by_severity.get("warning", 0),
        infos=s.by_severity.get("info", 0), version=version, new=None if s.baseline is None else s.baseline.new,
        waived=s.waived)


def read_entry(report_json: Path, root: Path | None = None) -> HistoryEntry | None:
    """The index row of a report folder: from its run.json when it has one, else from report.json; None when neither
    can be read. `root` is the folder the index is in; links are relative to it."""
    folder = report_json.parent
    real = folder.relative_to(root).as_posix() if root is not None else folder.name
    page = folder / "report.html"
    # A folder's name is any bytes: shown as safe text, linked percent-encoded.
    name = safe_text(real)
    link = f"{quote(os.fsencode(real))}/{page.name if page.is_file() else report_json.name}"
    record = read_record(folder / RUN)
    if isinstance(record, RunRecord):
        return _entry(name, link, record.release, record.spec_id, record.mode, record.subset, record.started,
                      record.version, record.summary)
    try:
        report = Report.model_validate_json(report_json.read_bytes())
    except (OSError, ValueError, ValidationError):
        return None
    return _entry(name, link, report.release, report.spec_id, report.mode, report.subset, report.started,
                  report.version, report.summary)


def read_entries(reports_dir: Path) -> list[HistoryEntry]:
    """Every readable report under the folder, in a folder of its own or in a release's history, newest first."""
    return [row.entry for h in read_histories(reports_dir) for row in h.rows]


def _rows(entries: list[HistoryEntry]) -> list[Row]:
    """Newest first, each with the change of its counts since the run before it."""
    rows = []
    for k, e in enumerate(entries):
        before = entries[k + 1] if k + 1 < len(entries) else None
        rows.append(Row(e, None if before is None else e.errors - before.errors,
                        None if before is None else e.warnings - before.warnings))
    return rows


def spark(entries: list[HistoryEntry]) -> Spark | None:
    """A sparkline of errors and warnings for two or more runs, given newest first."""
    if len(entries) < 2:
        return None
    ordered = entries[::-1]
    high = max(max(e.errors, e.warnings) for e in ordered) or 1
    step = (SPARK_WIDTH - 4) / (len(ordered) - 1)

    def points(values: list[int]) -> str:
        return " ".join(f"{2 + k * step:.1f},{SPARK_HEIGHT - 2 - (SPARK_HEIGHT - 4) * v / high:.1f}"
                        for k, v in enumerate(values))

    return Spark(points([e.errors for e in ordered]), points([e.warnings for e in ordered]), high)


def read_histories(reports_dir: Path) -> list[ReleaseHistory]:
    """The release histories (reports/<spec id>/<release>/<run>/) and the reports in folders of their own
    (reports/<name>/report.json, e.g. the demo), the most recently run first."""
    histories = []
    for folder in release_dirs(reports_dir):
        found = [read_entry(run / REPORT, reports_dir) for run in runs(folder)]
        entries = sorted((e for e in found if e is not None), key=lambda e: (e.started, e.folder), reverse=True)
        if entries:
            histories.append(ReleaseHistory(title=folder.name, folder=folder.relative_to(reports_dir).as_posix(),
                                            spec_id=entries[0].spec_id, rows=_rows(entries), spark=spark(entries)))
    for report_json in sorted(reports_dir.glob(f"*/{REPORT}")):
        e = read_entry(report_json, reports_dir)
        if e is not None:
            histories.append(ReleaseHistory(title=e.folder, folder=e.folder, spec_id=e.spec_id, rows=_rows([e]),
                                            spark=None))
    return sorted(histories, key=lambda h: (h.latest.started, h.folder), reverse=True)


def render_index(histories: list[ReleaseHistory]) -> str:
    return environment().get_template("index.html.j2").render(histories=histories,
                                                              runs=sum(len(h.rows) for h in histories))


def write_index(reports_dir: Folder | Path) -> Path:
    """index.html of the reports folder; runs refreshing it take turns, so that the last one lists every run."""
    with opened(reports_dir) as folder:
        folder.lock(wait=True)
        try:
            return folder.write(INDEX, render_index(read_histories(folder.path)))
        finally:
            folder.unlock()


def index_href(out_dir: Path, index_dir: Path | None) -> str | None:
    """The link from a report folder to the index of the history it is kept in, or None outside one."""
    if index_dir is None:
        return None
    return Path(os.path.relpath(index_dir.resolve() / INDEX, out_dir.resolve())).as_posix()


def find_index(report_dir: Path, levels: int = 3) -> Path | None:
    """The folder of the nearest index.html above a report folder (its history), looking up at most `levels`."""
    folder = report_dir.resolve()
    for _ in range(levels):
        folder = folder.parent
        if (folder / INDEX).is_file():
            return folder
    return None


def publish_html(report: Report, out_dir: Path, index_dir: Path | None = None) -> Path:
    """Write report.html next to report.json and, with `index_dir`, refresh the index of that history folder (a
    report written elsewhere with --out leaves every other folder alone)."""
    page = write_html(report, out_dir, index_href=index_href(out_dir, index_dir))
    if index_dir is not None:
        write_index(index_dir)
    return page
