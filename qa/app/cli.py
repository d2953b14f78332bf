"""The `tsqa` command line: check, render, explain, specs, schema, sample and demo."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

from qa import __version__
from qa.rules.codes import CODES
from qa.rules.spec import SpecError, builtin_spec_names, load_spec

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
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


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _memory(text: str) -> int:
    """A memory size: a number of bytes, or of K, M, G or T (binary: 1G = 1 GiB), with or without 'iB'."""
    from qa.scan.memory import LEANEST, mib

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:iB)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size (like 768M or 2G)")
    size = int(float(match[1]) * _UNITS[match[2].upper()])
    if size < LEANEST:
        raise argparse.ArgumentTypeError(f"{text!r} is less than the {mib(LEANEST)} a worker needs to stream one file")
    return size


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tsqa", description="Release QA for TotalSegmentator-style segmentation datasets.")
    parser.add_argument("--version", action="version", version=f"tsqa {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = sub.add_parser(
        "check",
        help="check a release folder and write report.json and report.html",
        description="Check a release folder; exit 0 when no finding reaches --fail-on, 1 when one does, 2 on usage "
        "errors.",
    )
    check.add_argument("path", type=Path, help="the release root (the folder holding meta.csv and the case folders)")
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
        help="report folder (default: reports/<spec id>/ under the current folder, and reports/index.html lists them)",
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
        "--fail-on",
        choices=["error", "warning", "never"],
        default="error",
        help="lowest severity that makes the exit code 1 (default: error)",
    )
    check.add_argument("--quiet", action="store_true", help="no progress bar and no summary")

    render = sub.add_parser(
        "render",
        help="rebuild report.html from a report.json and its evidence, without the release",
        description="Rebuild report.html from report.json and the evidence pictures beside it; the "
        "release need not be there.",
    )
    render.add_argument("report", type=Path, help="a report.json written by 'tsqa check'")
    render.add_argument("--out", type=Path, help="folder for report.html (default: the report's own folder)")

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

    demo = sub.add_parser("demo", help="make a small faulty sample, check it, and write reports/demo/")
    demo.add_argument("--out", type=Path, default=Path("reports/demo"))
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
    parts = [f"{c.code} ({c.severity} by default, seen by {seen_by}): {c.title}", f"What\n{wrap(c.what)}"]
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


def _check(args: argparse.Namespace) -> int:
    from qa.app.workers import prepare_workers

    prepare_workers()  # the workers' imports, in their own process, overlap with this one's
    from qa.app.pipeline import run_check, write_outputs
    from qa.output.console import print_summary
    from qa.output.progress import progress_bar
    from qa.rules.detect import detect_spec
    from qa.source.fs import FolderSource

    root: Path = args.path
    if not root.exists():
        raise UsageError(f"release path {root} does not exist")
    if not root.is_dir():
        raise UsageError(f"release path {root} is not a folder")
    source = FolderSource(root)
    if args.spec:
        spec, reason = load_spec(args.spec), f"given: --spec {args.spec}"
    else:
        choice = detect_spec(source)
        spec, reason = choice.spec, choice.reason
    out = args.out if args.out is not None else Path("reports") / spec.id
    _refuse_inside(out, root)
    interactive = not args.quiet and sys.stderr.isatty()
    if not args.quiet:
        print(f"tsqa: spec {spec.id} ({reason})", file=sys.stderr)
    with progress_bar(interactive) as advance:
        report = run_check(
            source,
            spec,
            reason,
            mode=args.mode,
            jobs=args.jobs,
            subset=args.subset,
            fail_on=args.fail_on,
            progress=advance,
            max_memory=args.max_memory,
        )
    path = write_outputs(report, source, spec, out, index=args.out is None, max_memory=args.max_memory)
    if not args.quiet:
        print_summary(report, path)
    return EXIT_OK if report.summary.passed else EXIT_FINDINGS


def _render(args: argparse.Namespace) -> int:
    from qa.output.html.page import write_html
    from qa.output.json import read_report

    try:
        report = read_report(args.report)
    except OSError as exc:
        raise UsageError(f"cannot read {args.report}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"{args.report} is not a tsqa report: {str(exc).splitlines()[0]}") from exc
    page = write_html(report, args.report.parent, out_dir=args.out)
    print(f"wrote {page}")
    return EXIT_OK


def _refuse_inside(out: Path, root: Path) -> None:
    if out.resolve().is_relative_to(root.resolve()):
        raise UsageError(f"--out {out} is inside the release; tsqa never writes into the data it checks")


def _sample(args: argparse.Namespace) -> int:
    from qa.synth.sample import FAULTS, make_sample

    unknown = [f for f in args.fault if f not in FAULTS]
    if unknown:
        raise UsageError(f"no fault for {', '.join(unknown)}; faults exist for: {', '.join(sorted(FAULTS))}")
    if args.dir.exists() and (not args.dir.is_dir() or any(args.dir.iterdir())):
        raise UsageError(f"{args.dir} exists and is not an empty folder")
    made = make_sample(args.dir, load_spec(args.spec), cases=args.cases, faults=args.fault, seed=args.seed)
    print(f"wrote {args.cases} cases of {args.spec} to {args.dir}")
    for fault in made.faults:
        print(f"  fault {fault.code}: {fault.path}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from qa.app.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="tsqa-demo-") as tmp:
        return run_demo(Path(tmp) / "release", args.out)


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
        if args.command == "render":
            return _render(args)
        return _check(args)
    except (UsageError, SpecError) as exc:
        print(f"tsqa: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
