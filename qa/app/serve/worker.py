"""The worker process beside the web process: it takes queued checks from the job database and runs each in a
process group of its own, which it stops when the check is cancelled or the service stops.

Started by the web process (`python -m qa.app.serve.worker`, the config as JSON on stdin); it ends when told to
(SIGTERM, SIGINT) or when the web process is gone."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
import traceback
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from qa.app.pipeline import run_check, write_outputs
from qa.app.serve.config import ServeConfig
from qa.app.serve.confine import Refused, resolve_target, source_for
from qa.app.serve.store import Job, JobStore
from qa.output.files import opened
from qa.output.html.diff import write_diff_html
from qa.output.json import read_report, write_diff
from qa.output.junit import write_junit
from qa.output.markdown import write_diff_markdown
from qa.output.runs import folder_name, new_run_dir, release_name
from qa.output.sarif import SourceRoot, write_sarif
from qa.report.diff import diff_reports
from qa.report.model import Report
from qa.rules.detect import NoSpecFits, detect_spec
from qa.rules.spec import ReleaseSpec, load_spec
from qa.scan.cache import FactCache
from qa.source.base import ReleaseSource

log = logging.getLogger("tsqa.serve.worker")
POLL_S = 0.1
PROGRESS_EVERY_S = 0.25
STOP_GRACE_S = 2.0
CACHE_DIR = "cache"
INTERRUPTED = "the service stopped while this check was running; submit it again"


class Reporter:
    """The progress callback of a running check: writes cases and files done to the database a few times a second,
    and ends the check's process group when the worker that started it is gone."""

    def __init__(self, store: JobStore, job_id: str, parent: int | None) -> None:
        self.store, self.job_id, self.parent = store, job_id, parent
        self.last = 0.0

    def orphaned(self) -> bool:
        return self.parent is not None and os.getppid() != self.parent

    def __call__(self, done: int, total: int, files: int) -> None:
        if self.orphaned():
            os.killpg(os.getpgrp(), signal.SIGKILL)
        clock = time.monotonic()
        if clock - self.last >= PROGRESS_EVERY_S or done == total:
            self.last = clock
            self.store.progress(self.job_id, "scanning", done, total, files)


def choose_spec(config: ServeConfig, job: Job, source: ReleaseSource) -> tuple[ReleaseSpec, str]:
    """The spec a check uses and why: the request's, the root's default, or detected from the release."""
    if job.spec is not None:
        return load_spec(config.spec_path(job.spec)), f"given: spec {job.spec}"
    default = config.roots[job.root].spec
    if default is not None:
        return load_spec(config.spec_path(default)), f"the default spec of root {job.root}"
    where = f"{job.root}/{job.path}" if job.path else job.root
    choice = detect_spec(source, where=where, hint="give the check a spec, or its root a default spec")
    return choice.spec, choice.reason


def run_folder(config: ServeConfig, job: Job, spec: ReleaseSpec, release: Path, report: Report) -> Path:
    """A new run folder in the root's history: reports/<root>/<spec id>/<release>/<UTC start>/, the release named
    by the root's folder, or by that and the sub-path ('store~2Fp~2Fq'), which no other sub-path shares."""
    top = config.roots[job.root].path.name
    name = folder_name(f"{top}/{job.path}") if job.path else release_name(str(release))
    return new_run_dir(config.reports / job.root / spec.id / name, report.started)


def write_diff_files(store: JobStore, config: ServeConfig, job: Job, report: Report, run: Path,
                     ) -> tuple[str | None, dict | None]:
    """diff.json, diff.md and diff.html against the previous finished check of the same root, path and spec."""
    previous = store.previous_finished(job, report.spec_id)
    if previous is None or previous.run is None:
        return None, None
    try:
        old = read_report(config.reports / previous.run / "report.json")
    except (OSError, ValueError):
        return None, None
    diff = diff_reports(old, report, f"checks/{previous.id}/report.json", f"checks/{job.id}/report.json",
                        fail_on=config.fail_on)
    write_diff(diff, run)
    write_diff_markdown(diff, run / "diff.md")
    write_diff_html(diff, run)
    return previous.id, diff.summary.model_dump()


def counts_of(report: Report) -> dict:
    s = report.summary
    return {"cases": s.cases, "files": s.files, "error": s.by_severity.get("error", 0),
            "warning": s.by_severity.get("warning", 0), "info": s.by_severity.get("info", 0), "failing": s.failing,
            "waived": s.waived, "by_code": s.by_code}


def run_job(config: ServeConfig, job_id: str, parent: int | None = None) -> None:
    """Run one claimed check to its end: confined again, scanned, judged, written into the root's history."""
    store = JobStore(config.db)
    job = store.get(job_id)
    if job is None or job.state != "running":
        return
    try:
        target = resolve_target(config, job.root, job.path)
        source = source_for(target.real)
    except Refused as exc:
        store.fail(job_id, f"refused when it started: {exc}")
        log.info("check %s refused when it started: %s", job_id, exc)
        return
    reporter = Reporter(store, job_id, parent)
    try:
        spec, reason = choose_spec(config, job, source)
    except NoSpecFits as exc:
        store.fail(job_id, str(exc))
        log.info("check %s has no spec: %s", job_id, exc)
        return
    # the service's own fact cache, in its data folder: a re-check of a root re-reads only the cases that changed
    with FactCache.open(config.data / CACHE_DIR, notice=log.warning) as cache:
        report = run_check(source, spec, reason, mode=job.mode, jobs=config.jobs, subset=job.subset,
                           fail_on=config.fail_on, progress=reporter, cache=cache)
    total = len(report.cases)
    store.progress(job_id, "writing", total, total, report.summary.files)
    run = run_folder(config, job, spec, target.real, report)
    with opened(run) as folder, opened(config.reports / job.root) as index:
        write_outputs(report, source, spec, folder, index_dir=index, record=True)
    write_junit(report, run / "junit.xml")
    root_uri = config.roots[job.root].path.resolve().as_uri() + "/"
    write_sarif(report, run / "report.sarif", SourceRoot(job.path, root_uri))
    previous, diff = write_diff_files(store, config, job, report, run)
    if reporter.orphaned():
        return  # the service restarted meanwhile and has marked this check failed
    verdict = "pass" if report.summary.passed else "fail"
    store.finish(job_id, spec.id, verdict, counts_of(report), run.relative_to(config.reports).as_posix(), previous,
                 diff)
    log.info("check %s finished: %s, %s", job_id, verdict.upper(), report.summary.by_severity)


def _job_main(config: ServeConfig, job_id: str, parent: int) -> None:
    """The entry of a check's process: a process group of its own, so that stopping it stops its pool too."""
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C reaches the service, which stops checks
    try:
        run_job(config, job_id, parent)
    except Exception as exc:
        log.error("check %s failed:\n%s", job_id, traceback.format_exc())
        JobStore(config.db).fail(job_id, f"tsqa could not finish this check ({type(exc).__name__}); the service "
                                         "log has the details")


def stop_group(process: BaseProcess) -> None:
    """End a check's process and every process of its group (the pool's workers), SIGTERM first."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        process.join(grace)
        if not process.is_alive() and sig == signal.SIGTERM:
            try:  # the leader is gone; its pool's workers may not be
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return


class Supervisor:
    """Claims queued checks (one per root, `parallel_checks` at once), runs each in a child process, stops the
    cancelled ones, and marks checks whose process ended without a result failed."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.store = JobStore(config.db)
        self.running: dict[str, tuple[str, BaseProcess]] = {}
        self.stopping = False
        self.context = multiprocessing.get_context("fork")  # this process is single-threaded: forking is safe

    def stop(self, *_: object) -> None:
        self.stopping = True

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        parent = os.getppid()
        while not self.stopping and os.getppid() == parent:
            self.reap()
            self.cancel()
            self.start()
            if self.running:  # wakes when a check's process ends
                wait([p.sentinel for _, p in self.running.values()], timeout=POLL_S)
            else:
                time.sleep(POLL_S)
        for job_id, (_, process) in list(self.running.items()):
            stop_group(process)
            if self.store.fail(job_id, INTERRUPTED, states=("running",)):
                log.warning("check %s stopped with the service: marked failed", job_id)

    def reap(self) -> None:
        for job_id, (_, process) in list(self.running.items()):
            if process.is_alive():
                continue
            del self.running[job_id]
            stop_group(process)
            code = process.exitcode
            ended = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            if self.store.fail(job_id, f"the check's process ended without a result ({ended})", states=("running",)):
                log.error("check %s: its process ended without a result (%s)", job_id, ended)

    def cancel(self) -> None:
        for job_id, (_, process) in list(self.running.items()):
            job = self.store.get(job_id)
            if job is not None and job.cancel:
                stop_group(process)
                del self.running[job_id]
                self.store.cancelled(job_id)
                log.info("check %s cancelled", job_id)

    def start(self) -> None:
        while not self.stopping and len(self.running) < self.config.parallel_checks:
            job = self.store.claim({root for root, _ in self.running.values()})
            if job is None:
                return
            process = self.context.Process(target=_job_main, args=(self.config, job.id, os.getpid()),
                                           name=f"tsqa-check-{job.id}")
            process.start()
            self.running[job.id] = (job.root, process)
            self.store.started(job.id, process.pid)
            log.info("check %s started: root %s, path %r", job.id, job.root, job.path)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServeConfig.model_validate_json(sys.stdin.buffer.read())
    Supervisor(config).serve()


if __name__ == "__main__":
    main()
