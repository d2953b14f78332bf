"""Quick-pass benchmark: tsqa's quick pass against a hand-written nibabel loop, the least a header reader can read,
and gzip -t, on a full-size v2 layout."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
from peaks import run_watched

if TYPE_CHECKING:
    from qa.rules.spec import ReleaseSpec
    from qa.synth.sample import CasePlan, Grid

SPEC_NAME = "totalsegmentator-v2"
FULL_CASES = 1228
# The published release numbers its 1,228 cases up to s1429, skipping ids; the gaps below keep that shape.
ID_SPAN = 1430
KEPT_IDS = ("s1419", "s1429")
FULL_SPLITS = {"train": 1082, "val": 57, "test": 89}
# Tiny grids keep the build fast; only headers and trailers are read, so the volume size does not change what is timed.
GRIDS = [(9, 8, 6), (7, 10, 5), (12, 9, 8)]
TARGET_RATIO = 10.0
# Only reported: the quick pass against the floor (open each file, read its first 4 KB and last 8 bytes).
FLOOR_HEAD, FLOOR_TAIL = 4096, 8
LAYOUT_VERSION = 4
# Cases per task of the build's process pool: few enough tasks to spread evenly, big enough to keep dispatch cheap.
BUILD_CHUNK = 16


@dataclass(frozen=True)
class BuiltRelease:
    """A built benchmark release: where it is and how many cases and NIfTI files it holds."""

    root: Path
    cases: int
    files: int


@dataclass(frozen=True)
class Timing:
    """One measured run: what ran, with how many processes, how long, and what it reported."""

    name: str
    processes: int
    wall_s: float
    cpu_s: float
    files: int
    ok: bool
    note: str = ""
    peak_rss_mb: float | None = None

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall_s if self.wall_s > 0 else float("inf")


def case_ids(cases: int, seed: int = 0) -> list[str]:
    """Release-like ids: s0000 upwards with gaps, the real release's s1419 and s1429 kept at full size."""
    if cases > FULL_CASES:
        return [f"s{i:04d}" for i in range(cases)]
    rng = random.Random(seed)
    kept = {int(i[1:]) for i in KEPT_IDS}
    gaps = set(rng.sample([i for i in range(1, ID_SPAN) if i not in kept], ID_SPAN - FULL_CASES))
    return [f"s{i:04d}" for i in range(ID_SPAN) if i not in gaps][:cases]


def split_counts(cases: int) -> dict[str, int]:
    if cases == FULL_CASES:
        return dict(FULL_SPLITS)
    val = round(cases * FULL_SPLITS["val"] / FULL_CASES)
    test = round(cases * FULL_SPLITS["test"] / FULL_CASES)
    return {"train": cases - val - test, "val": val, "test": test}


def plan_release(spec: ReleaseSpec, cases: int, seed: int = 0) -> list[tuple[CasePlan, Grid]]:
    """The synthetic cases under release-like ids with the release's split sizes, each on one of the tiny grids."""
    from qa.synth.sample import default_grid, plan_case

    rng = random.Random(seed)
    splits = [name for name, n in split_counts(cases).items() for _ in range(n)]
    rng.shuffle(splits)
    planned = []
    for index, (case, split) in enumerate(zip(case_ids(cases, seed), splits, strict=True)):
        plan = dataclasses.replace(plan_case(spec, seed, index), case=case, split=split)
        planned.append((plan, default_grid(spec, plan, GRIDS[index % len(GRIDS)])))
    return planned


def build_layout(workdir: Path, cases: int, processes: int) -> BuiltRelease:
    """The benchmark release under workdir, built once with qa.synth and reused while its marker says it is complete."""
    from qa.rules.spec import load_spec
    from qa.synth.sample import write_cases, write_meta

    spec = load_spec(SPEC_NAME)
    root = workdir / f"v2-{cases}-cases"
    marker = workdir / f"v2-{cases}-cases.json"
    expected = {"version": LAYOUT_VERSION, "cases": cases, "files": cases * (1 + len(spec.classes))}
    if root.is_dir() and marker.is_file() and json.loads(marker.read_text()) == expected:
        return BuiltRelease(root, cases, expected["files"])
    if root.exists():
        shutil.rmtree(root)
    marker.unlink(missing_ok=True)
    root.mkdir(parents=True)
    planned = plan_release(spec, cases)
    write_meta(root, spec, [plan for plan, _ in planned])
    parts = [planned[i : i + BUILD_CHUNK] for i in range(0, len(planned), BUILD_CHUNK)]
    # creating 145k files is most of the build; a process pool keeps it to a minute or two
    with multiprocessing.Pool(processes) as pool:
        pool.map(functools.partial(write_cases, root, spec), parts)
    marker.write_text(json.dumps(expected))
    return BuiltRelease(root, cases, expected["files"])


def nifti_files(root: Path) -> list[Path]:
    return sorted(root.glob("s*/ct.nii.gz")) + sorted(root.glob("s*/segmentations/*.nii.gz"))


def warm_up(files: list[Path]) -> int:
    """Read every byte once so that every measured method starts from the same warm page cache."""
    return sum(len(path.read_bytes()) for path in files)


def cpu_seconds() -> float:
    """CPU time of this process and of every child it has waited for (pool workers, xargs and its gzips)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux; RUSAGE_CHILDREN holds the largest worker that has been waited for.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers) / 1024


def _own_peak_mb() -> float:
    """This process's VmHWM: its launcher's memory is not in it (ru_maxrss carries it across exec)."""
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024


def reap_workers() -> None:
    """tsqa's workers are children of multiprocessing's fork server, which would outlive the measurement until this
    process exits: stop it and wait for it, so that RUSAGE_CHILDREN counts the workers it waited for (their CPU time
    and peak memory), as it counts the children of a pool forked from this process."""
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # private, but the only way to wait for the server


def measure_quick(root: Path, jobs: int, subset: bool, cache: Path | None = None) -> Timing:
    """tsqa's quick pass through the pipeline, in this (fresh) process, so that its peak RSS is its own; clean means
    no finding at warning or above, as `tsqa check --fail-on warning` exits 0. Without `cache`, no fact cache (as
    `--no-cache`); with it, through the fact cache in that folder."""
    from qa.app.pipeline import run_check
    from qa.rules.spec import load_spec
    from qa.scan.cache import FactCache

    spec = load_spec(SPEC_NAME)
    cpu, clock = cpu_seconds(), time.perf_counter()
    facts = None if cache is None else FactCache.open(cache)
    report = run_check(root, spec, "benchmark", mode="quick", jobs=jobs, subset=subset, fail_on="warning",
                       cache=facts)
    wall = time.perf_counter() - clock
    reap_workers()
    cpu = cpu_seconds() - cpu
    name = f"tsqa quick (jobs={jobs})" if cache is None else f"tsqa quick, cache (jobs={jobs})"
    served = "" if report.cache is None else f"; {report.cache.files} files from the cache"
    return Timing(name, jobs, wall, cpu, report.summary.files, report.summary.passed,
                  note=f"{len(report.findings)} findings {json.dumps(report.summary.by_code)}{served}",
                  peak_rss_mb=_own_peak_mb())


def naive_case(case: str) -> tuple[int, int]:
    """What people write by hand: load the CT and every mask with nibabel, compare shape and affine."""
    ct = nib.load(os.path.join(case, "ct.nii.gz"))
    seg = os.path.join(case, "segmentations")
    loaded, mismatched = 1, 0
    for name in sorted(os.listdir(seg)):
        mask = nib.load(os.path.join(seg, name))
        loaded += 1
        if mask.shape != ct.shape or not np.allclose(mask.affine, ct.affine):
            mismatched += 1
    return loaded, mismatched


def floor_case(case: str) -> int:
    """The least a header reader does: open each NIfTI of a case, read its first 4 KB and its last 8 bytes."""
    seg = os.path.join(case, "segmentations")
    paths = [os.path.join(case, "ct.nii.gz")] + [os.path.join(seg, name) for name in os.listdir(seg)]
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.pread(fd, FLOOR_HEAD, 0)
            os.lseek(fd, -FLOOR_TAIL, os.SEEK_END)
            os.read(fd, FLOOR_TAIL)
        finally:
            os.close(fd)
    return len(paths)


def measure_floor(root: Path, processes: int) -> Timing:
    cases = sorted(str(p) for p in root.glob("s*") if p.is_dir())
    cpu, clock = cpu_seconds(), time.perf_counter()
    with multiprocessing.Pool(processes) as pool:
        read = sum(pool.map(floor_case, cases, chunksize=8))
    wall, cpu = time.perf_counter() - clock, cpu_seconds() - cpu
    return Timing(f"floor: open, 4 KB + 8 B ({processes} proc)", processes, wall, cpu, read, True,
                  note="nothing parsed", peak_rss_mb=_peak_rss_mb())


def measure_naive(root: Path, processes: int) -> Timing:
    cases = sorted(str(p) for p in root.glob("s*") if p.is_dir())
    cpu, clock = cpu_seconds(), time.perf_counter()
    if processes == 1:
        results = [naive_case(case) for case in cases]
    else:
        with multiprocessing.Pool(processes) as pool:
            results = pool.map(naive_case, cases, chunksize=8)
    wall, cpu = time.perf_counter() - clock, cpu_seconds() - cpu
    loaded, mismatched = sum(r[0] for r in results), sum(r[1] for r in results)
    return Timing(f"naive nib.load loop ({processes} proc)", processes, wall, cpu, loaded, mismatched == 0,
                  note=f"{mismatched} mismatches", peak_rss_mb=_peak_rss_mb())


def measure_gzip_t(files: list[Path], processes: int) -> Timing:
    """gzip -t decompresses whole files: a floor-like reference for a deep pass, not a header reader."""
    names = b"\0".join(str(p).encode() for p in files) + b"\0"
    cpu, clock = cpu_seconds(), time.perf_counter()
    done = subprocess.run(["xargs", "-0", "-n", "1000", "-P", str(processes), "gzip", "-t"], input=names,
                          capture_output=True, check=False)
    wall, cpu = time.perf_counter() - clock, cpu_seconds() - cpu
    return Timing(f"gzip -t via xargs (-P {processes})", processes, wall, cpu, len(files), done.returncode == 0,
                  note=f"exit {done.returncode}")


def run_measurement(kind: str, root: Path, jobs: int, subset: bool, cache: Path | None = None) -> Timing:
    """One measurement in a fresh interpreter, so that no method inherits another's memory or imports."""
    command = [sys.executable, __file__, "--measure", kind, "--root", str(root), "--jobs", str(jobs)]
    if subset:
        command.append("--subset")
    if cache is not None:
        command += ["--cache", str(cache)]
    watched = run_watched(command)
    done = watched.done
    if done.returncode != 0:
        raise SystemExit(f"measurement {kind} failed (exit {done.returncode}):\n{done.stderr}")
    timing = Timing(**json.loads(done.stdout.strip().splitlines()[-1]))
    if kind == "quick":  # main + largest worker, that worker's peak watched from /proc (see peaks.py)
        return dataclasses.replace(timing, peak_rss_mb=timing.peak_rss_mb + watched.largest_other_mib)
    return timing


def print_table(rows: list[Timing], quick: Timing) -> None:
    """Wall time decides the target; CPU time is shown too because other work on a shared machine inflates wall time."""
    print(f"{'method':<34} {'wall s':>8} {'files/s':>9} {'x quick':>8} {'CPU s':>8} {'x quick':>8} "
          f"{'peak RSS MB':>12}  ok  note")
    for row in rows:
        rss = f"{row.peak_rss_mb:.0f}" if row.peak_rss_mb is not None else "-"
        print(f"{row.name:<34} {row.wall_s:>8.2f} {row.files_per_s:>9.0f} {row.wall_s / quick.wall_s:>8.2f} "
              f"{row.cpu_s:>8.2f} {row.cpu_s / quick.cpu_s:>8.2f} {rss:>12}  {'yes' if row.ok else 'NO':<3} {row.note}")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tsqa-bench",
                        help="where the benchmark release is built and kept for reuse (outside the repo)")
    parser.add_argument("--cases", type=int, default=FULL_CASES,
                        help=f"number of cases (default {FULL_CASES}, the v2 release)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the parallel runs (default 2)")
    parser.add_argument("--measure", choices=["quick", "naive", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--subset", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _measure_only(args: argparse.Namespace) -> int:
    if args.measure == "quick":
        timing = measure_quick(args.root, args.jobs, args.subset, args.cache)
    elif args.measure == "floor":
        timing = measure_floor(args.root, args.jobs)
    else:
        timing = measure_naive(args.root, args.jobs)
    print(json.dumps(asdict(timing)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.measure is not None:
        return _measure_only(args)
    if not 1 <= args.cases <= 9999:
        raise SystemExit("--cases must be between 1 and 9999")
    subset = args.cases != FULL_CASES
    clock = time.perf_counter()
    layout = build_layout(args.workdir.resolve(), args.cases, args.jobs)
    print(f"layout: {layout.root} ({layout.cases} cases, {layout.files} NIfTI files), "
          f"ready in {time.perf_counter() - clock:.1f} s")
    files = nifti_files(layout.root)
    print(f"warm-up: read {warm_up(files) / 1e6:.0f} MB from {len(files)} files (untimed)")
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, {os.cpu_count()} CPUs)")
    quick = run_measurement("quick", layout.root, args.jobs, subset)
    with tempfile.TemporaryDirectory(prefix="tsqa-bench-cache-") as cache:
        cold = run_measurement("quick", layout.root, args.jobs, subset, Path(cache))
        warm = run_measurement("quick", layout.root, args.jobs, subset, Path(cache))
    rows = [
        quick,
        run_measurement("quick", layout.root, 1, subset),
        cold,
        warm,
        run_measurement("naive", layout.root, 1, subset),
        run_measurement("naive", layout.root, args.jobs, subset),
        run_measurement("floor", layout.root, args.jobs, subset),
        measure_gzip_t(files, args.jobs),
    ]
    print_table(rows, quick)
    naive1, naive_n, floor, gzip_t = rows[4], rows[5], rows[6], rows[7]
    ratio = naive1.wall_s / quick.wall_s
    print(f"naive (1 proc) / quick (jobs={args.jobs}):      {ratio:.2f}  (target >= {TARGET_RATIO:g})")
    print(f"naive ({args.jobs} proc) / quick (jobs={args.jobs}):      {naive_n.wall_s / quick.wall_s:.2f}")
    print(f"quick (jobs={args.jobs}) / floor ({args.jobs} proc):       wall {quick.wall_s / floor.wall_s:.2f}, "
          f"CPU {quick.cpu_s / floor.cpu_s:.2f}")
    print(f"quick through a cold cache / quick:     {cold.wall_s / quick.wall_s:.2f}; warm re-run / quick: "
          f"{warm.wall_s / quick.wall_s:.2f}")
    print(f"gzip -t (-P {args.jobs}) / quick (jobs={args.jobs}):      {gzip_t.wall_s / quick.wall_s:.2f}")
    print(f"machine load average (1, 5, 15 min) after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"peak RSS of the quick pass (jobs={args.jobs}, main + largest worker): {quick.peak_rss_mb:.0f} MB")
    failures = [f"{row.name} did not come out clean ({row.note})" for row in rows if not row.ok]
    failures += [f"{row.name} read {row.files} files, the layout has {layout.files}"
                 for row in rows if row.files != layout.files]
    if ratio < TARGET_RATIO:
        failures.append(f"quick pass misses the target: naive/quick = {ratio:.2f} < {TARGET_RATIO:g}")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
