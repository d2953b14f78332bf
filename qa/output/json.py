"""report.json: the Report model as JSON, written atomically."""

from __future__ import annotations

from pathlib import Path

from qa.output.files import write_atomic
from qa.report.model import Report

REPORT_JSON = "report.json"


def write_report(report: Report, out_dir: Path) -> Path:
    path = out_dir / REPORT_JSON
    write_atomic(path, report.model_dump_json(indent=1))
    return path


def read_report(path: Path) -> Report:
    """A report.json back as the model; ValueError (pydantic's ValidationError) when it is not one."""
    return Report.model_validate_json(path.read_bytes())
