"""The reports folder as a history: index.html lists every report kept in its subfolders, newest first."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from pydantic import ValidationError

from qa.output.files import Folder, opened
from qa.output.html.page import environment, write_html
from qa.report.model import Report
from qa.rules.text import safe_text


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

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


def read_entry(report_json: Path) -> HistoryEntry | None:
    """The index row of one report.json, or None when the file cannot be read as a report."""
    try:
        report = Report.model_validate_json(report_json.read_bytes())
    except (OSError, ValueError, ValidationError):
        return None
    folder = report_json.parent
    page = folder / "report.html"
    s = report.summary
    # A folder's name is any bytes: shown as safe text, linked percent-encoded.
    return HistoryEntry(
        folder=safe_text(folder.name),
        link=f"{quote(os.fsencode(folder.name))}/{page.name if page.is_file() else report_json.name}",
        release=report.release, spec_id=report.spec_id, mode=report.mode, subset=report.subset, started=report.started,
        passed=s.passed, cases=s.cases, errors=s.by_severity.get("error", 0), warnings=s.by_severity.get("warning", 0),
        infos=s.by_severity.get("info", 0), version=report.version)


def read_entries(reports_dir: Path) -> list[HistoryEntry]:
    """Every readable */report.json under the folder, newest first."""
    found = [read_entry(path) for path in sorted(reports_dir.glob("*/report.json"))]
    return sorted((e for e in found if e is not None), key=lambda e: (e.started, e.folder), reverse=True)


def render_index(entries: list[HistoryEntry]) -> str:
    return environment().get_template("index.html.j2").render(entries=entries)


def write_index(reports_dir: Folder | Path) -> Path:
    """index.html of the reports folder; runs writing into its subfolders take turns (they share this file)."""
    with opened(reports_dir) as folder:
        folder.lock(wait=True)
        return folder.write("index.html", render_index(read_entries(folder.path)))


def publish_html(report: Report, out_dir: Folder | Path, index: bool = True) -> Path:
    """Write report.html next to report.json and, when asked, refresh the index of the folder holding the report folder
    (the reports/ history; a report written elsewhere with --out leaves its parent folder alone)."""
    with opened(out_dir) as folder:
        page = write_html(report, folder)
        if index:
            with folder.parent() as parent:
                write_index(parent)
    return page
