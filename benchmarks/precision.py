"""Precision benchmark of the label checks: false warnings on clean synthetic populations, and what share of each
kind of injected label error is found (tests/release/test_precision.py does the same on one small population)."""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LABEL_CODES = ("LABEL_CHAIN", "LABEL_FRAGMENTS", "LABEL_TRUNCATED", "LABEL_HU", "LABEL_OUTLIER", "RELEASE_DRIFT")
# The kinds of label error the issue names, as sample faults: each injected into --per-kind random cases a release.
KINDS = {
    "merged vertebra pair": "LABEL_CHAIN:merged",
    "missing vertebra": "LABEL_CHAIN:gap",
    "stray fragment (3%, 36 mm away)": "LABEL_FRAGMENTS:far",
    "stray fragment (15%, 20 mm away)": "LABEL_FRAGMENTS:share",
    "truncated organ": "LABEL_TRUNCATED:slices",
    "mislabel, wrong HU (lung as organ)": "LABEL_HU:low",
    "mislabel, wrong HU (bone as organ)": "LABEL_HU:high",
    "3x volume": "LABEL_OUTLIER:volume",
}
DRIFTS = {"class emptied in half the cases": "RELEASE_DRIFT:coverage",
          "class halved in every case": "RELEASE_DRIFT:volume"}
LAYOUT_VERSION = 1


def upper_bound(failures: int, trials: int, confidence: float = 0.95) -> float:
    """The one-sided Clopper-Pearson upper bound of a binomial rate (bisection on the binomial distribution)."""
    if failures >= trials:
        return 1.0
    low, high = failures / trials, 1.0
    for _ in range(60):
        p = (low + high) / 2
        cdf = sum(math.comb(trials, k) * p ** k * (1 - p) ** (trials - k) for k in range(failures + 1))
        low, high = (p, high) if cdf > 1 - confidence else (low, p)
    return high


def build(workdir: Path, cases: int, seed: int, spacing: float, jobs: int) -> Path:
    from qa.rules.spec import load_spec
    from qa.synth.population import make_population, population_spec

    root = workdir / f"population-{cases}-{seed}-{spacing:g}mm"
    marker = root.with_suffix(".json")
    expected = {"version": LAYOUT_VERSION, "cases": cases, "seed": seed, "spacing": spacing}
    if not (root.is_dir() and marker.is_file() and json.loads(marker.read_text()) == expected):
        shutil.rmtree(root, ignore_errors=True)
        marker.unlink(missing_ok=True)
        make_population(root, population_spec(load_spec("totalsegmentator-v2"), spacing), cases=cases, seed=seed,
                        processes=jobs)
        marker.write_text(json.dumps(expected))
    return root


@dataclass
class Tally:
    cases: int = 0
    warned_cases: int = 0
    warnings: Counter = field(default_factory=Counter)
    injected: Counter = field(default_factory=Counter)
    found: Counter = field(default_factory=Counter)
    found_warning: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def label_warnings(report) -> list:
    return [f for f in report.findings if f.code in LABEL_CODES and f.severity != "info"]


def run_release(root: Path, spec, seed: int, per_kind: int, jobs: int, scratch: Path, tally: Tally) -> None:
    from qa.app.pipeline import run_check
    from qa.synth.sample import FAULTS, Sample

    cases = sorted(p.name for p in root.iterdir() if p.is_dir())
    clock = time.perf_counter()
    clean = run_check(root, spec, "precision", mode="deep", jobs=jobs, subset=True)
    tally.seconds += time.perf_counter() - clock
    warned = {f.case for f in label_warnings(clean)}
    tally.cases += len(cases)
    tally.warned_cases += len(warned)
    tally.warnings.update(f"{f.code}:{f.subcode}" for f in label_warnings(clean))
    for f in label_warnings(clean):
        print(f"    false warning: {f.message}")
    copy = scratch / "injected"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    sample = Sample(root=copy, cases=cases, seed=seed)
    rng = np.random.default_rng(seed)
    order = [str(c) for c in rng.permutation(cases)]
    made = []
    for kind, fault in KINDS.items():
        done = 0
        while done < per_kind and order:
            case = order.pop()
            try:
                made += [(kind, injected) for injected in FAULTS[fault](sample, spec, case)]
                done += 1
            except ValueError:
                tally.skipped[kind] += 1
        tally.injected[kind] += done
    report = run_check(copy, spec, "precision", mode="deep", jobs=jobs, subset=True)
    for kind, injected in made:
        hits = [f for f in report.findings if (f.code, f.case, f.path) == (injected.code, injected.case, injected.path)]
        tally.found[kind] += bool(hits)
        tally.found_warning[kind] += any(f.severity != "info" for f in hits)
        if not hits:
            print(f"    missed {kind}: {injected.path}")
    touched = {injected.case for _, injected in made}
    others = {f.case for f in label_warnings(report)} - touched
    for f in label_warnings(report):
        if f.case in others:
            print(f"    warning on a case without an injected error: {f.message}")
    tally.cases += len(cases) - len(touched)
    tally.warned_cases += len(others)
    shutil.rmtree(copy)


def run_drift(reference_root: Path, root: Path, spec, seed: int, jobs: int, scratch: Path, tally: Tally) -> None:
    """One release judged against the reference measured on another: false drift, then each drift injected."""
    from qa.app.pipeline import run_check, scan_release
    from qa.scan.case import Layout
    from qa.scan.measures import measured_reference
    from qa.source.fs import FolderSource
    from qa.synth.sample import FAULTS, Sample

    facts = scan_release(FolderSource(reference_root), Layout.of(spec), mode="deep")
    reference = measured_reference(facts, spec, reference_root.name).model_copy(update={"min_cases": 50})
    judged = spec.model_copy(update={"reference": reference})
    clean = run_check(root, judged, "precision", mode="deep", jobs=jobs, subset=True)
    drifted = [f for f in label_warnings(clean) if f.code == "RELEASE_DRIFT"]
    tally.warnings.update(f"{f.code}:{f.subcode} (release)" for f in drifted)
    for f in drifted:
        print(f"    false drift warning: {f.message}")
    cases = sorted(p.name for p in root.iterdir() if p.is_dir())
    for kind, fault in DRIFTS.items():
        copy = scratch / "drift"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(root, copy)
        [injected] = FAULTS[fault](Sample(root=copy, cases=cases, seed=seed), judged, cases[0])
        report = run_check(copy, judged, "precision", mode="deep", jobs=jobs, subset=True)
        hits = [f for f in report.findings if f.code == "RELEASE_DRIFT" and f.subcode == fault.split(":")[1]
                and f.class_name == "liver"]
        tally.injected[kind] += 1
        tally.found[kind] += bool(hits)
        tally.found_warning[kind] += any(f.severity == "warning" for f in hits)
        shutil.rmtree(copy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=3, help="populations (default 3)")
    parser.add_argument("--cases", type=int, default=100, help="cases per population (default 100)")
    parser.add_argument("--spacing", type=float, default=4.0, help="voxel spacing in mm (default 4)")
    parser.add_argument("--per-kind", type=int, default=4, help="injections of each kind per population (default 4)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tsqa-bench")
    args = parser.parse_args(argv)
    from qa.rules.spec import load_spec
    from qa.synth.population import population_spec

    spec = population_spec(load_spec("totalsegmentator-v2"), args.spacing)
    workdir = args.workdir.resolve()
    scratch = workdir / "precision-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    tally = Tally()
    clock = time.perf_counter()
    roots = []
    for r in range(args.releases):
        seed = 1000 + r
        roots.append(build(workdir, args.cases, seed, args.spacing, args.jobs))
        print(f"release {r + 1}/{args.releases}: {roots[-1]} ({time.perf_counter() - clock:.0f} s)", flush=True)
        run_release(roots[-1], spec, seed, args.per_kind, args.jobs, scratch, tally)
    for r in range(1, len(roots)):
        run_drift(roots[r - 1], roots[r], spec, 1000 + r, args.jobs, scratch, tally)
    rate = tally.warned_cases / tally.cases
    bound = upper_bound(tally.warned_cases, tally.cases)
    print(f"\nclean cases with a warning from the label checks: {tally.warned_cases} of {tally.cases} "
          f"({rate:.2%}; one-sided 95% upper bound {bound:.2%}; target at most 1%)")
    print(f"false warnings by code: {dict(tally.warnings) or 'none'}")
    print(f"{'injected error':<38} {'injected':>8} {'found':>6} {'as warning':>10}  not injectable (no suitable mask)")
    for kind in [*KINDS, *DRIFTS]:
        print(f"{kind:<38} {tally.injected[kind]:>8} {tally.found[kind]:>6} {tally.found_warning[kind]:>10}  "
              f"{tally.skipped[kind]}")
    print(f"judging time: {tally.seconds:.1f} s for {args.releases * args.cases} clean cases; total "
          f"{time.perf_counter() - clock:.0f} s")
    shutil.rmtree(scratch, ignore_errors=True)
    missed = [kind for kind in [*KINDS, *DRIFTS] if tally.found[kind] < tally.injected[kind]]
    failures = ([f"{tally.warned_cases} of {tally.cases} clean cases warned"] if bound > 0.01 and rate > 0.01 else [])
    failures += [f"missed {kind}" for kind in missed]
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
