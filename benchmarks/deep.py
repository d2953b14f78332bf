"""Deep-pass benchmark: tsqa's deep pass against the libdeflate floor, gzip -t and a hand-written nibabel loop."""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from peaks import run_watched

SPEC_NAME = "totalsegmentator-v2"
SHAPE = (240, 200, 240)
SPACING_MM = 1.5
LAYOUT_VERSION = 1
TARGET_FLOOR_RATIO = 4.0
TARGET_NAIVE_SPEEDUP = 20.0
TARGET_PEAK_MB = 1024.0
COLUMNS = ["image_id", "age", "gender", "institute", "study_type", "split", "manufacturer", "scanner_model", "kvp",
           "pathology", "pathology_location"]
SPLITS = ("train", "train", "train", "val", "test")

# HU of the tissues a synthetic abdomen is made of; CT noise is added on top.
OUTSIDE_FOV_HU, AIR_HU, FAT_HU, SOFT_HU, LUNG_HU = -1024, -1000, -100, 40, -850
BODY_SEMI_AXES_MM = (165.0, 120.0)
SUBCUTANEOUS_FAT_MM = 20.0
FOV_RADIUS_MM = 175.0
NOISE_HU = 14.0


@dataclass(frozen=True)
class Organ:
    """One class of the synthetic abdomen: an ellipsoid (or, with `ring`, a sector of an elliptic ring around the
    body's axis) in mm from the grid's centre (x to the patient's right is +, y anterior +, z cranial +)."""

    name: str
    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    hu: int
    ring: tuple[float, float, float] | None = None  # (thickness mm, from angle, to angle); angle 0 = anterior


def _vertebra(name: str, z: float) -> Organ:
    return Organ(name, (0.0, -55.0, z), (28.0, 24.0, 18.0), 250)


def _rib(side: str, number: int) -> Organ:
    z = 165.0 - 24.0 * (number - 7)
    sign = 1.0 if side == "right" else -1.0
    return Organ(f"rib_{side}_{number}", (0.0, -10.0, z), (158.0, 113.0, 4.0), 450,
                 ring=(8.0, (0.45 if sign > 0 else -2.6), (2.6 if sign > 0 else -0.45)))


# The 40 classes that are not empty in the real example case (an abdominal CT), at the volumes a full 36 cm abdominal
# field of view gives them (liver about 1.5 L, a vertebra about 50 mL); the other 77 classes stay empty, as there.
ORGANS = (
    Organ("spinal_cord", (0.0, -82.0, 0.0), (6.0, 6.0, 200.0), 30),
    _vertebra("vertebrae_T11", 160.0), _vertebra("vertebrae_T12", 124.0), _vertebra("vertebrae_L1", 88.0),
    _vertebra("vertebrae_L2", 52.0),
    Organ("aorta", (-20.0, -32.0, 40.0), (13.0, 13.0, 140.0), 180),
    Organ("inferior_vena_cava", (25.0, -30.0, 40.0), (11.0, 11.0, 140.0), 120),
    Organ("adrenal_gland_right", (40.0, -25.0, 72.0), (10.0, 6.0, 24.0), 30),
    Organ("adrenal_gland_left", (-42.0, -25.0, 75.0), (10.0, 6.0, 24.0), 30),
    Organ("portal_vein_and_splenic_vein", (0.0, 0.0, 75.0), (60.0, 8.0, 17.0), 150),
    Organ("liver", (65.0, 15.0, 95.0), (85.0, 70.0, 60.0), 60),
    Organ("spleen", (-90.0, -30.0, 100.0), (35.0, 50.0, 34.0), 45),
    Organ("kidney_right", (65.0, -50.0, 25.0), (30.0, 27.0, 50.0), 150),
    Organ("kidney_left", (-65.0, -50.0, 35.0), (30.0, 27.0, 50.0), 150),
    Organ("gallbladder", (45.0, 55.0, 40.0), (18.0, 15.0, 31.0), 10),
    Organ("stomach", (-45.0, 40.0, 110.0), (50.0, 40.0, 42.0), 25),
    Organ("pancreas", (-10.0, 5.0, 45.0), (60.0, 12.0, 26.0), 45),
    Organ("duodenum", (25.0, 15.0, 10.0), (30.0, 15.0, 42.0), 35),
    Organ("small_bowel", (0.0, 50.0, -60.0), (90.0, 50.0, 42.0), 35),
    Organ("colon", (0.0, 20.0, -40.0), (125.0, 85.0, 60.0), 20, ring=(13.0, -2.1, 2.1)),
    Organ("lung_lower_lobe_right", (70.0, -35.0, 175.0), (65.0, 70.0, 30.0), LUNG_HU),
    Organ("lung_lower_lobe_left", (-70.0, -35.0, 175.0), (60.0, 70.0, 30.0), LUNG_HU),
    Organ("lung_upper_lobe_left", (-70.0, 45.0, 178.0), (50.0, 40.0, 14.0), LUNG_HU),
    Organ("autochthon_right", (32.0, -90.0, 0.0), (24.0, 20.0, 175.0), 50),
    Organ("autochthon_left", (-32.0, -90.0, 0.0), (24.0, 20.0, 175.0), 50),
    Organ("iliopsoas_right", (50.0, -45.0, -110.0), (20.0, 20.0, 90.0), 50),
    Organ("iliopsoas_left", (-50.0, -45.0, -110.0), (20.0, 20.0, 90.0), 50),
    *(_rib(side, number) for side in ("right", "left") for number in range(7, 13)),
    Organ("costal_cartilages", (0.0, -10.0, 150.0), (150.0, 110.0, 22.0), 120, ring=(9.0, -0.7, 0.7)),
)


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


def _axes_mm(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(((np.arange(n) - (n - 1) / 2) * SPACING_MM).astype(np.float32) for n in shape)


def _box(axis: np.ndarray, center: float, radius: float) -> slice:
    inside = np.flatnonzero(np.abs(axis - center) <= radius)
    return slice(int(inside[0]), int(inside[-1]) + 1) if inside.size else slice(0, 0)


def _organ_voxels(organ: Organ, axes: tuple[np.ndarray, ...],
                  jitter: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
    """An organ's bounding box on the grid and which voxels of the box it holds."""
    center = np.asarray(organ.center) + jitter
    box = tuple(_box(a, c, r) for a, c, r in zip(axes, center, organ.radii))
    dx, dy, dz = (a[b] - c for a, b, c in zip(axes, box, center))
    rx, ry, rz = organ.radii
    planar = (dx[:, None, None] / rx) ** 2 + (dy[None, :, None] / ry) ** 2
    if organ.ring is None:
        return box, planar + (dz[None, None, :] / rz) ** 2 <= 1
    thickness, start, stop = organ.ring
    inner = (1 - thickness / min(rx, ry)) ** 2
    angle = np.arctan2(dx[:, None, None], dy[None, :, None])  # 0 anterior, + toward the patient's right
    in_sector = (angle >= start) & (angle <= stop)
    return box, (planar <= 1) & (planar >= inner) & in_sector & (np.abs(dz[None, None, :]) <= rz)


def _smooth_field(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A slowly varying field in [-1, 1]: gives the soft tissue its fat streaks and the organs some texture."""
    field = np.zeros(shape, dtype=np.float32)
    for _ in range(4):
        parts = [np.sin(np.linspace(0, rng.uniform(2, 9), n, dtype=np.float32) + rng.uniform(0, 6.3)) for n in shape]
        field += parts[0][:, None, None] * parts[1][None, :, None] * parts[2][None, None, :]
    return field / 4


def synthetic_case(rng: np.random.Generator, shape: tuple[int, int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic abdominal CT in int16 HU and its label map (0 = no class, i = ORGANS[i - 1]), voxel-disjoint."""
    axes = _axes_mm(shape)
    x, y = axes[0][:, None], axes[1][None, :]
    scale = rng.uniform(0.93, 1.07)
    ax, ay = BODY_SEMI_AXES_MM[0] * scale, BODY_SEMI_AXES_MM[1] * scale
    radius = np.sqrt((x / ax) ** 2 + ((y + 10) / ay) ** 2)  # the body outline, the same on every slice
    body = radius < 1
    labels = np.zeros(shape, dtype=np.uint8)
    for index, organ in enumerate(ORGANS, start=1):
        box, inside = _organ_voxels(organ, axes, rng.normal(0, 4, 3))
        free = inside & (labels[box] == 0) & body[box[0], box[1]][:, :, None]
        labels[box][free] = index
    texture = _smooth_field(shape, rng)
    base = np.where(radius < 1 - SUBCUTANEOUS_FAT_MM / min(ax, ay), SOFT_HU, FAT_HU).astype(np.float32)
    ct = np.where(body[:, :, None], base[:, :, None], AIR_HU).astype(np.float32)
    ct = np.where(body[:, :, None] & (texture > 0.35), FAT_HU, ct)
    hu = np.array([0, *(o.hu for o in ORGANS)], dtype=np.float32)
    ct = np.where(labels > 0, hu[labels] + 8 * texture, ct)
    noise = rng.standard_normal(shape, dtype=np.float32)
    ct += noise * np.where(body, NOISE_HU, NOISE_HU / 3)[:, :, None]
    outside_fov = (x**2 + y**2) > FOV_RADIUS_MM**2
    ct[outside_fov] = OUTSIDE_FOV_HU
    return np.clip(np.rint(ct), -1024, 3071).astype(np.int16), labels


def affine_of(case_number: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    affine = np.diag([SPACING_MM, SPACING_MM, SPACING_MM, 1.0])
    affine[:3, 3] = [-(shape[0] - 1) / 2 * SPACING_MM, -(shape[1] - 1) / 2 * SPACING_MM, -400.0 + 3.0 * case_number]
    return affine


def write_case(folder: Path, case_number: int, classes: list[str], seed: int,
               shape: tuple[int, int, int] = SHAPE) -> None:
    """A case as TotalSegmentator writes it with nibabel: int16 CT, one uint8 mask per class, all on one grid."""
    ct, labels = synthetic_case(np.random.default_rng([seed, case_number]), shape)
    affine = affine_of(case_number, shape)
    (folder / "segmentations").mkdir(parents=True)
    nib.save(nib.Nifti1Image(ct, affine), folder / "ct.nii.gz")
    index = {organ.name: i for i, organ in enumerate(ORGANS, start=1)}
    empty: Path | None = None
    for name in classes:
        path = folder / "segmentations" / f"{name}.nii.gz"
        if name in index or empty is None:
            mask = (labels == index[name]).astype(np.uint8) if name in index else np.zeros(shape, dtype=np.uint8)
            nib.save(nib.Nifti1Image(mask, affine), path)
            empty = empty if name in index else path
        else:
            # nibabel writes gzip with mtime 0, so every empty mask of a case is this same file: a copy is faster.
            shutil.copyfile(empty, path)


def meta_csv(cases: list[str]) -> bytes:
    """meta.csv as the v2 release writes it: UTF-8 with BOM, ';'-separated, the 11 v2 columns."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";", lineterminator="\n")
    writer.writerow(COLUMNS)
    for number, case in enumerate(cases):
        writer.writerow([case, 30 + number % 60, "mf"[number % 2], "ABCDEFGH"[number % 8], "ct abdomen-pelvis",
                         SPLITS[number % len(SPLITS)], "siemens", "somatom force", 120, "no_pathology", ""])
    return ("\ufeff" + text.getvalue()).encode("utf-8")


def nifti_files(root: Path) -> list[Path]:
    return sorted(root.glob("s*/ct.nii.gz")) + sorted(root.glob("s*/segmentations/*.nii.gz"))


def build_release(workdir: Path, cases: int, seed: int = 0) -> Release:
    """The benchmark release under workdir, built once and reused while its marker says it is complete."""
    from qa.rules.spec import load_spec

    classes = load_spec(SPEC_NAME).classes
    root = workdir / f"deep-v2-{cases}-cases"
    marker = workdir / f"deep-v2-{cases}-cases.json"
    ids = [f"s{i:04d}" for i in range(cases)]
    expected = {"version": LAYOUT_VERSION, "cases": cases, "seed": seed, "shape": list(SHAPE),
                "files": cases * (1 + len(classes))}
    if not (root.is_dir() and marker.is_file() and json.loads(marker.read_text()) == expected):
        if root.exists():
            shutil.rmtree(root)
        marker.unlink(missing_ok=True)
        root.mkdir(parents=True)
        (root / "meta.csv").write_bytes(meta_csv(ids))
        for number, case in enumerate(ids):
            write_case(root / case, number, classes, seed)
            print(f"  built {case} ({number + 1}/{cases})", flush=True)
        marker.write_text(json.dumps(expected))
    return Release(root, ids, nifti_files(root))


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
    """tsqa's deep pass through the engine; clean means no error finding but the subset's META_SPLIT_COUNTS."""
    from qa.app.pipeline import run_check
    from qa.rules.spec import load_spec

    spec = load_spec(SPEC_NAME)
    clock, cpu = time.perf_counter(), _cpu_s()
    report = run_check(root, spec, "benchmark", mode="deep", jobs=jobs, subset=True)
    wall = time.perf_counter() - clock
    reap_workers()
    errors = sorted({f.code for f in report.findings if f.severity == "error"} - {"META_SPLIT_COUNTS"})
    return _timing(f"tsqa deep (jobs={jobs})", jobs, len(report.cases), wall, cpu, not errors,
                   f"errors other than META_SPLIT_COUNTS: {errors or 'none'}")


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


def _run_fresh(kind: str, root: Path, jobs: int, naive_cases: int) -> object:
    """One measurement in a fresh interpreter, so that its peak RSS and its workers' are its own; its JSON result.
    tsqa's workers' peak is watched from /proc (see peaks.py): their ru_maxrss would be their launcher's."""
    command = [sys.executable, __file__, "--measure", kind, "--root", str(root), "--jobs", str(jobs),
               "--naive-cases", str(naive_cases)]
    watched = run_watched(command)
    done = watched.done
    if done.returncode != 0:
        raise SystemExit(f"measurement {kind} failed (exit {done.returncode}):\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if kind == "deep":
        result["worker_rss_mb"] = watched.largest_other_mib
    return result


def run_measurement(kind: str, root: Path, jobs: int, naive_cases: int) -> Timing:
    return Timing(**_run_fresh(kind, root, jobs, naive_cases))


def _measure_only(args: argparse.Namespace) -> int:
    measures = {
        "deep": lambda: measure_deep(args.root, args.jobs),
        "floor": lambda: measure_floor(args.root, args.jobs),
        "floor-distinct": lambda: measure_floor(args.root, args.jobs, distinct=True),
        "gzip": lambda: measure_gzip_t(args.root, args.jobs),
        "naive": lambda: measure_naive(args.root, args.jobs, args.naive_cases),
    }
    if args.measure == "facts":
        print(json.dumps([asdict(fact) for fact in measure_facts(args.root, case_dirs(args.root)[0])]))
    else:
        print(json.dumps(asdict(measures[args.measure]())))
    return 0


def print_table(rows: list[Timing], deep: Timing) -> None:
    print(f"{'method':<36} {'cases':>5} {'wall s':>8} {'s/case':>8} {'x deep':>7} {'CPU s/case':>10} {'x deep':>7} "
          f"{'parent MB':>9} {'worker MB':>9} {'peak MB':>8}  ok  note")
    for row in rows:
        print(f"{row.name:<36} {row.cases:>5} {row.wall_s:>8.2f} {row.per_case_s:>8.3f} "
              f"{row.per_case_s / deep.per_case_s:>7.2f} {row.cpu_per_case_s:>10.3f} "
              f"{row.cpu_per_case_s / deep.cpu_per_case_s:>7.2f} {row.parent_rss_mb:>9.0f} {row.worker_rss_mb:>9.0f} "
              f"{row.peak_mb:>8.0f}  {'yes' if row.ok else 'NO':<3} {row.note}")


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


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tsqa-bench",
                        help="where the benchmark release is built and kept for reuse (outside the repo)")
    parser.add_argument("--cases", type=int, default=24, help="number of cases (default 24)")
    parser.add_argument("--jobs", type=int, default=2, help="processes for every method (default 2)")
    parser.add_argument("--naive-cases", type=int,
                        help="cases the naive loop runs on (default: one per process; it takes tens of seconds a case)")
    parser.add_argument("--measure", choices=["deep", "floor", "floor-distinct", "gzip", "naive", "facts"],
                        help=argparse.SUPPRESS)
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
    release = build_release(args.workdir.resolve(), args.cases)
    print(f"release: {release.root} ({len(release.cases)} cases, {len(release.files)} NIfTI files, "
          f"{release.megabytes:.0f} MB), ready in {time.perf_counter() - clock:.1f} s")
    print(f"warm-up: read {warm_up(release.files) / 1e6:.0f} MB (untimed)")
    print(f"load before: {_load()} (1/5/15 min, {os.cpu_count()} CPUs)")
    kinds = ("deep", "floor", "floor-distinct", "gzip", "naive")
    rows = [run_measurement(kind, release.root, args.jobs, args.naive_cases) for kind in kinds]
    print(f"load after:  {_load()} (1/5/15 min)")
    facts = [Fact(**fact) for fact in _run_fresh("facts", release.root, 1, 1)]
    deep, floor, distinct_floor, gzip_t, naive = rows
    print_table(rows, deep)
    print("(peak MB = parent + processes x largest worker; gzip's worker MB includes its launcher's, which Linux's "
          "ru_maxrss carries across exec)")
    print_facts(facts)
    failures = [f"{row.name} did not come out clean ({row.note})" for row in rows if not row.ok]
    failures += judge_targets(deep, floor, distinct_floor, gzip_t, naive)
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
