"""The pipeline of one check: scan a source into facts, judge them under a spec, assemble the report."""

from __future__ import annotations

import contextlib
import functools
import gc
import operator
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from qa import __version__
from qa.app.checksum import Checksum
from qa.app.evidence import make_evidence
from qa.app.opening import open_release
from qa.app.workers import WORKER_MODULES
from qa.checks.base import usable_header
from qa.checks.geometry import axcodes
from qa.checks.registry import Judgement, judge
from qa.checks.table import MetaTable
from qa.execute.base import Executor
from qa.execute.pool import PoolExecutor
from qa.execute.serial import SerialExecutor
from qa.output.files import Folder, FolderBusy
from qa.output.json import write_report
from qa.output.progress import ChecksumProgress, Progress
from qa.output.runs import new_run_dir, point_latest, record_run, release_dir
from qa.output.staging import staged
from qa.output.targets import folder_problem
from qa.report.aggregate import case_labels, class_stats, drift_stats, image_stats, overlap_stats
from qa.report.model import (
    ArchiveReport,
    CacheReport,
    CaseReport,
    FailOn,
    ImageSummary,
    Mode,
    Report,
    SpecSnapshot,
    summarize,
)
from qa.rules.spec import ReleaseSpec, case_folders
from qa.rules.text import safe_text
from qa.scan.cache import CacheUse, FactCache, ReleaseCache
from qa.scan.case import CaseTask, Layout, ScanMode, case_task, scan_case_guarded
from qa.scan.facts import ArchiveFacts, CaseFacts, Problem, ReleaseFacts
from qa.scan.memory import DEFAULT_BUDGET
from qa.scan.meta import read_meta
from qa.scan.stamp import case_stamp, scan_stamped, trailers_match
from qa.source.base import ReleaseSource
from qa.source.fs import FolderSource
from qa.source.zip import ZipSource

T = TypeVar("T")


def executor_for(jobs: int, max_memory: int = DEFAULT_BUDGET) -> Executor:
    """Worker processes even for one job: a file that crashes a reader or exhausts memory costs its case, not the
    run (a worker starts in milliseconds from the fork server). Cases start while their costs fit in `max_memory`."""
    return PoolExecutor(jobs, budget=max_memory, preload=WORKER_MODULES)


def scan_cases(source: ReleaseSource, cases: list[str], layout: Layout, mode: ScanMode, executor: Executor,
               max_memory: int = DEFAULT_BUDGET) -> Iterator[CaseFacts]:
    """Facts of each case as its scan completes; a case whose worker died becomes an unscanned case. Each case is
    costed (from its image's header) when the executor has room for it, so that the cases in flight fit in
    `max_memory` together."""
    yield from _mapped(functools.partial(scan_case_guarded, source, layout, mode), source, cases, layout, mode,
                       executor, max_memory)


def _mapped(scan: Callable[[CaseTask], T], source: ReleaseSource, cases: list[str], layout: Layout, mode: ScanMode,
            executor: Executor, max_memory: int) -> Iterator[T | CaseFacts]:
    """`scan` of each case's task on the executor, as each completes; a case whose worker died is an unscanned case."""
    tasks = (case_task(source, case, layout, mode, max_memory) for case in cases)
    # closing: an interrupted run stops the workers now, not when the garbage collector gets to the generator
    with contextlib.closing(executor.map(scan, tasks, cost=operator.attrgetter("cost"))) as outcomes:
        for outcome in outcomes:
            if outcome.crash is not None:
                yield CaseFacts(case=outcome.item.case, internal_error=Problem("crash", outcome.crash))
            else:
                yield outcome.result


def cached_scan(source: ReleaseSource, cases: list[str], layout: Layout, mode: ScanMode, executor: Executor,
                cache: ReleaseCache, use: CacheUse, max_memory: int = DEFAULT_BUDGET) -> Iterator[CaseFacts]:
    """scan_cases through the fact cache: a case whose stamp (its listing and its files' stat) is its entry's, and
    whose files still end with the cached gzip trailers when `use.verified`, is served from the cache without a read;
    every other case is scanned whole by the workers, which send back its stamp and its facts as an entry, stored
    in batches by this process (workers never touch the cache)."""
    missed = []
    try:
        for case in cases:
            facts = cache.lookup(case, case_stamp(source, case), mode) if cache.holds(case) else None
            if facts is not None and use.verified and not trailers_match(source, facts):
                facts = None
            if facts is None:
                missed.append(case)
                continue
            cache.served(case)
            use.cases += 1
            use.files += len(facts.files)
            yield facts
        if not missed:
            return  # no worker is started
        with contextlib.closing(_mapped(functools.partial(scan_stamped, source, layout, mode), source, missed, layout,
                                        mode, executor, max_memory)) as results:
            for stamped in results:
                if isinstance(stamped, CaseFacts):  # its worker died
                    yield stamped
                    continue
                facts = stamped.result()
                if stamped.blob is not None:
                    cache.store(stamped.case, stamped.stamp, mode, stamped.blob, len(facts.files))
                yield facts
    finally:
        cache.flush()


def scan_release(source: ReleaseSource, layout: Layout, mode: ScanMode = "quick", executor: Executor | None = None,
                 progress: Progress | None = None, max_memory: int = DEFAULT_BUDGET, cache: ReleaseCache | None = None,
                 use: CacheUse | None = None) -> ReleaseFacts:
    """Facts of a whole release: meta.csv bytes, the root's entries, and every case folder's facts, in folder order;
    through `cache` when given (counted in `use`)."""
    root_entries = source.entries("")
    cases = case_folders(root_entries, layout.case_pattern)
    scanned: dict[str, CaseFacts] = {}
    files = 0
    if cache is not None:
        scanned_cases = cached_scan(source, cases, layout, mode, executor or SerialExecutor(), cache,
                                    use or CacheUse(), max_memory)
    else:
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


def case_reports(facts: ReleaseFacts, spec: ReleaseSpec, judgement: Judgement) -> list[CaseReport]:
    findings = judgement.findings
    rows = _meta_rows(judgement.table, spec)
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
        reports.append(CaseReport(case=safe_text(case.case), split=row.get(split_column) if split_column else None,
                                  meta=row, image=image, image_stats=image_stats(case),
                                  labels=case_labels(case, spec, judgement.measured_masks(case)),
                                  findings=per_case.get(safe_text(case.case), 0)))
    return reports


def build_report(facts: ReleaseFacts, spec: ReleaseSpec, spec_reason: str, mode: Mode, subset: bool,
                 fail_on: FailOn, started: datetime, duration_s: float, cache: CacheReport | None = None) -> Report:
    """Judge facts and wrap the findings in a report; cheap, so it can be re-run with another spec or threshold."""
    judgement = judge(facts, spec, subset)
    findings = judgement.findings
    files = sum(len(c.files) for c in facts.cases)
    cases = case_reports(facts, spec, judgement)
    return Report(
        version=__version__, spec_id=spec.id, spec=SpecSnapshot.of(spec), spec_reason=spec_reason,
        release=safe_text(facts.root), archive=None if facts.archive is None else ArchiveReport.of(facts.archive, spec),
        mode=mode, subset=subset, started=started, duration_s=round(duration_s, 3),
        summary=summarize(findings, len(facts.cases), files, fail_on),
        findings=findings, cases=cases,
        classes=class_stats([c.labels for c in cases if c.labels is not None], spec) if mode == "deep" else [],
        overlaps=overlap_stats(facts, spec),
        drift=drift_stats(judgement.drift, findings) if mode == "deep" else [],
        reference=None if spec.reference is None else spec.reference.source, cache=cache,
    )


def run_check(root: Path | ReleaseSource, spec: ReleaseSpec, spec_reason: str, mode: Mode = "deep", jobs: int = 1,
              subset: bool = False, fail_on: FailOn = "error", progress: Progress | None = None,
              checksum: bool = True, checksum_progress: ChecksumProgress | None = None,
              max_memory: int = DEFAULT_BUDGET, cache: FactCache | None = None, verify_cache: bool = False,
              executor: Executor | None = None) -> Report:
    """Scan and judge a release (a folder, a zip archive, or any source) with `jobs` worker processes, or on
    `executor` when given, the cases in flight holding at most `max_memory` bytes together. A release in a zip archive
    also has the archive's MD5 computed in a process of its own meanwhile, unless `checksum` is False. With `cache`, a
    folder's unchanged cases come from the fact cache (their gzip trailers compared first with `verify_cache`);
    judging always runs afresh."""
    source = root if isinstance(root, ReleaseSource) else open_release(Path(root), spec)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    hashing = Checksum(source.location, source.layout.size) if checksum and isinstance(source, ZipSource) else None
    layout = Layout.of(spec)
    # a zip archive's members are not cached: its facts cost one pass over the archive, as its MD5 does anyway
    entries = cache.release(source.location, layout) if cache is not None and isinstance(source, FolderSource) else None
    use = CacheUse(verified=verify_cache)
    # not around a Dask client: its event loop makes cyclic garbage for as long as the cluster scans
    with _collector_paused() if executor is None else contextlib.nullcontext():
        try:
            facts = scan_release(source, layout, mode=mode, executor=executor or executor_for(jobs, max_memory),
                                 progress=_with_checksum(progress, hashing, checksum_progress), max_memory=max_memory,
                                 cache=entries, use=use)
            if isinstance(source, ZipSource):
                facts.archive = _archive_facts(source, hashing, checksum_progress)
        finally:
            if hashing is not None:
                hashing.stop()
        report_cache = None if entries is None else CacheReport(folder=str(entries.cache.folder), cases=use.cases,
                                                                files=use.files, verified=verify_cache)
        return build_report(facts, spec, spec_reason, mode, subset, fail_on, started, time.perf_counter() - clock,
                            cache=report_cache)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while facts pile up and are judged: they hold no cycles (reference counting
    frees them), and each full collection would walk all of them again (a fifth of a full-size quick pass)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _with_checksum(progress: Progress | None, hashing: Checksum | None,
                   checksum_progress: ChecksumProgress | None) -> Progress | None:
    """The scan's progress, telling also how far the archive's hashing is whenever a case completes."""
    if hashing is None or checksum_progress is None:
        return progress

    def both(done: int, total: int, files: int) -> None:
        if progress is not None:
            progress(done, total, files)
        checksum_progress(hashing.done, hashing.size)

    return both


def _archive_facts(source: ZipSource, hashing: Checksum | None,
                   checksum_progress: ChecksumProgress | None) -> ArchiveFacts:
    """The archive as a whole, once its MD5 is known (waiting for it if the scan was faster)."""
    if hashing is None:
        return ArchiveFacts(layout=source.layout, checksum="skipped")
    outcome, value = hashing.wait(checksum_progress)
    if outcome == "computed":
        return ArchiveFacts(layout=source.layout, checksum="computed", md5=value)
    return ArchiveFacts(layout=source.layout, checksum="unreadable", checksum_error=value)


class OutputError(ValueError):
    """A report folder that cannot be used; the message is one line for the user."""


def open_output(out: Path, release: Path, lock: bool = True, what: str = "--out", parents: bool = False) -> Folder:
    """The report folder opened, locked and checked before anything is scanned: not inside the release, a folder (made
    if absent: only its last part, or with its missing parents when `parents`), writable, and (with `lock`) not being
    written by another run. Every output is then written through this handle. `what` names the folder in messages."""
    def refuse_inside(where: Path) -> None:
        if where.is_relative_to(release.resolve()):
            raise OutputError(f"{what} {out} is inside the release; tsqa never writes into the data it checks")

    problem = folder_problem(out, parents)
    if problem is not None:
        raise OutputError(f"{what} {out} {problem}")
    refuse_inside(out.resolve())
    for _ in range(3):
        folder = _opened(out, what, parents)
        try:
            refuse_inside(folder.path)  # a link swapped in between: the folder as opened is what counts
            if lock:
                folder.lock()
                if not _still_at(folder, out):  # a run that held it has just put its new folder there
                    folder.close()
                    continue
            folder.check_writable()
        except FolderBusy:
            folder.close()
            raise OutputError(f"{what} {out} is being written by another tsqa run; wait for it or choose another "
                              "folder") from None
        except OSError as exc:
            folder.close()
            raise OutputError(f"cannot write into {what} {out}: {exc.strerror or exc}") from None
        except OutputError:
            folder.close()
            raise
        return folder
    raise OutputError(f"{what} {out} is being written by other tsqa runs; wait for them or choose another folder")


def _opened(out: Path, what: str, parents: bool) -> Folder:
    try:
        return Folder.open(out, make="parents" if parents else "last")
    except FileExistsError:
        raise OutputError(f"{what} {out} exists and is not a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot create {what} {out}: {exc.strerror or exc}") from None


def _still_at(folder: Folder, path: Path) -> bool:
    """Whether the folder opened is still the one at its path."""
    try:
        there = path.stat()
    except OSError:
        return False
    mine = os.fstat(folder.fd)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


def write_outputs(report: Report, source: ReleaseSource, spec: ReleaseSpec, out: Folder,
                  index_dir: Folder | None = None, record: bool = False, max_memory: int = DEFAULT_BUDGET) -> Path:
    """Evidence pictures (their volumes within `max_memory`), report.json and report.html (and run.json, with
    `record`) staged and then put into `out` whole; with `record`, the latest.json beside `out` (a run of the
    history) then points at it; with `index_dir`, the page links that folder's index, which is refreshed last. Every
    file is written through the folders' handles. Returns the path of report.json. OutputError, one line, when a file
    cannot be written: before the report is in place, `out` is left as it was."""
    # matplotlib and Jinja2: only a run that writes pages loads them
    from qa.output.html.history import index_href, write_index
    from qa.output.html.page import write_html

    href = index_href(out.path, None if index_dir is None else index_dir.path)  # from where the page will be
    try:
        with staged(out) as staging:
            report.evidence = make_evidence(report, source, Layout.of(spec), staging, max_memory=max_memory)
            path = write_report(report, staging)
            write_html(report, staging, index_href=href)
            run = record_run(report, staging, out.path.name) if record else None
    except OSError as exc:
        raise OutputError(f"cannot write the report into {out.path}: {exc.strerror or exc}; the previous report is "
                          "unchanged") from None
    try:
        if run is not None:
            point_latest(out, run)
        if index_dir is not None:
            write_index(index_dir)
    except OSError as exc:
        raise OutputError(f"cannot update the history of {out.path}: {exc.strerror or exc}; the report itself is "
                          "complete") from None
    return path


def open_history(reports: Path, spec: ReleaseSpec, source: ReleaseSource, release: Path) -> tuple[Folder, Folder]:
    """The reports folder and the release's folder in it (<spec id>/<release>/), opened and checked before the scan
    as open_output does, but not locked: every run of a release gets a folder of its own."""
    index = open_output(reports, release, lock=False, what="the reports folder")
    try:
        return index, open_output(release_dir(reports, spec.id, source.location), release, lock=False,
                                  what="the reports folder", parents=True)
    except OutputError:
        index.close()
        raise


def keep_run(report: Report, source: ReleaseSource, spec: ReleaseSpec, reports: Folder, history: Folder,
             max_memory: int = DEFAULT_BUDGET) -> Path:
    """Write a run into the history: a new <UTC start>/ folder in the release's, its latest.json pointer and the
    refreshed index.html of `reports`. Returns the path of report.json; a run that cannot be written leaves no
    folder."""
    run = new_run_dir(history, report.started)
    with history.child(run.name) as folder:
        try:
            return write_outputs(report, source, spec, folder, index_dir=reports, record=True, max_memory=max_memory)
        except OutputError:
            with contextlib.suppress(OSError):
                os.rmdir(run.name, dir_fd=history.fd)  # still the empty folder it reserved
            raise
