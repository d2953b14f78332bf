"""Literal reports for gate, diff and CI-format tests: findings and cases built in code; a test states what varies."""

from __future__ import annotations

from datetime import UTC, datetime

from qa.report.model import CaseReport, ClassStats, Report, SpecSnapshot, summarize
from qa.rules.finding import Finding, fingerprint
from qa.rules.spec import load_spec

SPEC = "totalsegmentator-v2"
V2 = load_spec(SPEC)
STARTED = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def mask(case: str, name: str) -> str:
    return f"{case}/segmentations/{name}.nii.gz"


def finding(code: str, path: str | None, severity: str = "error", subcode: str | None = None,
            class_name: str | None = None, message: str | None = None, key: str | None = None, **details) -> Finding:
    """A finding on a release path; its case is the path's first folder (none for meta.csv or no path)."""
    case = path.split("/")[0] if path and "/" in path else None
    return Finding(code=code, subcode=subcode, severity=severity, case=case, path=path, class_name=class_name,
                   message=message or f"{path}: {code.lower()}", details=details,
                   fingerprint=fingerprint(code, subcode, case, path, class_name, key))


def report(findings: list[Finding], cases: list[str] | dict[str, str] = ("s0000", "s0001", "s0002"),
           mode: str = "quick", fail_on: str = "error", started: datetime = STARTED,
           classes: list[ClassStats] = (), release: str = "/data/release") -> Report:
    """A report of the given cases (a dict gives each its split) with the given findings."""
    splits = cases if isinstance(cases, dict) else {case: "train" for case in cases}
    return Report(version="0.2.0", spec_id=SPEC, spec=SpecSnapshot.of(V2), spec_reason="given", release=release,
                  mode=mode, subset=True, started=started, duration_s=1.0,
                  summary=summarize(findings, len(splits), 118 * len(splits), fail_on), findings=findings,
                  cases=[CaseReport(case=case, split=split) for case, split in splits.items()],
                  classes=list(classes))


def class_stats(name: str, present: int, median: float | None, checked: int = 3) -> ClassStats:
    return ClassStats(name=name, cases_present=present, cases_checked=checked, volume_ml_median=median,
                      volume_ml_q1=median, volume_ml_q3=median, mean_hu_median=None)
