"""tsqa's model of ITK agrees with ITK itself (SimpleITK 2.5, ITK 5.4) on a table of NIfTI header variants.

Each variant is written as a real .nii.gz, read by tsqa's scan (qa.scan.nifti, whose header facts carry qa.scan.itk's
placement) and by SimpleITK: both must refuse the file, or place its grid within 1e-3 mm at the corners of the file's
grid and of a 512-cube. The table covers sform/qform codes 0-5 and beyond in combination, qform shifts of 5e-5,
0.0005, 0.01, 1 and 40 mm, shears of 5e-5, 1e-4 and 1e-3 (and a sweep around ITK's 1e-4 threshold), pixdim that
differs from the sform's columns, qform-only files, tilted and oblique files, units, 2-D and 4-D files, NIfTI-2; and
random headers concentrated near ITK's decision thresholds. Files tsqa itself calls corrupt (a zero dimension, an
Analyze magic) are left out: tsqa's verdict on them is FILE_CORRUPT, whatever ITK makes of them."""

from __future__ import annotations

import gzip
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
import pytest
import SimpleITK as sitk

from qa.scan.nifti import read_file_facts
from qa.source.fs import FolderSource

TOL_MM = 1e-3
REF_GRID = (512, 512, 512)
FUZZ_HEADERS = 200

Arr = npt.NDArray[np.float64]


def rot(axis: str, deg: float) -> Arr:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def affine(r: Arr | None = None, zooms: tuple[float, float, float] = (1.0, 1.0, 1.0),
           offset: tuple[float, float, float] = (-90.0, -126.0, -72.0)) -> Arr:
    a = np.eye(4)
    a[:3, :3] = (np.eye(3) if r is None else r) @ np.diag(zooms)
    a[:3, 3] = offset
    return a


def shifted(a: Arr, dx: float, dy: float = 0.0, dz: float = 0.0) -> Arr:
    b = a.copy()
    b[:3, 3] += (dx, dy, dz)
    return b


def sheared(a: Arr, rel: float, row: int = 0, col: int = 1) -> Arr:
    """Add rel * |column col| to the off-diagonal term a[row, col]."""
    b = a.copy()
    b[row, col] += rel * float(np.linalg.norm(a[:3, col]))
    return b


def corners(shape: tuple[int, ...]) -> Arr:
    ext = [max(int(n) - 1, 0) for n in shape[:3]] + [0] * (3 - len(shape[:3]))
    pts = np.array(list(itertools.product(*[(0, e) for e in ext])), dtype=float)
    return np.c_[pts, np.ones(len(pts))].T


def corner_dist(a: Arr, b: Arr, shape: tuple[int, ...]) -> float:
    """The largest distance between where two affines put a corner of the file's grid or of a 512-cube."""
    d = 0.0
    for shp in (shape, REF_GRID):
        c = corners(shp)
        d = max(d, float(np.max(np.linalg.norm((a @ c - b @ c)[:3], axis=0))))
    return d


@dataclass
class Variant:
    """A header to write: sform and qform with their codes, pixdim, and raw fields set last."""

    name: str
    sform: Arr | None = None
    qform: Arr | None = None
    scode: int = 0
    qcode: int = 0
    zooms: tuple[float, float, float] | None = None  # pixdim when no qform is given
    shape: tuple[int, ...] = (24, 20, 16)
    dtype: type = np.int16
    raw: dict[str, Any] = field(default_factory=dict)  # raw header overrides, applied last
    nifti2: bool = False
    big_endian: bool = False


def build_variants() -> list[Variant]:
    V: list[Variant] = []
    base = affine(zooms=(1.2, 1.2, 2.5))
    u8, i16 = np.uint8, np.int16

    # 1. all sform/qform code combinations 0..4, qform shifted +7 mm in x so the choice is visible
    for sc, qc in itertools.product(range(5), range(5)):
        V.append(Variant(f"codes s{sc} q{qc}", base, shifted(base, 7.0), sc, qc,
                         dtype=u8 if (sc + qc) % 2 else i16))
    # codes outside 0..4 (nifti1_io: <= 0 means unknown, any positive value is kept)
    for sc, qc in [(5, 0), (5, 1), (5, 2), (6, 1), (100, 0), (-1, 1), (-1, 0), (2, -3), (1, 5), (0, 7)]:
        V.append(Variant(f"codes s{sc} q{qc}", base, shifted(base, 7.0), sc, qc))

    # 2. qform shifted relative to the sform by small/large amounts
    for d in (5e-5, 0.0005, 0.01, 1.0, 40.0):
        for sc, qc in [(2, 1), (1, 1), (2, 2), (4, 1)]:
            V.append(Variant(f"qshift {d:g}mm s{sc} q{qc}", base, shifted(base, d, d / 2, -d), sc, qc,
                             dtype=u8 if sc == 2 else i16))

    # 3. sform shears (relative, off-diagonal), with and without a valid qform
    tilt = affine(rot("x", 26.8), (0.9, 0.9, 3.0), (-100.0, -80.0, 20.0))
    for rel in (5e-5, 1e-4, 1e-3):
        for (r, c) in [(0, 1), (2, 0)]:
            sh = sheared(base, rel, r, c)
            V.append(Variant(f"shear {rel:g} [{r},{c}] s2 q0", sh, None, 2, 0, zooms=(1.2, 1.2, 2.5)))
            V.append(Variant(f"shear {rel:g} [{r},{c}] s2 q1", sh, shifted(base, 3.0), 2, 1, dtype=u8))
            V.append(Variant(f"shear {rel:g} [{r},{c}] s1 q1", sh, shifted(base, 3.0), 1, 1))
        V.append(Variant(f"shear {rel:g} tilted s1 q0", sheared(tilt, rel, 1, 2), None, 1, 0,
                         zooms=(0.9, 0.9, 3.0), dtype=u8))
    # dense sweep around the 1e-4 orthonormality threshold (float32 rounding matters here)
    for rel in (0.9e-4, 0.97e-4, 0.99e-4, 0.999e-4, 1.001e-4, 1.01e-4, 1.03e-4, 1.1e-4):
        for zz in [(1.0, 1.0, 1.0), (0.7, 0.7, 3.0), (0.4883, 0.4883, 0.625)]:
            a = affine(zooms=zz)
            V.append(Variant(f"shear-sweep {rel:.4g} z{zz[0]} s2 q0", sheared(a, rel, 0, 1), None, 2, 0, zooms=zz))
        V.append(Variant(f"shear-sweep {rel:.4g} tilted s2 q0", sheared(tilt, rel, 1, 2), None, 2, 0,
                         zooms=(0.9, 0.9, 3.0)))
    # the test is on R R^T of the column-normalised matrix (not R^T R): not rotation invariant
    r45 = affine(rot("x", 45.0), (1.0, 1.0, 1.0), (5.0, 6.0, 7.0))
    for (r, c) in [(0, 1), (1, 0), (2, 1)]:
        V.append(Variant(f"rot45x shear 1.2e-4 [{r},{c}] s2 q0", sheared(r45, 1.2e-4, r, c), None, 2, 0,
                         zooms=(1.0, 1.0, 1.0)))
    # singular / non-finite sforms
    sing = base.copy()
    sing[:3, 2] = 0.0
    V.append(Variant("sform zero column s2 q0", sing, None, 2, 0, zooms=(1.2, 1.2, 2.5)))
    V.append(Variant("sform zero column s2 q1", sing, shifted(base, 3.0), 2, 1))
    V.append(Variant("sform NaN s2 q1", base, shifted(base, 3.0), 2, 1, raw={"srow_x": [np.nan, 0, 0, -90]}))
    V.append(Variant("sform NaN s2 q0", base, None, 2, 0, zooms=(1.2, 1.2, 2.5), raw={"srow_x": [np.nan, 0, 0, -90]}))

    # 4. pixdim disagreeing with the sform column lengths
    s16 = affine(zooms=(1.6, 1.6, 1.6))
    V.append(Variant("pixdim1.5 sform1.6 s2 q0", s16, None, 2, 0, zooms=(1.5, 1.5, 1.5)))
    V.append(Variant("pixdim1.5 sform1.6 s1 q0", s16, None, 1, 0, zooms=(1.5, 1.5, 1.5), dtype=u8))
    V.append(Variant("pixdim1.5 sform1.6 s2 q1", s16, s16, 2, 1, raw={"pixdim": [1, 1.5, 1.5, 1.5, 1, 1, 1, 1]}))
    V.append(Variant("pixdim1.5 sform1.6 s1 q1", s16, s16, 1, 1, raw={"pixdim": [1, 1.5, 1.5, 1.5, 1, 1, 1, 1]}))
    V.append(Variant("pixdim 1.2/1.2/2.5005 s2 q0", base, None, 2, 0, zooms=(1.2, 1.2, 2.5005)))
    V.append(Variant("pixdim zero z s2 q0", base, None, 2, 0, zooms=(1.2, 1.2, 0.0)))
    V.append(Variant("pixdim zero z q1 only", None, base, 0, 1, raw={"pixdim": [1, 1.2, 1.2, 0.0, 1, 1, 1, 1]}))
    V.append(Variant("pixdim negative x s2 q0", base, None, 2, 0, zooms=(-1.2, 1.2, 2.5)))
    V.append(Variant("pixdim negative x q1 only", None, base, 0, 1, raw={"pixdim": [1, -1.2, 1.2, 2.5, 1, 1, 1, 1]}))
    V.append(Variant("pixdim negative x s2 q1", base, base, 2, 1, raw={"pixdim": [1, -1.2, 1.2, 2.5, 1, 1, 1, 1]}))
    V.append(Variant("pixdim NaN y s2 q0", base, None, 2, 0, zooms=(1.2, float("nan"), 2.5)))

    # 5. qform-only files, qfac handling
    qt = affine(rot("y", 12.0) @ rot("z", -30.0), (0.8, 0.9, 1.1), (10.0, -20.0, 30.0))
    qt_left = qt @ np.diag([1, 1, -1, 1])
    V.append(Variant("qform-only rotated", None, qt, 0, 1))
    V.append(Variant("qform-only rotated code2", None, qt, 0, 2, dtype=u8))
    V.append(Variant("qform-only qfac -1", None, qt_left, 0, 1))
    for q0 in (0.0, -0.5, 2.0, -3.0):
        V.append(Variant(f"qform-only pixdim0={q0:g}", None, qt_left if q0 < 0 else qt, 0, 1,
                         raw={"pixdim0": q0}))
    V.append(Variant("qform-only pixdim0=0 (left qform)", None, qt_left, 0, 1, raw={"pixdim0": 0.0}))
    V.append(Variant("qform-only quatern NaN", None, qt, 0, 1, raw={"quatern_b": np.nan}))
    V.append(Variant("qform-only |bcd|>1", None, qt, 0, 1, raw={"quatern_b": 0.8, "quatern_c": 0.7, "quatern_d": 0.1}))

    # 6. tilted sforms (26.8 deg), consistent qforms
    for sc, qc in [(1, 1), (2, 2), (2, 1), (4, 4), (2, 0), (1, 0)]:
        V.append(Variant(f"tilt26.8 s{sc} q{qc}", tilt, tilt, sc, qc, dtype=u8 if sc == 2 else i16))
    V.append(Variant("tilt26.8 s2 q1 qform untilted", tilt, affine(None, (0.9, 0.9, 3.0), (-100.0, -80.0, 20.0)), 2, 1))
    # small rotation differences between sform and qform (tests the SVD "U" comparison)
    for deg in (0.001, 0.003, 0.0115, 0.03, 0.5):
        q = affine(rot("z", deg) @ rot("x", 26.8), (0.9, 0.9, 3.0), (-100.0, -80.0, 20.0))
        V.append(Variant(f"tilt s2 q1 qform +{deg:g}deg", tilt, q, 2, 1))
        a = affine(rot("z", deg), (0.7, 0.8, 3.0))
        V.append(Variant(f"aniso s3 q1 qform +{deg:g}deg", affine(None, (0.7, 0.8, 3.0)), a, 3, 1))
    # sform = qform with a flipped/permuted column (same offsets): LINPACK U is sign-flip invariant
    for lab, m in [("flip y", np.diag([1, -1, 1, 1])), ("flip z", np.diag([1, 1, -1, 1])),
                   ("flip x", np.diag([-1, 1, 1, 1])),
                   ("swap xy", np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float))]:
        for zz in [(1.0, 1.0, 1.0), (0.9, 0.9, 3.0), (0.7, 0.8, 3.0)]:
            q = affine(rot("x", 26.8), zz, (-100.0, -80.0, 20.0))
            V.append(Variant(f"sform=qform·{lab} z{zz[0]}/{zz[1]}/{zz[2]} s2 q1", q @ m, q, 2, 1))

    # 7. orientations / spacing
    lps = affine(np.diag([-1.0, -1.0, 1.0]), (0.5, 0.5, 1.0), (120.0, 130.0, -40.0))
    pir = affine(np.array([[0, 0, -1], [-1, 0, 0], [0, -1, 0]], float), (1.0, 1.0, 1.0), (90.0, 126.0, 72.0))
    for lab, a in [("LPS", lps), ("PIR sagittal", pir), ("noncubic 0.7x0.7x3", affine(zooms=(0.7, 0.7, 3.0)))]:
        for sc, qc in [(1, 1), (2, 0), (2, 1), (0, 1), (2, 2)]:
            V.append(Variant(f"{lab} s{sc} q{qc}", a, a, sc, qc, dtype=u8 if qc else i16))
    V.append(Variant("LPS sform, RAS qform s2 q1", lps, affine(None, (0.5, 0.5, 1.0), (120.0, 130.0, -40.0)), 2, 1))
    V.append(Variant("both codes 0 (base)", base, base, 0, 0))
    V.append(Variant("both codes 0 (base) uint8 aniso", None, None, 0, 0, zooms=(0.7, 0.8, 3.0), dtype=u8))
    V.append(Variant("both codes 0, pixdim0=-1", None, None, 0, 0, zooms=(0.7, 0.8, 3.0), raw={"pixdim0": -1.0}))

    # 8. units, dimensionality, Analyze, NIfTI-2
    V.append(Variant("xyz_units meter s2 q0", affine(zooms=(0.001, 0.001, 0.002), offset=(-0.09, -0.1, 0.05)),
                     None, 2, 0, zooms=(0.001, 0.001, 0.002), raw={"xyzt_units": 1}))
    V.append(Variant("xyz_units micron q1", None, affine(zooms=(50.0, 50.0, 80.0), offset=(1000.0, 0.0, 0.0)),
                     0, 1, raw={"xyzt_units": 3}))
    V.append(Variant("xyz_units mm+sec s1 q1", tilt, tilt, 1, 1, raw={"xyzt_units": 10}))
    V.append(Variant("big-endian tilt s1 q1", tilt, tilt, 1, 1, big_endian=True))
    V.append(Variant("big-endian qform-only qfac -1", None, qt_left, 0, 1, big_endian=True, dtype=u8))
    V.append(Variant("4D nt=1 s2 q1", tilt, tilt, 2, 1, shape=(24, 20, 16, 1)))
    V.append(Variant("4D nt=3 s1 q0", tilt, None, 1, 0, zooms=(0.9, 0.9, 3.0), shape=(24, 20, 16, 3)))
    V.append(Variant("2D s2 q0", affine(zooms=(0.5, 0.6, 1.0)), None, 2, 0, zooms=(0.5, 0.6, 1.0), shape=(30, 20)))
    V.append(Variant("2D rotated q1", None, affine(rot("z", 30), (0.5, 0.6, 1.0)), 0, 1, shape=(30, 20)))
    V.append(Variant("Analyze magic (s2 q1 ignored)", tilt, tilt, 2, 1, raw={"magic": b"\0\0\0\0"}))
    V.append(Variant("magic ni1 in .nii (s2 q0)", tilt, None, 2, 0, zooms=(0.9, 0.9, 3.0), raw={"magic": b"ni1"}))
    V.append(Variant("NIfTI-2 s2 q0", base, None, 2, 0, zooms=(1.2, 1.2, 2.5), nifti2=True))
    V.append(Variant("NIfTI-2 s1 q1 uint8", tilt, tilt, 1, 1, nifti2=True, dtype=u8))
    V.append(Variant("NIfTI-2 codes 0", None, None, 0, 0, zooms=(1.0, 1.0, 1.0), nifti2=True))

    # malformed dims / sizeof_hdr (nifti1_io checks)
    t0 = (0.9, 0.9, 3.0)
    V.append(Variant("dim[0]=8", tilt, None, 2, 0, zooms=t0, raw={"dim": [8, 24, 20, 16, 1, 1, 1, 1]}))
    V.append(Variant("dim[0]=0", tilt, None, 2, 0, zooms=t0, raw={"dim": [0, 24, 20, 16, 1, 1, 1, 1]}))
    V.append(Variant("dim[1]=-1", tilt, None, 2, 0, zooms=t0, raw={"dim": [3, -1, 20, 16, 1, 1, 1, 1]}))
    V.append(Variant("dim[2]=0 (-> 1)", tilt, None, 2, 0, zooms=t0, raw={"dim": [3, 24, 0, 16, 1, 1, 1, 1]}))
    V.append(Variant("sizeof_hdr=540 but magic n+1", tilt, None, 2, 0, zooms=t0, raw={"sizeof_hdr": 540}))
    # tiny voxels: elementwise sform~qform similarity (1e-5) admits a non-orthonormal sform
    micro = affine(zooms=(0.02, 0.02, 0.02), offset=(1.0, 2.0, 3.0))
    V.append(Variant("micro 0.02mm shear 2e-4 s2 q1 same", sheared(micro, 2e-4), micro, 2, 1))
    V.append(Variant("micro 0.02mm shear 2e-4 s2 q1 +1um", sheared(micro, 2e-4), shifted(micro, 1e-3), 2, 1))
    micro0 = affine(zooms=(0.02, 0.02, 0.02), offset=(0.0, 0.0, 0.0))
    mz = (0.02, 0.02, 0.02)
    V.append(Variant("micro 0.02mm shear 2e-4 s2 q0 origin0", sheared(micro0, 2e-4), None, 2, 0, zooms=mz))
    V.append(Variant("micro 0.02mm shear 2e-4 s2 q0", sheared(micro, 2e-4), None, 2, 0, zooms=mz))
    V.append(Variant("pixdim 1e-6, sform col0 = 0, s2 q0", np.diag([0.0, 1.0, 1.0, 1.0]), None, 2, 0,
                     zooms=(1e-6, 1.0, 1.0)))

    return V


def random_rotation(rng: np.random.Generator) -> Arr:
    if rng.random() < 0.4:  # axis-aligned: signed permutation
        r = np.eye(3)[rng.permutation(3)] * rng.choice([-1.0, 1.0], size=3)[:, None]
        return r
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def fuzz_variants(n: int, seed: int = 20250101) -> list[Variant]:
    """Random headers concentrated near ITK's decision thresholds."""
    rng = np.random.default_rng(seed)
    out: list[Variant] = []
    codes = [0, 1, 2, 3, 4, 5, -1]
    cw = np.array([3, 4, 4, 1, 2, 1, 1], float)
    for i in range(n):
        kind = rng.integers(3)
        zooms = (np.full(3, rng.uniform(0.3, 3)) if kind == 0 else
                 np.r_[np.full(2, rng.uniform(0.3, 1.5)), rng.uniform(0.5, 5)] if kind == 1 else
                 rng.uniform(0.3, 4, size=3))
        r = random_rotation(rng)
        s = affine(r, tuple(zooms), tuple(rng.uniform(-150, 150, size=3)))
        q = s.copy()
        what = rng.integers(6)
        if what == 1:  # tiny rotation difference
            ang = 10 ** rng.uniform(-6, -2)
            ax = rng.normal(size=3)
            ax /= np.linalg.norm(ax)
            k = np.array([[0, -ax[2], ax[1]], [ax[2], 0, -ax[0]], [-ax[1], ax[0], 0]])
            dr = np.eye(3) + math.sin(ang) * k + (1 - math.cos(ang)) * k @ k
            q[:3, :3] = dr @ q[:3, :3]
        elif what == 2:  # tiny offset difference
            q[:3, 3] += rng.normal(size=3) * 10 ** rng.uniform(-6, -2)
        elif what == 3:  # column sign flip
            q = q @ np.diag(np.r_[rng.choice([-1.0, 1.0], size=3), 1])
        elif what == 4:  # unrelated
            q = affine(random_rotation(rng), tuple(zooms), tuple(rng.uniform(-150, 150, size=3)))
        if rng.random() < 0.35:  # shear the sform
            rr, cc = rng.choice(3, size=2, replace=False)
            s = sheared(s, float(rng.choice([-1, 1]) * 10 ** rng.uniform(-5.5, -2.5)), int(rr), int(cc))
        pix = np.array([np.linalg.norm(q[:3, k]) for k in range(3)])
        if rng.random() < 0.25:
            pix = pix * (1 + rng.choice([-1, 1], size=3) * 10 ** rng.uniform(-6, -2, size=3))
        sc, qc = (int(c) for c in rng.choice(codes, size=2, p=cw / cw.sum()))
        v = Variant(f"fuzz{i:04d}", s, q, sc, qc, dtype=np.uint8 if i % 2 else np.int16,
                    shape=tuple(int(x) for x in rng.integers(8, 40, size=3)))
        v.raw["pixdim_xyz"] = pix
        out.append(v)
    return out


def write_variant(v: Variant, path: Path) -> None:
    endian = ">" if v.big_endian else "<"
    hdr: nib.Nifti1Header = (nib.Nifti2Header if v.nifti2 else nib.Nifti1Header)(endianness=endian)
    hdr.set_data_dtype(v.dtype)
    hdr.set_data_shape(v.shape)
    if v.qform is not None:
        hdr.set_qform(v.qform, code=1)  # computes quatern/qoffset/pixdim[1:4]/qfac
    elif v.zooms is not None:
        pd = hdr["pixdim"].copy()
        pd[1:4] = v.zooms
        hdr["pixdim"] = pd
    if v.sform is not None:
        hdr.set_sform(v.sform, code=1)
    s = hdr.structarr
    s["qform_code"] = v.qcode
    s["sform_code"] = v.scode
    for k, val in v.raw.items():
        if k == "pixdim_xyz":
            s["pixdim"][1:4] = val
        elif k == "pixdim0":
            s["pixdim"][0] = val
        elif k == "magic":
            s["magic"] = val
        else:
            s[k] = val
    vox_offset = (540 if v.nifti2 else 348) + 4
    s["vox_offset"] = vox_offset
    data = (np.arange(int(np.prod(v.shape))) % 7).astype(v.dtype).reshape(v.shape, order="F")
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(hdr.binaryblock)
        f.write(b"\0\0\0\0")
        f.write(data.astype(data.dtype.newbyteorder(endian)).tobytes(order="F"))


def sitk_affine(image: Any) -> Arr:
    """SimpleITK's placement as a RAS affine (ITK is LPS: the first two world axes change sign)."""
    d = image.GetDimension()
    nsp = min(d, 3)
    direction = np.array(image.GetDirection()).reshape(d, d)[:nsp, :nsp]
    placed = np.eye(4)
    placed[:nsp, :nsp] = direction * np.array(image.GetSpacing())[:nsp][None, :]
    placed[:nsp, 3] = np.array(image.GetOrigin())[:nsp]
    placed[: min(nsp, 2), :] *= -1.0
    return placed


def itk_reads(path: Path) -> Arr | None:
    try:
        return sitk_affine(sitk.ReadImage(str(path)))
    except RuntimeError:
        return None


def agree(variant: Variant, folder: Path) -> str | None:
    """Why tsqa's model and SimpleITK disagree on the variant, or None."""
    path = folder / "v.nii.gz"
    write_variant(variant, path)
    facts = read_file_facts(FolderSource(folder), "v.nii.gz")
    if facts.header is None:
        return None  # FILE_CORRUPT to tsqa
    model, itk = facts.header.itk, itk_reads(path)
    if itk is None or model.affine is None:
        return None if itk is None and model.affine is None else f"ITK {'refuses' if itk is None else 'reads'} it, " \
            f"the model says {model.refusal or model.transform}"
    distance = corner_dist(itk, np.array(model.affine), variant.shape)
    return None if distance < TOL_MM else f"the model's {model.transform} is {distance:.3g} mm from ITK's placement"


@pytest.fixture(scope="module", autouse=True)
def quiet_itk() -> None:
    sitk.ProcessObject.SetGlobalWarningDisplay(False)


@pytest.mark.parametrize("variant", build_variants(), ids=lambda v: v.name)
def test_the_model_places_the_variant_where_itk_does(variant: Variant, tmp_path: Path) -> None:
    assert agree(variant, tmp_path) is None


def test_the_model_agrees_with_itk_on_random_headers_near_its_thresholds(tmp_path: Path) -> None:
    disagreements = {v.name: why for v in fuzz_variants(FUZZ_HEADERS) if (why := agree(v, tmp_path)) is not None}
    assert disagreements == {}


def test_the_variants_cover_what_itk_refuses_and_both_transforms() -> None:
    names = [v.name for v in build_variants()]
    assert {"codes s2 q1", "qshift 40mm s2 q1", "shear 0.001 [0,1] s2 q0", "pixdim1.5 sform1.6 s2 q0",
            "qform-only rotated", "NIfTI-2 s2 q0"} <= set(names)
