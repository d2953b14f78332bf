"""report.json: the Report model as JSON, written atomically."""

from __future__ import annotations

from pathlib import Path

from qa.output.files import Folder, opened
from qa.report.model import Report

REPORT_JSON = "report.json"


def write_report(report: Report, out: Folder | Path) -> Path:
    with opened(out) as folder:
        return folder.write(REPORT_JSON, report.model_dump_json(indent=1))


def read_report(path: Path) -> Report:
    """A report.json back as the model; ValueError (pydantic's ValidationError) when it is not one."""
    return Report.model_validate_json(path.read_bytes())
