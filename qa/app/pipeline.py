"""The pipeline of one check: scan a source into facts, judge them under a spec, assemble the report."""

from __future__ import annotations

import contextlib
import functools
import operator
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from qa import __version__
from qa.app.evidence import make_evidence
from qa.app.workers import WORKER_MODULES
from qa.checks.base import usable_header
from qa.checks.geometry import axcodes
from qa.checks.registry import judge
from qa.checks.table import MetaTable
from qa.execute.base import Executor
from qa.execute.pool import PoolExecutor
from qa.execute.serial import SerialExecutor
from qa.output.html.history import publish_html
from qa.output.json import write_report
from qa.output.progress import Progress
from qa.report.aggregate import case_labels, class_stats, image_stats, overlap_stats
from qa.report.model import CaseReport, FailOn, ImageSummary, Mode, Report, SpecSnapshot, summarize
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec, case_folders
from qa.scan.case import Layout, ScanMode, case_task, scan_case_guarded
from qa.scan.facts import CaseFacts, Problem, ReleaseFacts
from qa.scan.memory import DEFAULT_BUDGET
from qa.scan.meta import read_meta
from qa.source.base import ReleaseSource
from qa.source.fs import FolderSource


def executor_for(jobs: int, max_memory: int = DEFAULT_BUDGET) -> Executor:
    """Worker processes even for one job: a file that crashes a reader or exhausts memory costs its case, not the
    run (a worker starts in milliseconds from the fork server). Cases start while their costs fit in `max_memory`."""
    return PoolExecutor(jobs, budget=max_memory, preload=WORKER_MODULES)


def scan_cases(source: ReleaseSource, cases: list[str], layout: Layout, mode: ScanMode, executor: Executor,
               max_memory: int = DEFAULT_BUDGET) -> Iterator[CaseFacts]:
    """Facts of each case as its scan completes; a case whose worker died becomes an unscanned case. Each case is
    costed (from its image's header) when the executor has room for it, so that the cases in flight fit in
    `max_memory` together."""
    scan = functools.partial(scan_case_guarded, source, layout, mode)
    tasks = (case_task(source, case, layout, mode, max_memory) for case in cases)
    # closing: an interrupted run stops the workers now, not when the garbage collector gets to the generator
    with contextlib.closing(executor.map(scan, tasks, cost=operator.attrgetter("cost"))) as outcomes:
        for outcome in outcomes:
            if outcome.crash is not None:
                yield CaseFacts(case=outcome.item.case, internal_error=Problem("crash", outcome.crash))
            else:
                yield outcome.result


def scan_release(source: ReleaseSource, layout: Layout, mode: ScanMode = "quick", executor: Executor | None = None,
                 progress: Progress | None = None, max_memory: int = DEFAULT_BUDGET) -> ReleaseFacts:
    """Facts of a whole release: meta.csv bytes, the root's entries, and every case folder's facts, in folder order."""
    root_entries = source.entries("")
    cases = case_folders(root_entries, layout.case_pattern)
    scanned: dict[str, CaseFacts] = {}
    files = 0
    scanned_cases = scan_cases(source, cases, layout, mode, executor or SerialExecutor(), max_memory)
    with contextlib.closing(scanned_cases) as each:
        for facts in each:
            scanned[facts.case] = facts
            files += len(facts.files)
            if progress is not None:
                progress(len(scanned), len(cases), files)
    return ReleaseFacts(root=source.location, meta=read_meta(source, layout.meta_file), root_entries=root_entries,
                        cases=[scanned[case] for case in cases])


def _meta_rows(table: MetaTable | None, spec: ReleaseSpec) -> dict[str, dict[str, str | None]]:
    if table is None or spec.meta.id_column not in table.frame.columns:
        return {}
    rows = table.frame.to_dict("records")
    return {row[spec.meta.id_column]: row for row in rows if row[spec.meta.id_column] is not None}


def case_reports(facts: ReleaseFacts, spec: ReleaseSpec, findings: list[Finding],
                 table: MetaTable | None) -> list[CaseReport]:
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
    judgement = judge(facts, spec, subset)
    findings = judgement.findings
    files = sum(len(c.files) for c in facts.cases)
    cases = case_reports(facts, spec, findings, judgement.table)
    return Report(
        version=__version__, spec_id=spec.id, spec=SpecSnapshot.of(spec), spec_reason=spec_reason, release=facts.root,
        mode=mode, subset=subset, started=started, duration_s=round(duration_s, 3),
        summary=summarize(findings, len(facts.cases), files, fail_on),
        findings=findings, cases=cases,
        classes=class_stats([c.labels for c in cases if c.labels is not None], spec) if mode == "deep" else [],
        overlaps=overlap_stats(facts, spec),
    )


def run_check(root: Path | ReleaseSource, spec: ReleaseSpec, spec_reason: str, mode: Mode = "deep", jobs: int = 1,
              subset: bool = False, fail_on: FailOn = "error", progress: Progress | None = None,
              max_memory: int = DEFAULT_BUDGET) -> Report:
    """Scan and judge a release (a folder, or any source) with `jobs` worker processes, whose cases in flight hold at
    most `max_memory` bytes together."""
    source = root if isinstance(root, ReleaseSource) else FolderSource(root)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    facts = scan_release(source, Layout.of(spec), mode=mode, executor=executor_for(jobs, max_memory),
                         progress=progress, max_memory=max_memory)
    return build_report(facts, spec, spec_reason, mode, subset, fail_on, started, time.perf_counter() - clock)


def write_outputs(report: Report, source: ReleaseSource, spec: ReleaseSpec, out: Path, index: bool = True,
                  max_memory: int = DEFAULT_BUDGET) -> Path:
    """Evidence pictures (their volumes within `max_memory`), report.json and report.html into `out`; with `index`,
    refresh the reports index of the folder holding `out`. Returns the path of report.json."""
    report.evidence = make_evidence(report, source, Layout.of(spec), out, max_memory=max_memory)
    path = write_report(report, out)
    publish_html(report, out, index=index)
    return path
