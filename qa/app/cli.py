"""The `tsqa` command line: check, baseline, diff, render, explain, specs, schema, sample, cache, demo and serve."""

from __future__ import annotations

import argparse
import functools
import os
import re
import signal
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from qa import __version__
from qa.execute.base import ExecutorError
from qa.rules.baseline import BaselineError, load_baseline
from qa.rules.codes import CODES
from qa.rules.spec import SpecError, builtin_spec_names, load_spec
from qa.rules.text import safe_text
from qa.rules.waivers import WAIVER_CODES, WaiverError, load_waivers

if TYPE_CHECKING:
    from qa.report.gate import Gate
    from qa.report.model import Report
    from qa.rules.spec import ReleaseSpec
    from qa.scan.cache import FactCache
    from qa.source.base import ReleaseSource

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
DEMO_OUT = Path("reports/demo")
DEFAULT_CACHE_BYTES = 2 << 30  # qa.scan.cache's DEFAULT_MAX_BYTES, without importing it for --help
# 128 + the signal's number: what a shell reports for a process the signal ended.
EXIT_SIGNALLED = {signal.SIGINT: 130, signal.SIGTERM: 143}


class UsageError(Exception):
    """A problem with how tsqa was called; reported in one line, exit 2."""


class Stopped(BaseException):
    """SIGINT or SIGTERM, raised where the main process is so that it stops its workers before it exits; a
    BaseException, so that no `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once; its workers die with it
    raise Stopped(signum)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints the whole usage; one line is kinder in CI logs
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2027-06-30") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return int(text)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 10 (0.1 is 10%)")
    return value


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int:
    """A size: a number of bytes, or of K, M, G or T (binary: 1G = 1 GiB), with or without 'iB'."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:iB)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (like 768M or 2G)")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def _memory(text: str) -> int:
    """A memory size (see _size), at least what a worker needs."""
    from qa.scan.memory import LEANEST, mib

    size = _size(text)
    if size < LEANEST:
        raise argparse.ArgumentTypeError(f"{text!r} is less than the {mib(LEANEST)} a worker needs to stream one file")
    return size


FAIL_ON_HELP = ("lowest severity that makes the exit code 1 (default: error; never: always 0); with --baseline only "
                "findings new against the baseline count, and waived findings never do")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tsqa", description="Release QA for TotalSegmentator-style segmentation datasets.")
    parser.add_argument("--version", action="version", version=f"tsqa {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = sub.add_parser(
        "check",
        help="check a release folder or zip archive and write report.json and report.html",
        description="Check a release folder, or a zip archive of one in place (its size and MD5 against the spec's "
        "published archive, an interrupted download, hostile members); exit 0 when no finding reaches --fail-on, 1 "
        "when one does, 2 on usage errors. With --baseline, --fail-on counts only findings new against the "
        "baseline; findings a waiver accepts (--waivers) never count.",
    )
    check.add_argument("path", type=Path, help="the release root (the folder holding meta.csv and the case folders), "
                       "or a zip archive of it, read without extracting")
    check.add_argument(
        "--spec", help="a built-in spec name (see 'tsqa specs') or a path to a spec YAML; detected when omitted"
    )
    check.add_argument(
        "--mode",
        choices=["deep", "quick"],
        default="deep",
        help="deep (default): decompress and verify every byte, measure voxels; quick: headers and gzip trailers only",
    )
    check.add_argument(
        "--out",
        type=Path,
        help="report folder, written exactly there (default: a new folder per run, reports/<spec id>/<release>/"
        "<UTC time>/, with latest.json beside it pointing at the newest; reports/index.html lists every run); it must "
        "be a writable folder outside the release (made if absent, but not its parent), checked before the scan, and "
        "one run at a time writes it; a run's files replace the last run's all at once",
    )
    check.add_argument("--subset", action="store_true", help="the folder holds part of a release: skip split counts")
    check.add_argument(
        "--jobs", type=_positive, default=os.cpu_count() or 1, help="parallel worker processes (default: all cores)"
    )
    check.add_argument(
        "--max-memory", type=_memory, default="1G", metavar="SIZE",
        help="the most memory the cases being scanned hold at once, all workers together (default 1G, binary units); "
        "cases start while they fit, a file too large for it is streamed in bounded steps, and a check it leaves out "
        "is reported as QA_PARTIAL",
    )
    check.add_argument(
        "--executor", choices=["processes", "dask"], default="processes",
        help="where the cases are scanned: processes (default), --jobs worker processes on this machine; dask, the "
        "workers of a Dask cluster (--scheduler; needs the tsqa[dask] extra), which read the release at the same path",
    )
    check.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="with --executor dask: the Dask scheduler's address (tcp://host:8786) or scheduler file (.json), or "
        "local:N to start a cluster of N worker processes on this machine",
    )
    check.add_argument("--fail-on", choices=["error", "warning", "never"], default="error", help=FAIL_ON_HELP)
    check.add_argument("--baseline", type=Path, metavar="FILE",
                       help="mark findings new, unchanged or worse against this baseline (from 'tsqa baseline' "
                            "or --write-baseline); --fail-on then counts only new (and worse) findings; a baseline of "
                            "another spec is refused")
    check.add_argument("--write-baseline", type=Path, metavar="FILE",
                       help="record this run's findings as a baseline for later checks")
    check.add_argument("--waivers", type=Path, metavar="FILE",
                       help="YAML of accepted problems (code, optional subcode, case, path and class globs, reason, "
                            "expires): waived findings stay in the report but never count for --fail-on")
    check.add_argument("--today", type=_day, metavar="DATE",
                       help="judge waiver expiry as of this day (YYYY-MM-DD; default: today in UTC)")
    check.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML (a test per case and check "
                                                                  "family) for CI test views")
    check.add_argument("--sarif", type=Path, metavar="FILE", help="also write SARIF 2.1.0 for code scanning")
    check.add_argument("--quiet", action="store_true", help="no progress bar and no summary (GitHub annotations, "
                                                           "written when GITHUB_ACTIONS=true, stay)")
    check.add_argument("--cache", type=Path, metavar="DIR",
                       help="the fact cache folder: facts of unchanged case folders are kept there and not read again "
                            "(default: $TSQA_CACHE_DIR, else the user cache folder, e.g. ~/.cache/tsqa); judging "
                            "always runs afresh; zip archives are not cached")
    check.add_argument("--no-cache", action="store_true", help="read every file; neither use nor fill the fact cache")
    check.add_argument("--cache-size", type=_size, default="2G", metavar="SIZE",
                       help="the most the fact cache keeps, all releases together (default 2G); the entries used "
                            "longest ago go first")
    check.add_argument("--verify-cache", action="store_true",
                       help="before trusting a cached file's facts, compare its gzip trailer (CRC32 and size, its last "
                            "8 bytes) with the cached one: catches a file rewritten with the same size and times "
                            "(off by default: it costs 1-2%% of a cold deep run)")
    check.add_argument("--no-checksum", action="store_true",
                       help="for a zip archive: skip its MD5 (minutes for tens of GB); its size is still compared "
                            "with the published one, and the report says the MD5 was skipped")

    baseline = sub.add_parser(
        "baseline",
        help="record the findings of a report.json as a baseline",
        description="Record the findings of a report by fingerprint (with counts where one repeats) for "
        "'tsqa check --baseline', which then fails only on findings not in it.",
    )
    baseline.add_argument("report", type=Path, help="a report.json written by 'tsqa check'")
    baseline.add_argument("-o", "--out", type=Path, default=Path("tsqa-baseline.json"),
                          help="baseline file to write (default: tsqa-baseline.json)")

    diff = sub.add_parser(
        "diff",
        help="what changed between two reports: findings, cases, splits, classes",
        description="Compare two reports (or, with --previous, a release's latest run with the one before it): "
        "findings new, fixed and unchanged by fingerprint, cases added and removed, split moves, classes whose "
        "presence or median volume changed. Exit 1 when new findings reach --fail-on.",
    )
    diff.add_argument("reports", nargs="*", type=Path, metavar="REPORT",
                      help="OLD and NEW: two report.json files, or the folders holding them")
    diff.add_argument("--previous", nargs="?", const="", metavar="RELEASE",
                      help="compare the latest run of a release in the history with the run before it; RELEASE is "
                           "its history folder (reports/<spec id>/<release>) or its name (default: the release "
                           "checked last)")
    diff.add_argument("--reports", type=Path, default=Path("reports"), dest="history",
                      help="the history folder --previous looks in (default: reports)")
    diff.add_argument("--out", type=Path, help="write diff.json, diff.md and diff.html here (default: print the "
                                               "Markdown)")
    diff.add_argument("--fail-on", choices=["error", "warning", "never"], default="error",
                      help="lowest severity of a new finding that makes the exit code 1 (default: error); waived "
                           "findings never count")
    diff.add_argument("--volume-change", type=_share, default=0.10, metavar="SHARE",
                      help="report a class whose median volume moved by more than this share (default: 0.10)")

    render = sub.add_parser(
        "render",
        help="rebuild report.html from a report.json and its evidence, without the release",
        description="Rebuild report.html from report.json and the evidence pictures beside it; the "
        "release need not be there.",
    )
    render.add_argument("report", type=Path, help="a report.json written by 'tsqa check'")
    render.add_argument("--out", type=Path, help="folder for report.html (default: the report's own folder; made if "
                        "absent, but not its parent)")

    explain = sub.add_parser("explain", help="what a finding code means, why it matters, how to fix it")
    explain.add_argument("code", nargs="?", help="a finding code; all codes are listed when omitted")

    sub.add_parser("specs", help="list the built-in release specs")
    sub.add_parser("schema", help="print the JSON Schema of report.json (committed as schemas/report.schema.json)")

    sample = sub.add_parser("sample", help="write a synthetic release, optionally with faults")
    sample.add_argument("dir", type=Path, help="folder to create (must not exist or be empty)")
    sample.add_argument("--cases", type=_positive, default=3)
    sample.add_argument("--spec", default="totalsegmentator-v2")
    sample.add_argument(
        "--fault", action="append", default=[], metavar="CODE", help="inject the fault that produces CODE (repeatable)"
    )
    sample.add_argument("--seed", type=int, default=0)

    serve = sub.add_parser(
        "serve",
        help="run the QA service: an API and a web UI that start and show checks of configured roots",
        description="Serve checks of the roots named in a config: an API under /api/v1 (OpenAPI at /docs), a web UI, "
        "jobs in SQLite run by a worker process beside the web process. Needs the serve extra: "
        "pip install 'tsqa[serve]'.",
    )
    serve.add_argument("--config", type=Path, metavar="FILE",
                       help="tsqa-serve.yaml: roots, data folder, host, port, jobs and tokens (see the README)")
    serve.add_argument("--demo", action="store_true",
                       help="serve a generated sample release with a fresh token, printed, and one check started")
    serve.add_argument("--host", help="the address to bind (default: the config's, 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="the port (default: the config's, 8787; 0 picks a free one)")
    serve.add_argument("--new-token", metavar="NAME",
                       help="print a new random token and the line of tsqa-serve.yaml that admits it, then exit")
    serve.add_argument("--role", choices=["read", "submit"], default="read",
                       help="the role of --new-token: read (look) or submit (also start and cancel checks)")

    cache = sub.add_parser(
        "cache",
        help="show or clear the fact cache",
        description="The fact cache keeps each case folder's facts under the stat of its files, so that a check "
        "re-reads only the cases that changed. 'info' lists what it holds per release; 'clear' empties it.",
    )
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--cache", type=Path, metavar="DIR",
                       help="the cache folder (default: $TSQA_CACHE_DIR, else the user cache folder)")

    demo = sub.add_parser("demo", help="make a small faulty sample, check it, and write reports/demo/")
    demo.add_argument("--out", type=Path, help=f"the report folder (default: {DEMO_OUT})")
    return parser


def _explain(code: str | None) -> int:
    if code is None:
        width = max(len(c) for c in CODES)
        for c in CODES.values():
            print(f"{c.code:<{width}}  {c.severity:<7}  {c.title}")
        return EXIT_OK
    key = code.upper()
    if key not in CODES:
        raise UsageError(f"unknown finding code {code!r}; 'tsqa explain' lists them")
    c = CODES[key]

    def wrap(text: str, hanging: str = "") -> str:
        return textwrap.fill(text, width=88, initial_indent="  ", subsequent_indent="  " + hanging)

    seen_by = "the quick and the deep pass" if c.needs == "quick" else "the deep pass only"
    origin = "made by --waivers" if c.code in WAIVER_CODES else f"seen by {seen_by}"
    parts = [f"{c.code} ({c.severity} by default, {origin}): {c.title}", f"What\n{wrap(c.what)}"]
    if c.subcodes:
        lines = [wrap(f"{s.name}: {s.meaning}" + (" (deep pass only)" if s.needs == "deep" else ""), hanging="  ")
                 for s in c.subcodes]
        parts.append("Subcodes (every finding has one; waive or set a severity as CODE:subcode)\n" + "\n".join(lines))
    parts += [f"Why it matters\n{wrap(c.why)}", f"How to fix\n{wrap(c.fix)}"]
    print("\n\n".join(parts))
    return EXIT_OK


def _specs() -> int:
    for name in builtin_spec_names():
        spec = load_spec(name)
        splits = "/".join(f"{v}" for v in spec.splits.values()) if spec.splits else "-"
        print(
            f"{spec.id:<22} {spec.title:<38} {len(spec.classes):>3} classes  {spec.expected_cases or '-':>5} cases  "
            f"splits {splits}"
        )
    return EXIT_OK


def _gate(args: argparse.Namespace, spec_id: str) -> Gate | None:
    """The baseline and waivers of a check, read and matched to its spec before anything is scanned."""
    from qa.report.gate import Gate

    if args.baseline is None and args.waivers is None:
        return None
    baseline = load_baseline(args.baseline) if args.baseline else None
    waivers = load_waivers(args.waivers) if args.waivers else None
    if baseline is not None and baseline.spec_id != spec_id:
        raise UsageError(f"baseline {args.baseline} records a check with spec {baseline.spec_id}, this check uses "
                         f"{spec_id}; make a baseline of this spec with --write-baseline")
    if waivers is not None and waivers.spec is not None and waivers.spec != spec_id:
        raise UsageError(f"waivers {args.waivers} are for spec {waivers.spec}, this check uses {spec_id}")
    return Gate(fail_on=args.fail_on, today=args.today or datetime.now(UTC).date(), baseline=baseline,
                baseline_file=None if args.baseline is None else str(args.baseline), waivers=waivers)


def _check(args: argparse.Namespace) -> int:
    from qa.app.workers import prepare_workers, stop_workers

    executor = _executor(args)
    if args.executor == "processes":
        prepare_workers()  # the workers' imports, in their own process, overlap with this one's
    try:
        return _checked(args, executor)
    finally:
        stop_workers()


def _checked(args: argparse.Namespace, executor: Callable[[ReleaseSource, int, bool], AbstractContextManager]) -> int:
    from qa.report.gate import apply_gate
    from qa.rules.detect import NoSpecFits, detect_spec

    root: Path = args.path
    given = load_spec(args.spec) if args.spec else None  # a usage error before the archive's directory is read
    source = _source(root.absolute(), given)  # absolute: a cluster's workers read it by the same path
    if given is not None:
        spec, reason = given, f"given: --spec {args.spec}"
    else:
        try:
            choice = detect_spec(source, where=str(root), hint="pass --spec (a built-in name or a spec YAML)")
        except NoSpecFits as exc:
            raise UsageError(str(exc)) from None
        spec, reason = choice.spec, choice.reason
    gate = _gate(args, spec.id)
    cache_folder = None if args.no_cache else _cache_folder(args.cache)
    _check_targets(args, root, cache_folder)
    # the scan, its checks (pandas, pandera) and the outputs are imported once the command line is known to be usable
    from qa.app.pipeline import OutputError, keep_run, open_history, open_output, run_check, write_outputs
    from qa.output.console import print_summary
    from qa.output.progress import progress_bar

    with ExitStack() as opened:
        cluster = opened.enter_context(executor(source, args.max_memory, args.quiet))  # reached before the outputs
        # the report folders are opened, checked and (--out) locked before the scan, and written through those handles
        try:
            if args.out is not None:
                out = opened.enter_context(open_output(args.out, root))
            else:
                reports, history = open_history(Path("reports"), spec, source, root)
                opened.enter_context(reports)
                opened.enter_context(history)
        except OutputError as exc:
            raise UsageError(str(exc)) from None
        if not args.quiet:
            print(f"tsqa: spec {spec.id} ({reason})", file=sys.stderr)
        cache = None if cache_folder is None else opened.enter_context(_open_cache(cache_folder, args.cache_size))
        with progress_bar(not args.quiet and sys.stderr.isatty()) as advance:
            report = run_check(source, spec, reason, mode=args.mode, jobs=args.jobs, subset=args.subset,
                               fail_on=args.fail_on, progress=advance, checksum=not args.no_checksum,
                               checksum_progress=None if advance is None else advance.checksum,
                               max_memory=args.max_memory, cache=cache, verify_cache=args.verify_cache,
                               executor=cluster)
        if gate is not None:
            report = apply_gate(report, gate, spec)
        try:
            if args.out is not None:
                path = write_outputs(report, source, spec, out, max_memory=args.max_memory)
            else:
                path = keep_run(report, source, spec, reports, history, max_memory=args.max_memory)
        except OutputError as exc:
            raise UsageError(str(exc)) from None
    _write_ci_files(args, report, root)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        _github(report, root, path)
    if not args.quiet:
        print_summary(report, path)
    return EXIT_OK if report.summary.passed else EXIT_FINDINGS


def _cache_folder(given: Path | None) -> Path:
    """The fact cache folder given, else the default one ($TSQA_CACHE_DIR or the user cache folder)."""
    from qa.scan.cache import default_cache_dir

    return given or default_cache_dir()


def _open_cache(folder: Path, max_bytes: int = DEFAULT_CACHE_BYTES) -> FactCache:
    """A fact cache folder, open (a broken one is said and started anew)."""
    from qa.scan.cache import FactCache

    return FactCache.open(folder, max_bytes)


def _megabytes(size: int) -> str:
    """A size in MB, with two decimals where one would round a small cache to nothing."""
    return f"{size / 1e6:,.1f} MB" if size >= 1e6 else f"{size / 1e6:.2f} MB"


def _cache(args: argparse.Namespace) -> int:
    from qa.output.text import counted

    with _open_cache(_cache_folder(args.cache)) as cache:
        if args.action == "clear":
            before = cache.info()
            if not cache.clear():
                print(f"tsqa: the fact cache {safe_text(str(before.path))} was not cleared: it is busy, read-only or "
                      "unreadable (said above)", file=sys.stderr)
                return EXIT_USAGE
            print(f"cleared the fact cache {safe_text(str(before.path))}: {counted(len(before.releases), 'release')}, "
                  f"{counted(sum(r[1] for r in before.releases), 'case')}")
            return EXIT_OK
        info = cache.info()
    print(f"fact cache {safe_text(str(info.path))}: {_megabytes(info.file_bytes)} on disk, entries "
          f"{_megabytes(info.entry_bytes)} of at most {_megabytes(info.max_bytes)} (--cache-size)")
    for location, cases, files, size in info.releases:
        print(f"  {safe_text(location)}: {counted(cases, 'case')}, {counted(files, 'file')}, {_megabytes(size)}")
    if not info.releases:
        print("  (empty)")
    return EXIT_OK


def _executor(args: argparse.Namespace) -> Callable[[ReleaseSource, int, bool], AbstractContextManager]:
    """What opens the executor of a check (given its source, memory budget and --quiet), the options checked: None for
    the process pool (run_check's default), or a Dask cluster's executor, reached and asked before any scan."""
    if args.executor == "processes":
        if args.scheduler is not None:
            raise UsageError("--scheduler goes with --executor dask")
        return lambda source, max_memory, quiet: nullcontext()
    if args.scheduler is None:
        raise UsageError("--executor dask needs --scheduler: a scheduler's address (tcp://host:8786), its file, or "
                         "local:N")
    try:
        from qa.app.cluster import check_scheduler, cluster_executor
    except ImportError as exc:
        raise UsageError(f"--executor dask needs Dask's distributed ({exc.name} is missing): "
                         "pip install 'tsqa[dask]'") from None
    check_scheduler(args.scheduler)  # a malformed address is an error now, before the release is read
    return functools.partial(cluster_executor, args.scheduler)


def _workspace() -> Path:
    """The folder CI paths are relative to: the GitHub checkout when there is one, else the current folder."""
    return Path(os.environ.get("GITHUB_WORKSPACE") or ".").resolve()


def _prefix(root: Path, workspace: Path) -> str | None:
    """The release root relative to the workspace ('' when it is the workspace), or None when it lies outside."""
    real = root.resolve()
    if not real.is_relative_to(workspace):
        return None
    inside = real.relative_to(workspace).as_posix()
    return "" if inside == "." else inside


def _check_targets(args: argparse.Namespace, root: Path, cache_folder: Path | None) -> None:
    """The files a check writes beside its report and its fact cache folder, usable before anything is scanned: a
    usage error naming the option when one is not (the report folders are checked as they are opened)."""
    from qa.output.targets import file_problem, folder_problem

    if args.out is not None:
        _refuse_target("--out", args.out, folder_problem(args.out))
    for option, path in (("--junit", args.junit), ("--sarif", args.sarif), ("--write-baseline", args.write_baseline)):
        if path is not None:
            _refuse_target(option, path, file_problem(path, args.out))
            _refuse_inside(path, root, option)
    if cache_folder is not None:
        named = "--cache" if args.cache else "TSQA_CACHE_DIR" if os.environ.get("TSQA_CACHE_DIR") else None
        # the user cache folder by default: its parents (~/.cache) are the platform's, made as any program makes them
        _refuse_target(named or "the fact cache folder", cache_folder, folder_problem(cache_folder, named is None))
        _refuse_inside(cache_folder, root, named or "the fact cache folder")


def _refuse_target(option: str, path: Path, problem: str | None) -> None:
    if problem is not None:
        raise UsageError(f"{option} {path} {problem}")


def _write_ci_files(args: argparse.Namespace, report: Report, root: Path) -> None:
    from qa.output.json import write_baseline
    from qa.output.junit import write_junit
    from qa.output.sarif import SourceRoot, write_sarif
    from qa.rules.baseline import baseline_of

    option, path = "--junit", args.junit
    try:
        if args.junit is not None:
            write_junit(report, args.junit)
        option, path = "--sarif", args.sarif
        if args.sarif is not None:
            workspace = _workspace()
            write_sarif(report, args.sarif, SourceRoot(_prefix(root, workspace), workspace.as_uri() + "/"))
        option, path = "--write-baseline", args.write_baseline
        if args.write_baseline is not None:
            write_baseline(baseline_of(report.findings, report.spec_id, report.release, report.mode, report.started,
                                       report.version), args.write_baseline)
    except OSError as exc:
        raise UsageError(f"cannot write {option} {path}: {exc.strerror or exc}") from None


def _github(report: Report, root: Path, path: Path) -> None:
    """Annotations on stdout, where the runner reads workflow commands, and the job summary."""
    from qa.output.github import annotations, append_summary, job_summary

    for line in annotations(report, _prefix(root, _workspace())):
        print(line, flush=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        append_summary(Path(summary), job_summary(report, str(path)))


def _baseline(args: argparse.Namespace) -> int:
    from qa.output.json import write_baseline
    from qa.output.targets import file_problem
    from qa.rules.baseline import baseline_of

    report = _read_report(args.report)
    _refuse_target("--out", args.out, file_problem(args.out))
    made = baseline_of(report.findings, report.spec_id, report.release, report.mode, report.started, report.version)
    try:
        write_baseline(made, args.out)
    except OSError as exc:
        raise UsageError(f"cannot write --out {args.out}: {exc.strerror or exc}") from None
    total = sum(e.count for e in made.entries)
    print(f"wrote {args.out}: {total} findings ({len(made.entries)} fingerprints) of {report.spec_id}, "
          f"from the run of {report.started:%Y-%m-%d %H:%M} UTC")
    return EXIT_OK


def _read_report(path: Path) -> Report:
    from qa.output.json import read_report

    if path.is_dir():
        path = path / "report.json"
    try:
        return read_report(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"{path} is not a tsqa report: {str(exc).splitlines()[0]}") from exc


def _previous_runs(reports: Path, target: str) -> tuple[Path, Path]:
    """The report.json of the run before the latest and of the latest run of a release in the history: a history
    folder, a release name, or (target '') the release checked last."""
    from qa.output.runs import LATEST, REPORT, latest_run, read_record, release_dirs, release_name, runs

    folders = release_dirs(reports)
    if target and Path(target).is_dir() and runs(Path(target)):
        folder = Path(target)
    elif target:
        matching = [f for f in folders if f.name in (target, release_name(target))]
        if not matching:
            raise UsageError(f"no runs of a release {target!r} in {reports}/")
        if len(matching) > 1:
            raise UsageError(f"release {target} has runs under several specs ({', '.join(map(str, matching))}); "
                             "name one of these folders")
        folder = matching[0]
    elif folders:
        never = datetime.min.replace(tzinfo=UTC)
        folder = max(folders, key=lambda f: getattr(read_record(f / LATEST), "started", never))
    else:
        raise UsageError(f"no runs in {reports}/ to compare; 'tsqa check' keeps them there")
    found, latest = runs(folder), latest_run(folder)
    before = found[:found.index(latest)] if latest in found else []
    if latest is None or not before:
        raise UsageError(f"{folder} has no run before its latest; nothing to compare")
    return before[-1] / REPORT, latest / REPORT


def _diff(args: argparse.Namespace) -> int:
    from qa.output.html.diff import write_diff_html
    from qa.output.json import write_diff
    from qa.output.markdown import diff_markdown, write_diff_markdown
    from qa.report.diff import diff_reports

    if args.previous is not None:
        if args.reports:
            raise UsageError("give either two reports or --previous, not both")
        old_path, new_path = _previous_runs(args.history, args.previous)
    elif len(args.reports) == 2:
        old_path, new_path = args.reports
    else:
        raise UsageError("give two reports (OLD NEW) or --previous")
    old, new = _read_report(old_path), _read_report(new_path)
    diff = diff_reports(old, new, str(old_path), str(new_path), fail_on=args.fail_on, volume_change=args.volume_change)
    if args.out is not None:
        write_diff(diff, args.out)
        write_diff_markdown(diff, args.out / "diff.md")
        page = write_diff_html(diff, args.out)
        s = diff.summary
        print(f"{'PASS' if s.passed else 'FAIL'} {s.new} new, {s.fixed} fixed, {s.unchanged} unchanged findings; "
              f"wrote diff.json, diff.md and {page}")
    else:
        sys.stdout.write(diff_markdown(diff))
    return EXIT_OK if diff.summary.passed else EXIT_FINDINGS


def _render(args: argparse.Namespace) -> int:
    from qa.output.files import Folder, FolderBusy
    from qa.output.html.history import find_index, index_href
    from qa.output.html.page import write_html
    from qa.output.targets import folder_problem

    report = _read_report(args.report)
    target = args.out or args.report.parent
    _refuse_target("--out", target, folder_problem(target))
    try:
        with Folder.open(args.report.parent, make="nothing") as evidence, Folder.open(target, make="last") as out:
            out.lock()
            page = write_html(report, evidence, out, index_href=index_href(out.path, find_index(out.path)))
    except FolderBusy:
        raise UsageError(f"{target} is being written by a tsqa run; wait for it") from None
    except OSError as exc:
        raise UsageError(f"cannot write into {target}: {exc.strerror or exc}") from None
    print(f"wrote {safe_text(str(page))}")
    return EXIT_OK


def _source(root: Path, spec: ReleaseSpec | None) -> ReleaseSource:
    """The release at a path, a folder or a zip archive, or the usage error that says why there is none."""
    from qa.app.opening import open_release
    from qa.source.zip import NotAZip

    if not root.exists():
        raise UsageError(f"release path {root} does not exist")
    if not root.is_dir() and not root.is_file():
        raise UsageError(f"release path {root} is neither a folder nor a zip archive")
    try:
        return open_release(root, spec)
    except NotAZip as exc:
        raise UsageError(f"release path {root} is neither a folder nor a zip archive tsqa can read: {exc}") from exc


def _refuse_inside(out: Path, root: Path, option: str = "--out") -> None:
    if out.resolve().is_relative_to(root.resolve()):
        raise UsageError(f"{option} {out} is inside the release; tsqa never writes into the data it checks")


def _sample(args: argparse.Namespace) -> int:
    from qa.synth.sample import FAULTS, make_sample

    unknown = [f for f in args.fault if f not in FAULTS]
    if unknown:
        raise UsageError(f"no fault for {', '.join(unknown)}; faults exist for: {', '.join(sorted(FAULTS))}")
    population = [f for f in args.fault if FAULTS[f].population]
    if population:
        raise UsageError(f"{', '.join(population)} show only in a population of many realistic cases, which "
                         "qa.synth.population.make_population writes; tsqa sample writes small samples")
    if args.dir.exists() and (not args.dir.is_dir() or any(args.dir.iterdir())):
        raise UsageError(f"{args.dir} exists and is not an empty folder")
    try:
        made = make_sample(args.dir, load_spec(args.spec), cases=args.cases, faults=args.fault, seed=args.seed)
    except ValueError as exc:  # a fault that finds nothing to break in these cases (no chain in view, say)
        raise UsageError(f"cannot make the sample: {exc}") from exc
    print(f"wrote {args.cases} cases of {args.spec} to {safe_text(str(args.dir))}")
    for fault in made.faults:
        print(f"  fault {fault.code}: {fault.path}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from qa.app.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="tsqa-demo-") as tmp:
        # the default reports/demo is made with reports/; a folder given is made only as its last part
        return run_demo(Path(tmp) / "release", args.out or DEMO_OUT, parents=args.out is None)


def _serve(args: argparse.Namespace) -> int:
    from qa.app.serve.config import ConfigError, hash_token, load_config

    chosen = [name for name, given in (("--config", args.config), ("--demo", args.demo),
                                       ("--new-token", args.new_token)) if given]
    if len(chosen) != 1:
        raise UsageError("tsqa serve needs one of --config FILE, --demo or --new-token NAME")
    if args.new_token is not None:
        import secrets

        token = secrets.token_urlsafe(32)
        print(f"token (give it to {args.new_token}; it is not stored anywhere): {token}")
        print("its line under tokens: in tsqa-serve.yaml:")
        print(f"  - {{name: {args.new_token}, role: {args.role}, token_sha256: {hash_token(token)}}}")
        return EXIT_OK
    try:
        from qa.app.serve.run import DEMO_CASES, demo_config, serve
    except ImportError as exc:
        raise UsageError(f"tsqa serve needs the serve extra ({exc.name} is missing): "
                         "pip install 'tsqa[serve]'") from exc
    if args.demo:
        with tempfile.TemporaryDirectory(prefix="tsqa-serve-demo-") as tmp:
            config, token = demo_config(Path(tmp), 8787 if args.port is None else args.port)
            host = args.host or config.host
            print(f"tsqa serve --demo: {DEMO_CASES} sample cases with injected faults in {tmp}/release; one check "
                  "queued")
            print(f"  open   http://{host}:{config.port}/  and sign in with this token: {token}")
            print(f"  or     curl -H 'Authorization: Bearer {token}' http://{host}:{config.port}/api/v1/roots")
            print(f"  API    http://{host}:{config.port}/docs          stop with Ctrl-C (the demo's files go too)")
            serve(config, args.host, args.port)
        return EXIT_OK
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    serve(config, args.host, args.port)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; SIGINT and SIGTERM stop the workers and exit 130 and 143 with one line on stderr."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        return _main(argv)
    previous = {signum: signal.signal(signum, _stop) for signum in EXIT_SIGNALLED}
    try:
        return _main(argv)
    except Stopped as stop:
        name = signal.Signals(stop.signum).name
        print(f"tsqa: {'interrupted' if stop.signum == signal.SIGINT else 'terminated'} ({name})", file=sys.stderr)
        return EXIT_SIGNALLED[stop.signum]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "explain":
            return _explain(args.code)
        if args.command == "specs":
            return _specs()
        if args.command == "schema":
            from qa.report.model import schema_text

            sys.stdout.write(schema_text())
            return EXIT_OK
        if args.command == "sample":
            return _sample(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "cache":
            return _cache(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "render":
            return _render(args)
        if args.command == "baseline":
            return _baseline(args)
        if args.command == "diff":
            return _diff(args)
        return _check(args)
    except (UsageError, SpecError, BaselineError, WaiverError, ExecutorError) as exc:
        print(f"tsqa: error: {safe_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
