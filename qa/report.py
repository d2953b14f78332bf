"""The report model: findings, per-case facts and the summary; one pydantic model is the JSON report and its schema."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qa.spec import SEVERITY_RANK, Severity

Mode = Literal["quick"]
FailOn = Literal["error", "warning", "never"]
Scalar = str | int | float | bool | None
Detail = Scalar | list[Scalar] | list[list[Scalar]] | dict[str, Scalar]


class Finding(BaseModel):
    """One thing wrong with the release, in a form a person and a CI rule can both act on."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable finding code; `tsqa explain CODE` documents it.")
    severity: Severity
    case: str | None = Field(description="The case's image_id, or null for release-level findings.")
    path: str | None = Field(description="Path relative to the release root, '/'-separated, or null.")
    message: str
    details: dict[str, Detail] = Field(default_factory=dict, description="The measured numbers behind the finding.")


class ImageSummary(BaseModel):
    """Header facts of a case's image."""

    shape: list[int]
    spacing: list[float]
    axcodes: list[str | None]
    dtype: str
    affine: list[list[float]]


class CaseReport(BaseModel):
    case: str
    split: str | None = None
    image: ImageSummary | None = None
    findings: int = Field(0, description="How many findings name this case.")


class Summary(BaseModel):
    cases: int
    files: int
    by_severity: dict[Severity, int]
    by_code: dict[str, int]
    worst_cases: list[str] = Field(description="Cases with the most errors, then warnings; at most ten.")
    fail_on: FailOn
    passed: bool


class Report(BaseModel):
    """A tsqa check of one release."""

    model_config = ConfigDict(title="tsqa report")

    tool: Literal["tsqa"] = "tsqa"
    version: str
    spec_id: str
    spec_reason: str = Field(description="Why this spec was used: given on the command line, or how it was detected.")
    release: str
    mode: Mode
    subset: bool
    started: datetime
    duration_s: float
    summary: Summary
    findings: list[Finding]
    cases: list[CaseReport]


def finding_sort_key(f: Finding) -> tuple:
    return (f.case or "", f.path or "", -SEVERITY_RANK[f.severity], f.code, f.message)


def fails(findings: list[Finding], fail_on: FailOn) -> bool:
    if fail_on == "never":
        return False
    threshold = SEVERITY_RANK[fail_on]
    return any(SEVERITY_RANK[f.severity] >= threshold for f in findings)


def summarize(findings: list[Finding], cases: int, files: int, fail_on: FailOn) -> Summary:
    by_severity = Counter(f.severity for f in findings)
    per_case: dict[str, list[int]] = {}
    for f in findings:
        if f.case is not None and f.severity != "info":
            counts = per_case.setdefault(f.case, [0, 0])
            counts[0 if f.severity == "error" else 1] += 1
    worst = sorted(per_case, key=lambda c: (-per_case[c][0], -per_case[c][1], c))[:10]
    return Summary(
        cases=cases,
        files=files,
        by_severity={s: by_severity.get(s, 0) for s in ("error", "warning", "info")},
        by_code=dict(sorted(Counter(f.code for f in findings).items())),
        worst_cases=worst,
        fail_on=fail_on,
        passed=not fails(findings, fail_on),
    )


def report_schema() -> dict:
    return Report.model_json_schema()


def write_atomic(path: Path, text: str) -> None:
    """Write so that a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: Report, out_dir: Path) -> Path:
    path = out_dir / "report.json"
    write_atomic(path, report.model_dump_json(indent=1))
    return path


def schema_text() -> str:
    return json.dumps(report_schema(), indent=2, sort_keys=True) + "\n"
