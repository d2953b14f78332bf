"""Outputs benchmark: report.json and report.html of a full-size release, without scanning one.

A deep report.json of a small real run (`--report`; by default `tsqa sample --cases 4` checked with `--mode deep`
in a temporary folder) is replicated in process to `--cases` cases (default 1,228, the v2 release's count): each
copy of a case is renamed, its findings with it, and its label findings are repeated over other classes until a case
has `--findings-per-case` (default 72, as a full v2 release had: 88,114 findings, 81% info). Then, each timed apart:
write report.json, read it back, build and write report.html (`tsqa render`'s work), and the sizes of both files;
the peak resident memory of the process at the end.

    python benchmarks/outputs.py [--report REPORT_JSON] [--cases N] [--findings-per-case N]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qa.output.html.page import write_html
from qa.output.json import read_report, write_report
from qa.report.model import Report, summarize
from qa.rules.finding import Finding


def small_report(folder: Path) -> Path:
    """A deep report of a four-case sample release."""
    run = [sys.executable, "-m", "qa"]
    subprocess.run([*run, "sample", str(folder / "release"), "--cases", "4"], check=True, capture_output=True)
    subprocess.run([*run, "check", str(folder / "release"), "--mode", "deep", "--no-cache", "--out",
                    str(folder / "small")], capture_output=True)
    return folder / "small" / "report.json"


def _renamed(f: Finding, case: str, class_name: str | None, salt: str) -> Finding:
    path = f.path.replace(f.case, case, 1) if f.path and f.case else f.path
    if path and class_name and f.class_name:
        path = path.replace(f.class_name, class_name)
    return f.model_copy(update={"case": case, "path": path, "class_name": class_name,
                                "fingerprint": f"{f.fingerprint[:8]}{salt}"})


def replicate(small: Report, cases: int, per_case: int) -> Report:
    """The small report grown to `cases` cases of about `per_case` findings each."""
    release_level = [f for f in small.findings if f.case is None]
    by_case: dict[str, list[Finding]] = {}
    for f in small.findings:
        if f.case is not None:
            by_case.setdefault(f.case, []).append(f)
    classes = small.spec.classes
    grown_cases, grown_findings = [], list(release_level)
    for k in range(cases):
        source = small.cases[k % len(small.cases)]
        name = f"s{k:05d}"
        found = by_case.get(source.case, [])
        made = [_renamed(f, name, f.class_name, f"{k:08x}") for f in found]
        labelled = [f for f in found if f.class_name is not None]
        extra = 0
        while labelled and len(made) < per_case:
            f = labelled[extra % len(labelled)]
            other = classes[(classes.index(f.class_name) + 1 + extra) % len(classes)]
            made.append(_renamed(f, name, other, f"{k:06x}{extra:02x}"))
            extra += 1
        grown_findings += made
        grown_cases.append(source.model_copy(update={"case": name, "findings": len(made)}))
    summary = summarize(grown_findings, cases, small.summary.files * cases // max(len(small.cases), 1),
                        small.summary.fail_on)
    return small.model_copy(update={"cases": grown_cases, "findings": grown_findings, "summary": summary})


def timed(label: str, work):
    start = time.perf_counter()
    result = work()
    print(f"{label}: {time.perf_counter() - start:.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path)
    parser.add_argument("--cases", type=int, default=1228)
    parser.add_argument("--findings-per-case", type=int, default=72)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = read_report(args.report or small_report(folder))
        big = replicate(small, args.cases, args.findings_per_case)
        print(f"{len(big.cases)} cases, {len(big.findings)} findings "
              f"({big.summary.by_severity.get('info', 0)} info)")
        out = folder / "big"
        out.mkdir()
        path = timed("write report.json", lambda: write_report(big, out))
        print(f"report.json: {path.stat().st_size / 1e6:.1f} MB")
        report = timed("read report.json", lambda: read_report(path))
        page = timed("write report.html (render)", lambda: write_html(report, out))
        print(f"report.html: {page.stat().st_size / 1e6:.1f} MB")
        print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
