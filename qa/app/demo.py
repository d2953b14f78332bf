"""`tsqa demo`: write a small sample with known faults, check it the way `tsqa check` does, and show what was found."""

from __future__ import annotations

import sys
from pathlib import Path

from qa.app.pipeline import OutputError, open_output, run_check, write_outputs
from qa.output.console import print_summary
from qa.output.files import Folder
from qa.report.model import Report
from qa.rules.spec import load_spec
from qa.rules.text import safe_text
from qa.source.fs import FolderSource
from qa.synth.sample import FAULTS, InjectedFault, make_sample

DEMO_SPEC = "totalsegmentator-v2"
DEMO_CASES = 4
DEMO_FAULTS = ("FILE_CORRUPT:size_mismatch", "GEOM_AFFINE_MISMATCH", "META_VALUE:allowed", "FILE_UNEXPECTED:os_junk")
EXIT_OK, EXIT_MISSED, EXIT_USAGE = 0, 1, 2


def missed_faults(faults: list[InjectedFault], report: Report) -> list[InjectedFault]:
    """The injected faults that no finding names by code, subcode, case and path."""
    found = {(f.code, f.subcode, f.case, f.path) for f in report.findings}
    return [fault for fault in faults if (fault.code, fault.subcode, fault.case, fault.path) not in found]


def run_demo(release: Path, out: Path, parents: bool = False) -> int:
    """Write the demo release at `release`, check it, write the reports into `out` (made with its missing parents
    when `parents`, else only as its last part); 0 when every fault was found."""
    try:
        with open_output(out, release, parents=parents) as folder:
            return _demo(release, folder)
    except OutputError as exc:
        print(f"tsqa: error: {safe_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE


def _demo(release: Path, out: Folder) -> int:
    spec = load_spec(DEMO_SPEC)
    sample = make_sample(release, spec, cases=DEMO_CASES, faults=DEMO_FAULTS)
    print(f"tsqa demo: wrote {DEMO_CASES} synthetic cases of {spec.id} to {release}, with these faults injected:")
    for name in DEMO_FAULTS:
        print(f"  {name:<28} {FAULTS[name].what}")
    source = FolderSource(release)
    # A 4-case sample cannot have the release's split sizes, so it is checked as a subset.
    report = run_check(source, spec, f"demo: a synthetic sample of {spec.id}", jobs=1, subset=True)
    with out.parent() as index:
        path = write_outputs(report, source, spec, out, index_dir=index)
    print_summary(report, path)
    missed = missed_faults(sample.faults, report)
    for fault in missed:
        print(f"tsqa demo: the check did not report {fault.code}:{fault.subcode} at {fault.path}")
    found = len(sample.faults) - len(missed)
    print(f"tsqa demo: {found} of {len(sample.faults)} injected faults found; report at {path}")
    return EXIT_MISSED if missed else EXIT_OK
