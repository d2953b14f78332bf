"""Deep-pass benchmark: tsqa's deep pass against the libdeflate floor, gzip -t and a hand-written nibabel loop."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import resource
import shutil
import statistics
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
SHAPE = (240, 200, 240)
LAYOUT_VERSION = 3  # 3: the phantom's vertebrae sized by level, its shoulder girdle off the ribs
TARGET_FLOOR_RATIO = 4.0
TARGET_NAIVE_SPEEDUP = 20.0
TARGET_PEAK_MB = 1024.0
TARGET_ZIP_RATIO = 1.3  # the deep pass on the release's zip archive, against the folder's
TARGET_WARM_SHARE = 0.05  # a warm re-run through the fact cache, against the cold run
TARGET_MARGINAL_RATIO = 1.5  # the deep pass's marginal cost per case, against the floor's
TARGET_ONE_CASE_S = 0.8
TARGET_CACHE_PEAK_MB = 500.0
ZIP_METHODS = ("stored", "deflated")
# The phantom's body fills the grid across, but its height along the grid is the field of view's share of the body:
# 36 cm over the upper abdomen (17% of the phantom's height) gives 41 non-empty masks (the real example case has 40)
# and a liver of about 1.5 L. Its vertebrae, sized by level, reach 29 mL (L5), about half of real ones: the
# phantom's spine shares its height with 26 levels.
FIELD_OF_VIEW = (0.46, 0.63)
STUDY_TYPE = "ct abdomen"


@dataclass(frozen=True)
class Release:
    """A built benchmark release: where it is, its case folders and its NIfTI files."""

    root: Path
    cases: list[str]
    files: list[Path]

    @property
    def megabytes(self) -> float:
        return sum(p.stat().st_size for p in self.files) / 1e6


@dataclass(frozen=True)
class Timing:
    """One measured method: what ran, with how many processes, on how many cases, how long, and its peak memory."""

    name: str
    processes: int
    cases: int
    wall_s: float
    cpu_s: float
    parent_rss_mb: float
    worker_rss_mb: float
    ok: bool
    note: str = ""

    @property
    def per_case_s(self) -> float:
        """Wall time per case at this many processes: the throughput a user sees, comparable across methods."""
        return self.wall_s / self.cases

    @property
    def cpu_per_case_s(self) -> float:
        return self.cpu_s / self.cases

    @property
    def peak_mb(self) -> float:
        """A bound on the memory the run held at once: the parent plus every worker at its own peak."""
        return self.parent_rss_mb + self.processes * self.worker_rss_mb


def link_tree(source: Path, target: Path) -> None:
    """The folder `source` again at `target`, its files hard links (no bytes copied)."""
    for path in sorted(source.rglob("*")):
        linked = target / path.relative_to(source)
        if path.is_dir():
            linked.mkdir(parents=True, exist_ok=True)
        else:
            linked.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, linked)


def nifti_files(root: Path) -> list[Path]:
    return sorted(root.glob("s*/ct.nii.gz")) + sorted(root.glob("s*/segmentations/*.nii.gz"))


def plan_release(spec: ReleaseSpec, cases: int, seed: int) -> list[tuple[CasePlan, Grid]]:
    """qa.synth's cases, all over the same field of view of the phantom, on the benchmark's grid."""
    from qa.synth.phantom import Region
    from qa.synth.sample import default_grid, plan_case

    region = Region(STUDY_TYPE, *FIELD_OF_VIEW)
    plans = [dataclasses.replace(plan_case(spec, seed, index), region=region) for index in range(cases)]
    return [(plan, default_grid(spec, plan, SHAPE)) for plan in plans]


def build_release(workdir: Path, cases: int, processes: int, seed: int = 0) -> Release:
    """The benchmark release under workdir, built once with qa.synth and reused while its marker says it is complete."""
    from qa.rules.spec import load_spec
    from qa.synth.sample import write_cases, write_meta

    spec = load_spec(SPEC_NAME)
    root = workdir / f"deep-v2-{cases}-cases"
    marker = workdir / f"deep-v2-{cases}-cases.json"
    expected = {"version": LAYOUT_VERSION, "cases": cases, "seed": seed, "shape": list(SHAPE),
                "field_of_view": list(FIELD_OF_VIEW), "files": cases * (1 + len(spec.classes))}
    if not (root.is_dir() and marker.is_file() and json.loads(marker.read_text()) == expected):
        if root.exists():
            shutil.rmtree(root)
        marker.unlink(missing_ok=True)
        root.mkdir(parents=True)
        planned = plan_release(spec, cases, seed)
        write_meta(root, spec, [plan for plan, _ in planned])
        # one case a task, so that progress shows as each case is written
        parts = [[entry] for entry in planned]
        with multiprocessing.Pool(processes) as pool:
            for number, written in enumerate(pool.imap(functools.partial(write_cases, root, spec), parts), start=1):
                print(f"  built {written[0]} ({number}/{cases})", flush=True)
        marker.write_text(json.dumps(expected))
    return Release(root, case_dirs(root), nifti_files(root))


def build_zips(release: Release) -> dict[str, Path]:
    """The release as zip archives beside it (no top folder), stored and deflated, written by qa.synth.archive as
    `zip -r` would; rebuilt when older than the release's marker."""
    from qa.synth.archive import zip_release

    marker = release.root.with_suffix(".json")
    zips = {}
    for method in ZIP_METHODS:
        path = release.root.with_name(f"{release.root.name}-{method}.zip")
        if not path.is_file() or path.stat().st_mtime < marker.stat().st_mtime:
            clock = time.perf_counter()
            zip_release(release.root, path, method=method)
            print(f"  zipped ({method}) in {time.perf_counter() - clock:.1f} s: {path.stat().st_size / 1e6:.0f} MB")
        zips[method] = path
    return zips


def describe_case(root: Path, case: str) -> str:
    """How close one case comes to a real one: its non-empty masks, a few of their volumes, the CT's compression."""
    image = nib.load(root / case / "ct.nii.gz")
    voxel_ml = float(np.prod(image.header.get_zooms()[:3])) / 1000
    ratio = np.prod(image.shape) * image.get_data_dtype().itemsize / (root / case / "ct.nii.gz").stat().st_size
    volumes: dict[str, float] = {}
    counted: dict[bytes, int] = {}
    for path in sorted((root / case / "segmentations").iterdir()):
        raw = path.read_bytes()
        if raw not in counted:  # the empty masks are one file copied, counted once
            counted[raw] = int(np.count_nonzero(np.asarray(nib.load(path).dataobj)))
        if counted[raw]:
            volumes[path.name.removesuffix(".nii.gz")] = counted[raw] * voxel_ml
    vertebrae = [volumes[name] for name in volumes if name.startswith("vertebrae_")]
    return (f"{case}: {len(volumes)} non-empty masks; liver {volumes.get('liver', 0) / 1000:.2f} L, "
            f"spleen {volumes.get('spleen', 0):.0f} mL, kidney_right {volumes.get('kidney_right', 0):.0f} mL, "
            f"{len(vertebrae)} vertebrae up to {max(vertebrae, default=0):.0f} mL; CT packed {ratio:.2f}:1")


def warm_up(files: list[Path]) -> int:
    """Read every byte once so that every measured method starts from the same warm page cache."""
    return sum(len(path.read_bytes()) for path in files)


def _own_peak_kib() -> int:
    """This process's peak RSS. Linux carries ru_maxrss across exec, so a fresh interpreter would report its
    launcher's peak; VmHWM belongs to this process image alone."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


def _rss_mb() -> tuple[float, float]:
    """This process's peak RSS and the largest waited-for descendant's, in MB (ru_maxrss is in KiB on Linux)."""
    return _own_peak_kib() / 1024, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU time of this process and its waited-for descendants: steadier than wall time on a busy machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timing(name: str, processes: int, cases: int, wall: float, cpu: float, ok: bool, note: str) -> Timing:
    parent, worker = _rss_mb()
    return Timing(name, processes, cases, wall, _cpu_s() - cpu, parent, worker, ok, note)


def reap_workers() -> None:
    """tsqa's workers are children of multiprocessing's fork server, which would outlive the measurement until this
    process exits: stop it and wait for it, so that RUSAGE_CHILDREN counts the workers it waited for (their CPU time
    and peak memory), as it counts the children of a pool forked from this process."""
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # private, but the only way to wait for the server


def measure_deep(root: Path, jobs: int) -> Timing:
    """tsqa's deep pass through the pipeline, checked as a subset (a few cases cannot have the release's split sizes);
    clean means no finding at warning or above, as `tsqa check --subset --fail-on warning` exits 0."""
    from qa.app.pipeline import run_check
    from qa.rules.spec import load_spec

    spec = load_spec(SPEC_NAME)
    clock, cpu = time.perf_counter(), _cpu_s()
    report = run_check(root, spec, "benchmark", mode="deep", jobs=jobs, subset=True, fail_on="warning")
    wall = time.perf_counter() - clock
    reap_workers()
    return _timing(f"tsqa deep (jobs={jobs})", jobs, len(report.cases), wall, cpu, report.summary.passed,
                   f"{len(report.findings)} findings {json.dumps(report.summary.by_code)}")


def measure_deep_cached(root: Path, jobs: int, cache: Path, verify: bool) -> Timing:
    """tsqa's deep pass through a fact cache folder (`--cache DIR`), with or without --verify-cache: cold when the
    folder is empty, warm when a run before filled it."""
    from qa.app.pipeline import run_check
    from qa.rules.spec import load_spec
    from qa.scan.cache import FactCache

    spec = load_spec(SPEC_NAME)
    clock, cpu = time.perf_counter(), _cpu_s()
    with FactCache.open(cache) as facts:
        report = run_check(root, spec, "benchmark", mode="deep", jobs=jobs, subset=True, fail_on="warning",
                           cache=facts, verify_cache=verify)
    wall = time.perf_counter() - clock
    reap_workers()
    served = report.cache.files if report.cache is not None else 0
    return _timing(f"tsqa deep, cache{', verified' if verify else ''} (jobs={jobs})", jobs, len(report.cases), wall,
                   cpu, report.summary.passed, f"{served} files from the cache")


def part_release(root: Path, cases: list[str], name: str) -> Path:
    """A release of some of the cases beside `root`, made of hard links (no bytes copied), with the full meta.csv."""
    part = root.parent / name
    if not part.is_dir():
        for case in cases:
            link_tree(root / case, part / case)
        os.link(root / "meta.csv", part / "meta.csv")
    return part


def cache_and_marginal_rows(root: Path, cases: list[str], jobs: int, repeats: int) -> list[str]:
    """The fact cache's and the deep pass's fixed and marginal costs, each row in a fresh interpreter: a cold run
    through an empty cache and the warm re-run (with and without --verify-cache), on all cases and on 12 (the cost a
    case, as for the deep pass), the deep pass and the floor on 12 and on all cases (marginal: the difference, so
    start-up does not count) and on one case (the fixed cost). The rows run
    in turn `repeats` times, so that each saw the same load, unwatched (sampling /proc every 5 ms takes a share of
    this machine's two cores), and each row's fastest run is kept: the minimum of a few runs is the least disturbed.
    The ratios within each round are printed too, to show how far the load moved them. Peak memory is taken from one
    more deep run, watched."""
    half = part_release(root, cases[: len(cases) // 2], f"{root.name}-half")
    one = part_release(root, cases[:1], f"{root.name}-one")
    runs: dict[str, list[Timing]] = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="tsqa-bench-cache-") as folder:
            kind = f"cache:{folder}"
            for name, measured in (("cold", kind), ("warm", kind), ("warm, verified", f"{kind}:verify")):
                runs.setdefault(name, []).append(run_measurement(measured, root, jobs, 1, watch=False))
            for name in ("cold, half", "warm, half"):  # the half release's entries beside the whole one's
                runs.setdefault(name, []).append(run_measurement(kind, half, jobs, 1, watch=False))
        for name, kind, release in (("deep", "deep", root), ("deep, half", "deep", half), ("deep, one", "deep", one),
                                    ("floor", "floor", root), ("floor, half", "floor", half)):
            runs.setdefault(name, []).append(run_measurement(kind, release, jobs, 1, watch=False))
    best = {name: min(timings, key=lambda t: t.wall_s) for name, timings in runs.items()}
    watched = run_measurement("deep", root, jobs, 1)
    print(f"fastest of {repeats} interleaved runs each, unwatched; peak memory from one more deep run, watched:")
    print_table([*best.values(), watched], best["deep"])
    for name, timings in runs.items():
        print(f"  {name + ':':<16} walls {', '.join(f'{t.wall_s:.2f}' for t in timings)} s")
    extra = len(cases) - len(cases) // 2
    each = [((deep.wall_s - half.wall_s) / (floor.wall_s - floor_half.wall_s), warm_run.wall_s / cold_run.wall_s)
            for deep, half, floor, floor_half, warm_run, cold_run in zip(
                runs["deep"], runs["deep, half"], runs["floor"], runs["floor, half"], runs["warm"], runs["cold"])]
    print(f"  within each round: marginal ratio {', '.join(f'{m:.2f}' for m, _ in each)} "
          f"(median {statistics.median(m for m, _ in each):.2f}); warm / cold "
          f"{', '.join(f'{w:.1%}' for _, w in each)} (median {statistics.median(w for _, w in each):.1%})")
    cold, warm, warm_verified = best["cold"], best["warm"], best["warm, verified"]
    deep_all, deep_half, deep_one = best["deep"], best["deep, half"], best["deep, one"]
    marginal = (deep_all.wall_s - deep_half.wall_s) / extra
    floor_marginal = (best["floor"].wall_s - best["floor, half"].wall_s) / extra
    verify_share = (warm_verified.wall_s - warm.wall_s) / cold.wall_s
    warm_per_case = (warm.wall_s - best["warm, half"].wall_s) / (cold.wall_s - best["cold, half"].wall_s)
    lines = [f"warm deep re-run / cold deep run:  {warm_verified.wall_s / cold.wall_s:.1%} with --verify-cache, "
             f"{warm.wall_s / cold.wall_s:.1%} without  (target <= {TARGET_WARM_SHARE:.0%})",
             f"warm / cold per case, {len(cases)} minus {len(cases) // 2} cases (start-up and fixed costs left out, as "
             f"for the marginal cost): {warm_per_case:.1%}",
             f"--verify-cache costs {verify_share:.2%} of the cold deep run (it would be the deep default below 1%)",
             f"deep marginal cost: {marginal:.3f} s/case against the floor's {floor_marginal:.3f} "
             f"({marginal / floor_marginal:.2f}x; target <= {TARGET_MARGINAL_RATIO:g}x), {len(cases)} minus "
             f"{len(cases) // 2} cases",
             f"deep fixed cost, one case: {deep_one.wall_s:.2f} s  (target < {TARGET_ONE_CASE_S:g} s)",
             f"deep peak memory: {watched.peak_mb:.0f} MB  (target < {TARGET_CACHE_PEAK_MB:g})"]
    for line in lines:
        print(line)
    missed = []
    if warm.wall_s / cold.wall_s > TARGET_WARM_SHARE:  # the default run: --verify-cache is off unless asked for
        missed.append(f"warm deep re-run is {warm.wall_s / cold.wall_s:.1%} of the cold run")
    if marginal > TARGET_MARGINAL_RATIO * floor_marginal:
        missed.append(f"deep marginal cost {marginal / floor_marginal:.2f}x the floor's")
    if deep_one.wall_s >= TARGET_ONE_CASE_S:
        missed.append(f"one-case deep run {deep_one.wall_s:.2f} s")
    if watched.peak_mb >= TARGET_CACHE_PEAK_MB:
        missed.append(f"deep peak memory {watched.peak_mb:.0f} MB")
    return missed


def measure_deep_zip(archive: Path, jobs: int, checksum: bool = True) -> Timing:
    """tsqa's deep pass on the release's zip archive, read in place (`tsqa check FILE.zip`), with the archive's MD5
    computed in its own process beside the scan unless `checksum` is False (--no-checksum)."""
    from qa.app.pipeline import run_check
    from qa.rules.spec import load_spec
    from qa.source.zip import ZipSource

    spec = load_spec(SPEC_NAME)
    clock, cpu = time.perf_counter(), _cpu_s()
    source = ZipSource(archive, spec.case_pattern)
    report = run_check(source, spec, "benchmark", mode="deep", jobs=jobs, subset=True, fail_on="warning",
                       checksum=checksum)
    wall = time.perf_counter() - clock
    reap_workers()
    method = "stored" if source.layout.stored >= source.layout.deflated else "deflated"
    md5 = ", MD5" if checksum else ", no MD5"
    return _timing(f"tsqa deep, {method} zip{md5} (jobs={jobs})", jobs, len(report.cases), wall, cpu,
                   report.summary.passed, f"{len(report.findings)} findings {json.dumps(report.summary.by_code)}")


def floor_case(case: str, distinct: bool = False) -> int:
    """The least a deep pass must do: read every file of a case and inflate it with libdeflate (CRC32 and length).
    With `distinct`, a file byte-identical to one already inflated in the case is read but not inflated again."""
    import deflate

    total = 0
    seen: set[bytes] = set()
    for path in [Path(case, "ct.nii.gz"), *sorted(Path(case, "segmentations").iterdir())]:
        raw = path.read_bytes()
        if distinct and raw in seen:
            continue
        seen.add(raw)
        total += len(deflate.gzip_decompress(raw))
    return total


def _pool_over_cases(function, cases: list[str], processes: int) -> list:
    with multiprocessing.Pool(processes) as pool:
        return pool.map(function, cases, chunksize=1)


def measure_floor(root: Path, processes: int, distinct: bool = False) -> Timing:
    cases = [str(root / c) for c in case_dirs(root)]
    clock, cpu = time.perf_counter(), _cpu_s()
    inflated = sum(_pool_over_cases(functools.partial(floor_case, distinct=distinct), cases, processes))
    wall = time.perf_counter() - clock
    name = f"floor{', distinct' if distinct else ''}: libdeflate ({processes} proc)"
    return _timing(name, processes, len(cases), wall, cpu, True, f"{inflated / 1e9:.1f} GB inflated")


def measure_gzip_t(root: Path, processes: int) -> Timing:
    """gzip -t decompresses and verifies whole files, one xargs batch per case."""
    cases = case_dirs(root)
    names = b"".join(f"{c}/ct.nii.gz {c}/segmentations/*.nii.gz\n".encode() for c in cases)
    clock, cpu = time.perf_counter(), _cpu_s()
    # xargs appends one case's two patterns to the script; the shell expands the glob inside the release root ($0).
    done = subprocess.run(["xargs", "-P", str(processes), "-L", "1", "sh", "-c", 'cd "$0" && gzip -t $*', str(root)],
                          input=names, capture_output=True, check=False)
    wall = time.perf_counter() - clock
    return _timing(f"gzip -t (xargs -P {processes})", processes, len(cases), wall, cpu, done.returncode == 0,
                   f"exit {done.returncode}")


def naive_case(case: str) -> int:
    """What people write by hand: get_fdata() of the CT and every mask, compare shape and affine, check the values
    are 0/1 with np.unique, and sum the masks to find voxels claimed twice; returns the number of problems found."""
    ct = nib.load(os.path.join(case, "ct.nii.gz"))
    image = ct.get_fdata()
    total = np.zeros(ct.shape)
    problems = 0
    seg = os.path.join(case, "segmentations")
    for name in sorted(os.listdir(seg)):
        mask = nib.load(os.path.join(seg, name))
        data = mask.get_fdata()
        if data.shape != image.shape or not np.allclose(mask.affine, ct.affine):
            problems += 1
            continue
        if not set(np.unique(data).tolist()) <= {0.0, 1.0}:
            problems += 1
        total += data
    return problems + int(np.count_nonzero(total > 1))


def measure_naive(root: Path, processes: int, cases: int) -> Timing:
    chosen = [str(root / c) for c in case_dirs(root)[:cases]]
    clock, cpu = time.perf_counter(), _cpu_s()
    problems = sum(_pool_over_cases(naive_case, chosen, processes))
    wall = time.perf_counter() - clock
    return _timing(f"naive get_fdata loop ({processes} proc)", processes, len(chosen), wall, cpu, problems == 0,
                   f"{problems} problems")


@dataclass(frozen=True)
class Fact:
    """A claim about where deep-pass time goes, tested on one case: a slower and a faster way, best of a few runs."""

    claim: str
    slow: str
    slow_s: float
    fast: str
    fast_s: float

    @property
    def ratio(self) -> float:
        return self.slow_s / self.fast_s


def _best(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        clock = time.perf_counter()
        function()
        times.append(time.perf_counter() - clock)
    return min(times)


def _each(function, items: list) -> None:
    """Call function on every item, dropping each result before the next (what a streaming pass does)."""
    for item in items:
        function(item)


def _keep_all(function, items: list) -> int:
    """Call function on every item, keeping every result alive: each call gets memory the process never had."""
    return len([function(item) for item in items])


def measure_facts(root: Path, case: str) -> list[Fact]:
    """The known facts the deep pass is built on, measured on the distinct files of one case."""
    import zlib

    import deflate

    ct_path = root / case / "ct.nii.gz"
    ct = ct_path.read_bytes()
    distinct = {p.read_bytes(): p for p in sorted((root / case / "segmentations").iterdir())}
    blobs, paths = list(distinct), list(distinct.values())
    inflate_ct = _best(lambda: deflate.gzip_decompress(ct))
    inflate_masks = _best(lambda: _each(deflate.gzip_decompress, blobs))
    some = blobs[:20]
    return [
        Fact("libdeflate ~5x faster than zlib (CT)", "zlib", _best(lambda: zlib.decompress(ct, wbits=31)),
             "libdeflate", inflate_ct),
        Fact(f"libdeflate ~5x faster than zlib ({len(blobs)} distinct masks)", "zlib",
             _best(lambda: _each(lambda b: zlib.decompress(b, wbits=31), blobs)), "libdeflate", inflate_masks),
        Fact("get_fdata() ~25x the decode (CT)", "nib get_fdata", _best(lambda: nib.load(ct_path).get_fdata(), 1),
             "libdeflate", inflate_ct),
        Fact(f"get_fdata() ~25x the decode ({len(blobs)} distinct masks)", "nib get_fdata",
             _best(lambda: _each(lambda p: nib.load(p).get_fdata(), paths), 1), "libdeflate", inflate_masks),
        Fact(f"nibabel's own decode ({len(blobs)} distinct masks)", "nib dataobj",
             _best(lambda: _each(lambda p: np.asanyarray(nib.load(p).dataobj), paths), 1), "libdeflate", inflate_masks),
        Fact(f"fresh memory per mask slower than reused ({len(some)} masks)", "all kept",
             _best(lambda: _keep_all(deflate.gzip_decompress, some)), "each freed",
             _best(lambda: _each(deflate.gzip_decompress, some))),
    ]


def print_facts(facts: list[Fact]) -> None:
    print(f"{'known fact, tested on one case':<52} {'slower way':>14} {'s':>7} {'faster way':>11} {'s':>7} "
          f"{'ratio':>6}")
    for fact in facts:
        print(f"{fact.claim:<52} {fact.slow:>14} {fact.slow_s:>7.3f} {fact.fast:>11} {fact.fast_s:>7.3f} "
              f"{fact.ratio:>6.1f}")


def case_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("s"))


def _run_fresh(kind: str, root: Path, jobs: int, naive_cases: int, watch: bool = True) -> object:
    """One measurement in a fresh interpreter, so that its peak RSS and its workers' are its own; its JSON result.
    tsqa's workers' peak is watched from /proc (see peaks.py): their ru_maxrss would be their launcher's, so unwatched
    it is not known (NaN)."""
    command = [sys.executable, __file__, "--measure", kind, "--root", str(root), "--jobs", str(jobs),
               "--naive-cases", str(naive_cases)]
    watched = run_watched(command) if watch else None
    done = watched.done if watched else subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement {kind} failed (exit {done.returncode}):\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if kind in ("deep", *ZIP_KINDS) or kind.startswith("cache:"):
        result["worker_rss_mb"] = watched.largest_other_mib if watched else math.nan
    return result


def run_measurement(kind: str, root: Path, jobs: int, naive_cases: int, watch: bool = True) -> Timing:
    return Timing(**_run_fresh(kind, root, jobs, naive_cases, watch))


def _measure_only(args: argparse.Namespace) -> int:
    measures = {
        "deep": lambda: measure_deep(args.root, args.jobs),
        "floor": lambda: measure_floor(args.root, args.jobs),
        "floor-distinct": lambda: measure_floor(args.root, args.jobs, distinct=True),
        "gzip": lambda: measure_gzip_t(args.root, args.jobs),
        "naive": lambda: measure_naive(args.root, args.jobs, args.naive_cases),
        "zip": lambda: measure_deep_zip(args.root, args.jobs),
        "zip-no-checksum": lambda: measure_deep_zip(args.root, args.jobs, checksum=False),
    }
    if args.measure.startswith("cache:"):
        folder, _, verify = args.measure.removeprefix("cache:").partition(":")
        print(json.dumps(asdict(measure_deep_cached(args.root, args.jobs, Path(folder), verify == "verify"))))
        return 0
    if args.measure == "facts":
        print(json.dumps([asdict(fact) for fact in measure_facts(args.root, case_dirs(args.root)[0])]))
    else:
        print(json.dumps(asdict(measures[args.measure]())))
    return 0


def print_table(rows: list[Timing], deep: Timing) -> None:
    print(f"{'method':<42} {'cases':>5} {'wall s':>8} {'s/case':>8} {'x deep':>7} {'CPU s/case':>10} {'x deep':>7} "
          f"{'parent MB':>9} {'worker MB':>9} {'peak MB':>8}  ok  note")
    for row in rows:
        print(f"{row.name:<42} {row.cases:>5} {row.wall_s:>8.2f} {row.per_case_s:>8.3f} "
              f"{row.per_case_s / deep.per_case_s:>7.2f} {row.cpu_per_case_s:>10.3f} "
              f"{row.cpu_per_case_s / deep.cpu_per_case_s:>7.2f} {row.parent_rss_mb:>9.0f} {_mb(row.worker_rss_mb):>9} "
              f"{_mb(row.peak_mb):>8}  {'yes' if row.ok else 'NO':<3} {row.note}")


def _mb(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def _ratios(slow: Timing, fast: Timing) -> str:
    return f"wall {slow.per_case_s / fast.per_case_s:.2f}, CPU {slow.cpu_per_case_s / fast.cpu_per_case_s:.2f}"


def judge_targets(deep: Timing, floor: Timing, distinct_floor: Timing, gzip_t: Timing, naive: Timing) -> list[str]:
    """Print the ratios the targets are about (per case, so runs over different case counts compare) and return
    the targets missed. The targets are on wall time; CPU time is printed beside it because the machine is shared."""
    floor_ratio = deep.per_case_s / floor.per_case_s
    speedup = naive.per_case_s / deep.per_case_s
    print(f"deep / floor:                  {_ratios(deep, floor)}  (target: wall <= {TARGET_FLOOR_RATIO:g})")
    print(f"deep / floor, distinct files:  {_ratios(deep, distinct_floor)}  (what measuring costs beyond inflating)")
    print(f"naive / deep:                  {_ratios(naive, deep)}  (target: wall >= {TARGET_NAIVE_SPEEDUP:g})")
    print(f"gzip -t / deep:                {_ratios(gzip_t, deep)}")
    print(f"deep peak memory: {deep.peak_mb:.0f} MB = parent {deep.parent_rss_mb:.0f} + {deep.processes} x worker "
          f"{deep.worker_rss_mb:.0f}  (target < {TARGET_PEAK_MB:g})")
    missed = []
    if floor_ratio > TARGET_FLOOR_RATIO:
        missed.append(f"deep pass is {floor_ratio:.2f}x the floor, more than {TARGET_FLOOR_RATIO:g}x")
    if speedup < TARGET_NAIVE_SPEEDUP:
        missed.append(f"deep pass is only {speedup:.1f}x faster per case than the naive loop")
    if deep.peak_mb >= TARGET_PEAK_MB:
        missed.append(f"deep pass peak memory {deep.peak_mb:.0f} MB, not under {TARGET_PEAK_MB:g} MB")
    return missed


@dataclass(frozen=True)
class ZipComparison:
    """The folder's deep pass and the zip rows, run in turn `repeats` times so that each saw the same load; per
    method the run of median wall time, and every run's wall time."""

    medians: list[Timing]
    walls: list[list[float]]


ZIP_KINDS = ("zip", "zip-no-checksum")


def compare_zips(root: Path, zips: dict[str, Path], jobs: int, repeats: int) -> ZipComparison:
    """The folder's deep pass against the same release's zip archives, interleaved: on a shared machine the load moves
    between rows run one after the other, so each method is run `repeats` times in turn and its median run kept."""
    methods = [("deep", root), *((kind, zips[method]) for method in ZIP_METHODS for kind in ZIP_KINDS)]
    runs: list[list[Timing]] = [[] for _ in methods]
    for _ in range(repeats):
        for done, (kind, path) in zip(runs, methods):
            done.append(run_measurement(kind, path, jobs, 1))
    medians = [sorted(done, key=lambda t: t.wall_s)[len(done) // 2] for done in runs]
    return ZipComparison(medians, [[t.wall_s for t in done] for done in runs])


def judge_zip_targets(zipped: ZipComparison) -> list[str]:
    """The zip rows against the folder's deep pass of the same interleaved runs: the target is on the default run,
    the MD5 computed beside the scan."""
    folder, *rows = zipped.medians
    print(f"zip rows against the folder's deep pass, medians of {len(zipped.walls[0])} interleaved runs each "
          f"(folder walls: {', '.join(f'{w:.2f}' for w in zipped.walls[0])} s):")
    missed = []
    for row, walls in zip(rows, zipped.walls[1:]):
        ratio = row.per_case_s / folder.per_case_s
        target = "" if "no MD5" in row.name else f"  (target: wall <= {TARGET_ZIP_RATIO:g})"
        print(f"  {row.name.split(' (')[0] + ' / folder:':<42} {_ratios(row, folder)}{target}; "
              f"walls {', '.join(f'{w:.2f}' for w in walls)} s")
        if target and ratio > TARGET_ZIP_RATIO:
            missed.append(f"{row.name} is {ratio:.2f}x the folder's deep pass, more than {TARGET_ZIP_RATIO:g}x")
    return missed


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tsqa-bench",
                        help="where the benchmark release is built and kept for reuse (outside the repo)")
    parser.add_argument("--cases", type=int, default=24, help="number of cases (default 24)")
    parser.add_argument("--jobs", type=int, default=2, help="processes for every method (default 2)")
    parser.add_argument("--zip-repeats", type=int, default=3,
                        help="runs of the folder's deep pass and of each zip row, in turn (default 3; medians kept)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each fact cache and marginal cost row, in turn (default 5; fastest kept)")
    parser.add_argument("--naive-cases", type=int,
                        help="cases the naive loop runs on (default: one per process; it takes tens of seconds a case)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # deep, floor, ..., cache:FOLDER[:verify]
    parser.add_argument("--cache-only", action="store_true",
                        help="only the fact cache's rows and the deep pass's marginal and fixed costs")
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.measure is not None:
        return _measure_only(args)
    args.naive_cases = args.naive_cases or args.jobs
    if not 1 <= args.naive_cases <= args.cases <= 9999:
        raise SystemExit("need 1 <= --naive-cases <= --cases <= 9999")
    clock = time.perf_counter()
    release = build_release(args.workdir.resolve(), args.cases, args.jobs)
    print(f"release: {release.root} ({len(release.cases)} cases, {len(release.files)} NIfTI files, "
          f"{release.megabytes:.0f} MB), ready in {time.perf_counter() - clock:.1f} s")
    print(f"case {describe_case(release.root, release.cases[0])}")
    zips = build_zips(release)
    print(f"warm-up: read {warm_up([*release.files, *zips.values()]) / 1e6:.0f} MB (untimed)")
    print(f"load before: {_load()} (1/5/15 min, {os.cpu_count()} CPUs)")
    cache_missed = cache_and_marginal_rows(release.root, release.cases, args.jobs, args.repeats)
    if args.cache_only:
        print(f"load after:  {_load()} (1/5/15 min)")
        for failure in cache_missed:
            print(f"FAIL: {failure}", file=sys.stderr)
        return 1 if cache_missed else 0
    kinds = ("deep", "floor", "floor-distinct", "gzip", "naive")
    rows = [run_measurement(kind, release.root, args.jobs, args.naive_cases) for kind in kinds]
    zipped = compare_zips(release.root, zips, args.jobs, args.zip_repeats)
    print(f"load after:  {_load()} (1/5/15 min)")
    facts = [Fact(**fact) for fact in _run_fresh("facts", release.root, 1, 1)]
    deep, floor, distinct_floor, gzip_t, naive = rows
    print_table([*rows, *zipped.medians[1:]], deep)
    print("(peak MB = parent + processes x largest worker; gzip's worker MB includes its launcher's, which Linux's "
          "ru_maxrss carries across exec)")
    print_facts(facts)
    failures = [f"{row.name} did not come out clean ({row.note})" for row in [*rows, *zipped.medians] if not row.ok]
    failures += judge_targets(deep, floor, distinct_floor, gzip_t, naive)
    failures += judge_zip_targets(zipped)
    failures += cache_missed
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
