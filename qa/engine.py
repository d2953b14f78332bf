"""One check of a release: scan it into facts, judge the facts under a spec, and assemble the report."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from qa import __version__
from qa.aggregate import case_labels, class_stats, image_stats, overlap_stats
from qa.checks import judge
from qa.checks.files import usable_header
from qa.checks.geometry import axcodes
from qa.facts import ReleaseFacts
from qa.meta import MetaTable
from qa.report import CaseReport, FailOn, Finding, ImageSummary, Mode, Report, summarize
from qa.scan import Layout, Progress, scan_release
from qa.spec import ReleaseSpec


def _meta_rows(table: MetaTable | None, spec: ReleaseSpec) -> dict[str, dict[str, str | None]]:
    if table is None or spec.meta.id_column not in table.frame.columns:
        return {}
    rows = table.frame.to_dict("records")
    return {row[spec.meta.id_column]: row for row in rows if row[spec.meta.id_column] is not None}


def case_reports(facts: ReleaseFacts, spec: ReleaseSpec, findings: list[Finding], table: MetaTable | None) -> list[CaseReport]:
    rows = _meta_rows(table, spec)
    split_column = spec.meta.split_column
    per_case: dict[str, int] = {}
    for f in findings:
        if f.case is not None:
            per_case[f.case] = per_case.get(f.case, 0) + 1
    reports = []
    for case in facts.cases:
        header = usable_header(case.files.get(f"{case.case}/{spec.image}"), spec)
        image = None if header is None else ImageSummary(
            shape=list(header.shape), spacing=list(header.zooms[:3]), axcodes=axcodes(header),
            dtype=header.dtype, affine=header.affine)
        row = rows.get(case.case, {})
        reports.append(CaseReport(case=case.case, split=row.get(split_column) if split_column else None, meta=row,
                                  image=image, image_stats=image_stats(case), labels=case_labels(case, spec),
                                  findings=per_case.get(case.case, 0)))
    return reports


def build_report(facts: ReleaseFacts, spec: ReleaseSpec, spec_reason: str, mode: Mode, subset: bool,
                 fail_on: FailOn, started: datetime, duration_s: float) -> Report:
    """Judge facts and wrap the findings in a report; cheap, so it can be re-run with another spec or threshold."""
    findings, table = judge(facts, spec, subset)
    files = sum(len(c.files) for c in facts.cases)
    cases = case_reports(facts, spec, findings, table)
    return Report(
        version=__version__, spec_id=spec.id, spec_reason=spec_reason, release=facts.root, mode=mode, subset=subset,
        started=started, duration_s=round(duration_s, 3),
        summary=summarize(findings, len(facts.cases), files, fail_on),
        findings=findings, cases=cases,
        classes=class_stats([c.labels for c in cases if c.labels is not None], spec) if mode == "deep" else [],
        overlaps=overlap_stats(facts, spec),
    )


def layout_of(spec: ReleaseSpec) -> Layout:
    return Layout(meta_file=spec.meta.file, case_pattern=spec.case_pattern, image=spec.image, mask_dir=spec.mask_dir,
                  max_voxels=spec.geometry.max_voxels, max_bytes=spec.geometry.max_bytes)


def run_check(root: Path, spec: ReleaseSpec, spec_reason: str, mode: Mode = "deep", jobs: int = 1,
              subset: bool = False, fail_on: FailOn = "error", progress: Progress | None = None) -> Report:
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    facts = scan_release(root, layout_of(spec), mode=mode, jobs=jobs, progress=progress)
    return build_report(facts, spec, spec_reason, mode, subset, fail_on, started, time.perf_counter() - clock)
