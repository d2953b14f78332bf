"""The JSON files tsqa writes, each a pydantic model written atomically: report.json, diff.json, baselines."""

from __future__ import annotations

from pathlib import Path

from qa.output.files import Folder, opened, write_atomic
from qa.report.diff import ReportDiff
from qa.report.model import Report
from qa.rules.baseline import Baseline

REPORT_JSON = "report.json"
DIFF_JSON = "diff.json"


def write_report(report: Report, out: Folder | Path) -> Path:
    with opened(out) as folder:
        return folder.write(REPORT_JSON, report.model_dump_json())


def read_report(path: Path) -> Report:
    """A report.json back as the model; ValueError (pydantic's ValidationError) when it is not one."""
    return Report.model_validate_json(path.read_bytes())


def write_diff(diff: ReportDiff, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / DIFF_JSON
    write_atomic(path, diff.model_dump_json(indent=1))
    return path


def write_baseline(baseline: Baseline, path: Path) -> Path:
    write_atomic(path, baseline.model_dump_json(indent=1))
    return path
