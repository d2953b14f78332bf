"""What changed between two reports of a release: findings new, fixed and unchanged by fingerprint, cases added and
removed, cases that moved split, and classes whose presence or median volume changed."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from qa.report.model import FailOn, Mode, Report
from qa.rules.codes import SEVERITY_RANK, Severity
from qa.rules.finding import Finding, reaches

# Raised whenever diff.json changes in a way a reader must know: fields removed, renamed or retyped.
DIFF_SCHEMA_VERSION = 1
# A class's median volume is reported as changed when it moved by more than this share of the old median.
VOLUME_CHANGE = 0.10


class RunRef(BaseModel):
    """One side of the diff: which report, of which release and run."""

    file: str = Field(description="The report.json as given.")
    release: str
    spec_id: str
    mode: Mode
    started: datetime
    version: str
    cases: int
    by_severity: dict[Severity, int]
    passed: bool

    @classmethod
    def of(cls, report: Report, file: str) -> RunRef:
        s = report.summary
        return cls(file=file, release=report.release, spec_id=report.spec_id, mode=report.mode,
                   started=report.started, version=report.version, cases=s.cases, by_severity=s.by_severity,
                   passed=s.passed)


class SeverityChange(BaseModel):
    """A finding in both reports whose severity changed (e.g. an overlap that grew past a threshold)."""

    finding: Finding = Field(description="As in the new report.")
    old_severity: Severity


class SplitMove(BaseModel):
    case: str
    old: str | None
    new: str | None


class CodeCount(BaseModel):
    code: str
    old: int
    new: int


class ClassChange(BaseModel):
    """A class whose number of cases containing it, or whose median volume beyond the threshold, changed."""

    name: str
    cases_old: int | None
    cases_new: int | None
    volume_ml_median_old: float | None
    volume_ml_median_new: float | None
    volume_change: float | None = Field(description="(new - old) / old of the median volume; null when either is "
                                                    "missing or zero.")


class DiffSummary(BaseModel):
    new: int
    fixed: int
    unchanged: int
    severity_changed: int
    cases_added: int
    cases_removed: int
    split_moves: int
    class_changes: int
    fail_on: FailOn
    failing: int = Field(description="New (or more severe) findings at or above --fail-on that no waiver accepted.")
    passed: bool


class ReportDiff(BaseModel):
    """`tsqa diff OLD NEW`: the changes from one report to another."""

    tool: Literal["tsqa"] = "tsqa"
    kind: Literal["diff"] = "diff"
    schema_version: int = DIFF_SCHEMA_VERSION
    old: RunRef
    new: RunRef
    volume_change: float = Field(description="The threshold on a class's median volume change (a share).")
    summary: DiffSummary
    new_findings: list[Finding] = Field(description="In the new report, not in the old (by fingerprint).")
    fixed_findings: list[Finding] = Field(description="In the old report, not in the new.")
    unchanged: list[str] = Field(description="Fingerprints of the findings in both.")
    severity_changes: list[SeverityChange]
    by_code: list[CodeCount] = Field(description="Codes whose count changed.")
    cases_added: list[str]
    cases_removed: list[str]
    split_moves: list[SplitMove]
    classes_compared: bool = Field(description="Whether both reports have per-class statistics (deep mode).")
    class_changes: list[ClassChange]


def _pair(old: list[Finding], new: list[Finding]) -> tuple[list[Finding], list[Finding], list[tuple[Finding, Finding]]]:
    """New, fixed and (old, new) pairs of findings matched by fingerprint, as many per fingerprint as each side has."""
    waiting: dict[str, list[Finding]] = {}
    for f in old:
        waiting.setdefault(f.fingerprint, []).append(f)
    added, pairs = [], []
    for f in new:
        same = waiting.get(f.fingerprint)
        if same:
            pairs.append((same.pop(0), f))
        else:
            added.append(f)
    left = {id(f) for same in waiting.values() for f in same}
    fixed = [f for f in old if id(f) in left]
    return added, fixed, pairs


def _relative(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or not old or not math.isfinite(old) or not math.isfinite(new):
        return None
    return (new - old) / old


def class_changes(old: Report, new: Report, threshold: float) -> list[ClassChange]:
    before = {c.name: c for c in old.classes}
    after = {c.name: c for c in new.classes}
    changes = []
    for name in [*before, *(n for n in after if n not in before)]:
        a, b = before.get(name), after.get(name)
        median_a = a.volume_ml_median if a else None
        median_b = b.volume_ml_median if b else None
        change = _relative(median_a, median_b)
        moved = (change is not None and abs(change) > threshold) or ((median_a is None) != (median_b is None))
        present_a, present_b = (a.cases_present if a else None), (b.cases_present if b else None)
        if moved or present_a != present_b:
            changes.append(ClassChange(name=name, cases_old=present_a, cases_new=present_b,
                                       volume_ml_median_old=median_a, volume_ml_median_new=median_b,
                                       volume_change=change))
    return changes


def diff_reports(old: Report, new: Report, old_file: str, new_file: str, fail_on: FailOn = "error",
                 volume_change: float = VOLUME_CHANGE) -> ReportDiff:
    added, fixed, pairs = _pair(old.findings, new.findings)
    rose = [b for a, b in pairs if SEVERITY_RANK[b.severity] > SEVERITY_RANK[a.severity]]
    failing = [f for f in added + rose if reaches(f.severity, fail_on) and f.waived is None]
    old_cases = {c.case: c for c in old.cases}
    new_cases = {c.case: c for c in new.cases}
    moves = [SplitMove(case=case, old=old_cases[case].split, new=c.split) for case, c in new_cases.items()
             if case in old_cases and old_cases[case].split != c.split]
    counts_old, counts_new = Counter(f.code for f in old.findings), Counter(f.code for f in new.findings)
    by_code = [CodeCount(code=code, old=counts_old[code], new=counts_new[code])
               for code in sorted(set(counts_old) | set(counts_new)) if counts_old[code] != counts_new[code]]
    compared = bool(old.classes) and bool(new.classes)
    changes = class_changes(old, new, volume_change) if compared else []
    added_cases = sorted(set(new_cases) - set(old_cases))
    removed_cases = sorted(set(old_cases) - set(new_cases))
    return ReportDiff(
        old=RunRef.of(old, old_file), new=RunRef.of(new, new_file), volume_change=volume_change,
        summary=DiffSummary(new=len(added), fixed=len(fixed), unchanged=len(pairs), severity_changed=sum(
            a.severity != b.severity for a, b in pairs), cases_added=len(added_cases),
            cases_removed=len(removed_cases), split_moves=len(moves), class_changes=len(changes), fail_on=fail_on,
            failing=len(failing), passed=not failing),
        new_findings=added, fixed_findings=fixed, unchanged=[b.fingerprint for _, b in pairs],
        severity_changes=[SeverityChange(finding=b, old_severity=a.severity) for a, b in pairs
                          if a.severity != b.severity],
        by_code=by_code, cases_added=added_cases, cases_removed=removed_cases, split_moves=moves,
        classes_compared=compared, class_changes=changes)
