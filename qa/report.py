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

Mode = Literal["quick", "deep"]
FailOn = Literal["error", "warning", "never"]
Scalar = str | int | float | bool | None
# JSON has no NaN or infinity: pydantic writes them as null, so a float that a hostile header can make non-finite
# must accept null when the report is read back.
Number = float | None
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
    spacing: list[Number]
    axcodes: list[str | None]
    dtype: str
    affine: list[list[Number]]


class ImageStats(BaseModel):
    """Voxel statistics of a case's image (deep mode), in loaded units (HU for CT)."""

    voxels: int
    min: float | None
    max: float | None
    mean: float | None
    percentiles: dict[str, float] = Field(description="p1, p5, p50, p95, p99; exact up to 2**20 voxels, else on a regular sample.")
    nan_count: int
    inf_count: int


class LabelStats(BaseModel):
    """One class's mask in one case (deep mode)."""

    voxels: int
    volume_ml: Number
    mean_hu: float | None = Field(description="Mean image value inside the mask; null when empty or off-grid.")
    bbox: list[list[int]] | None = Field(description="[[i0, j0, k0], [i1, j1, k1]] inclusive voxel bounds; null when empty.")
    centroid_mm: list[Number] | None = Field(description="Centre of mass in world millimetres (the mask's own affine).")


class CaseReport(BaseModel):
    case: str
    split: str | None = None
    meta: dict[str, str | None] = Field(default_factory=dict, description="The case's meta.csv row as read.")
    image: ImageSummary | None = None
    image_stats: ImageStats | None = None
    labels: dict[str, LabelStats] | None = Field(None, description="Per class, deep mode only.")
    findings: int = Field(0, description="How many findings name this case.")


class ClassStats(BaseModel):
    """One class over the release (deep mode)."""

    name: str
    cases_present: int
    cases_checked: int
    volume_ml_median: float | None
    volume_ml_q1: float | None
    volume_ml_q3: float | None
    mean_hu_median: float | None


class OverlapStats(BaseModel):
    """One pair of classes that share voxels somewhere in the release (deep mode)."""

    class_a: str
    class_b: str
    cases: int
    voxels: int
    volume_ml: Number
    max_share: float = Field(description="Largest share of the smaller mask covered by the overlap, over the cases.")


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
    classes: list[ClassStats] = Field(default_factory=list, description="Per class aggregates (deep mode).")
    overlaps: list[OverlapStats] = Field(default_factory=list, description="Overlapping class pairs, largest first (deep mode).")


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
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide the report from the CI user that uploads it
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_report(report: Report, out_dir: Path) -> Path:
    path = out_dir / "report.json"
    write_atomic(path, report.model_dump_json(indent=1))
    return path


def schema_text() -> str:
    return json.dumps(report_schema(), indent=2, sort_keys=True) + "\n"
