"""How ITK 5.4 (SimpleITK 2.5, so TotalSegmentator, nnU-Net, 3D Slicer) places a NIfTI-1 file, from its header alone.

A model of ITK's own rules, checked against SimpleITK on a table of header variants (tests/scan/test_itk.py). Sources,
ITK tag v5.4.7: nifti1_io.c (is_nifti_file, nifti_convert_nhdr2nim, nifti_quatern_to_mat44), itkNiftiImageIO.cxx
(ReadImageInformation, IsAffine, SetImageIOOrientationFromNIfTI) and itkImageFileReader.hxx (a negative spacing flips
its axis). What matters, and where nibabel differs:
- spacing is pixdim, never the sform's column lengths (nibabel's affine keeps the columns);
- sform_code 1 wins over any qform; another positive sform_code wins only when sform and qform are "very similar"
  (offsets within 1e-4 mm, column lengths equal to pixdim within 1e-4, same rotation), else the qform is used
  (nibabel uses the sform whenever its code is 1 to 5);
- a sform whose direction cosines are off orthonormal by more than 1e-4 (elementwise |R R^T - I|, float32) is used
  only through the qform; without a qform ITK refuses the file;
- codes <= 0 mean unknown, any positive code is valid (nibabel sets codes outside 0-5 to 0);
- NIfTI-2 files are not opened at all.
ITK's float32 arithmetic is followed step by step where a decision depends on it (the orthonormality test, and the
LINPACK SVD whose U factors the "very similar" test compares). ITK_NIFTI_SFORM_PERMISSIVE (off by default) is not
modelled."""

# ruff: noqa: E741 - the LINPACK port keeps Fortran's loop variable `l`, so it can be read beside ssvdc.f
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Transform = Literal["sform", "qform", "base"]
# Why ITK refuses a file: no reader (NIfTI-2), not NIfTI (dimensions), no orthonormal transform, singular direction.
Refusal = Literal["no_reader", "not_nifti", "not_orthonormal", "singular_direction"]
REASONS: dict[str, str] = {
    "no_reader": "ITK has no reader for it (ITK 5.4 opens NIfTI-1 only)",
    "not_nifti": "ITK does not recognise it as NIfTI (its dimensions)",
    "not_orthonormal": "ITK only supports orthonormal direction cosines, and the header has no orthonormal transform",
    "singular_direction": "ITK refuses a direction matrix whose determinant is 0",
}

_F32 = np.float32
_NIFTI1_HDR_SIZE = 348
# NIFTI_UNITS_* -> the factor ITK scales spacing and origin by: metre, millimetre, micron; anything else is mm.
_SPACE_SCALE = {1: 1e3, 2: 1.0, 3: 1e-3}


@dataclass(frozen=True, slots=True)
class NiftiFields:
    """Raw NIfTI header fields as stored in the file: no nibabel fixes (read the header with check=False)."""

    dim: Sequence[int]
    pixdim: Sequence[float]  # 8 values; pixdim[0] is qfac
    sform_code: int = 0
    qform_code: int = 0
    srow_x: Sequence[float] = (0.0, 0.0, 0.0, 0.0)
    srow_y: Sequence[float] = (0.0, 0.0, 0.0, 0.0)
    srow_z: Sequence[float] = (0.0, 0.0, 0.0, 0.0)
    quatern_b: float = 0.0
    quatern_c: float = 0.0
    quatern_d: float = 0.0
    qoffset_x: float = 0.0
    qoffset_y: float = 0.0
    qoffset_z: float = 0.0
    xyzt_units: int = 0
    sizeof_hdr: int = 348
    magic: bytes = b"n+1"

    @classmethod
    def of(cls, header: Any) -> NiftiFields:
        """The fields of a nibabel Nifti1Header or Nifti2Header, as tuples: the fields hash, so that placements can
        be cached by them (a case's CT and masks differ in data type only)."""
        def floats(name: str) -> tuple[float, ...]:
            return tuple(float(v) for v in header[name])

        return cls(dim=tuple(int(v) for v in header["dim"]), pixdim=floats("pixdim"),
                   sform_code=int(header["sform_code"]), qform_code=int(header["qform_code"]),
                   srow_x=floats("srow_x"), srow_y=floats("srow_y"), srow_z=floats("srow_z"),
                   quatern_b=float(header["quatern_b"]), quatern_c=float(header["quatern_c"]),
                   quatern_d=float(header["quatern_d"]), qoffset_x=float(header["qoffset_x"]),
                   qoffset_y=float(header["qoffset_y"]), qoffset_z=float(header["qoffset_z"]),
                   xyzt_units=int(header["xyzt_units"]), sizeof_hdr=int(header["sizeof_hdr"]),
                   magic=bytes(header["magic"]).rstrip(b"\x00")[:3])


@dataclass(frozen=True, slots=True)
class Placement:
    """Where ITK puts the grid: a 4x4 voxel-to-world affine in nibabel's RAS+ convention and the transform it came
    from, or why ITK refuses the file."""

    affine: list[list[float]] | None
    transform: Transform | None
    refusal: Refusal | None = None

    @property
    def reason(self) -> str | None:
        return None if self.refusal is None else REASONS[self.refusal]


def _finite_or(x: float, repl: float) -> float:
    return float(x) if math.isfinite(float(x)) else repl


def _vnl_normalize_f32(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """vnl_c_vector<float>::normalize: float sum of squares, 1/sqrt in double, float scale."""
    tmp = _F32(0.0)
    for x in v:
        tmp = _F32(tmp + _F32(x * x))
    if tmp == 0:
        return v.copy()
    inv = _F32(1.0 / math.sqrt(float(tmp)))
    return np.array([_F32(inv * x) for x in v], dtype=_F32)


def _f32_matmul(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """vnl_matrix_fixed_mat_mat_mult in float: accum = a(i,0)*b(0,j); accum += a(i,k)*b(k,j)."""
    n, m = a.shape[0], b.shape[1]
    out = np.zeros((n, m), dtype=_F32)
    for i in range(n):
        for j in range(m):
            acc = _F32(a[i, 0] * b[0, j])
            for k in range(1, a.shape[1]):
                acc = _F32(acc + _F32(a[i, k] * b[k, j]))
            out[i, j] = acc
    return out


def _is_identity(m: npt.NDArray[Any], tol: float) -> bool:
    """vnl_matrix_fixed::is_identity(tol): every |m_ij - delta_ij| <= tol."""
    d = np.abs(m - np.eye(m.shape[0], dtype=m.dtype))
    return bool(np.all(d.astype(np.float64) <= tol))


def _is_equal(a: npt.NDArray[Any], b: npt.NDArray[Any], tol: float) -> bool:
    """vnl is_equal(rhs, tol): every |a_i - b_i| <= tol (difference in the element type)."""
    return bool(np.all(np.abs(a - b).astype(np.float64) <= tol))


def _f32_one_norm(v: npt.NDArray[np.float32]) -> float:
    acc = _F32(0.0)
    for x in v:
        acc = _F32(acc + abs(x))
    return float(acc)


def _sdot(x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]) -> float:
    """BLAS sdot (n < 5 path): sequential float accumulation; f2c returns it as double."""
    acc = _F32(0.0)
    for a, b in zip(x, y, strict=True):
        acc = _F32(acc + _F32(a * b))
    return float(acc)


def _snrm2(x: npt.NDArray[np.float32]) -> float:
    """BLAS snrm2 (scaled sum of squares, float; ``norm = scale * sqrt(ssq)`` via double)."""
    if len(x) < 1:
        return 0.0
    if len(x) == 1:
        return float(abs(x[0]))
    scale, ssq = _F32(0.0), _F32(1.0)
    for xi in x:
        if xi != 0:
            absxi = _F32(abs(xi))
            if scale < absxi:
                r = _F32(scale / absxi)
                ssq = _F32(_F32(ssq * _F32(r * r)) + _F32(1.0))
                scale = absxi
            else:
                r = _F32(absxi / scale)
                ssq = _F32(ssq + _F32(r * r))
    return float(_F32(float(scale) * math.sqrt(float(ssq))))


def _r_sign(a: float, b: float) -> float:
    """f2c r_sign: |a| with the sign of b (b >= 0 -> +)."""
    return abs(a) if b >= 0 else -abs(a)


def _srotg(sa: np.float32, sb: np.float32) -> tuple[np.float32, np.float32, np.float32]:
    """BLAS srotg -> (c, s, r)."""
    roe = sa if abs(sa) > abs(sb) else sb
    scale = _F32(abs(sa) + abs(sb))
    if scale == 0:
        return _F32(1.0), _F32(0.0), _F32(0.0)
    r1, r2 = _F32(sa / scale), _F32(sb / scale)
    r = _F32(float(scale) * math.sqrt(float(_F32(_F32(r1 * r1) + _F32(r2 * r2)))))
    r = _F32(_r_sign(1.0, float(roe)) * float(r))
    return _F32(sa / r), _F32(sb / r), r


def _srot(xv: npt.NDArray[np.float32], yv: npt.NDArray[np.float32], c: np.float32, s: np.float32) -> None:
    """BLAS srot in place: stemp = c*x + s*y; y = c*y - s*x; x = stemp (float, no FMA)."""
    tx = (c * xv + s * yv).astype(_F32)
    yv[:] = (c * yv - s * xv).astype(_F32)
    xv[:] = tx


F32Mat = npt.NDArray[np.float32]


def _linpack_svdc(a_in: npt.NDArray[Any]) -> tuple[F32Mat, F32Mat, F32Mat]:
    """Float32 port of LINPACK ``ssvdc`` (job=21) as called by ``vnl_svd<float>`` (square n x n).

    Returns (U, W, V) with A = U diag(W) V^T.  ITK's "sform and qform are very similar"
    test compares the ``U`` matrices of two such decompositions directly, so LINPACK's
    sign/ordering conventions *and* its float32 convergence test matter: for isotropic
    (orthogonal * scalar) inputs the off-diagonal residue is below float eps, the QR
    sweep is skipped and U is the raw Householder product (numpy/LAPACK, or this code
    in float64, give a different U).  Arithmetic follows the f2c'd ssvdc.c/BLAS in
    v3p/netlib: float operations, with sdot/snrm2 returned as double and the
    ``t = -sdot/x`` and ``sqrt`` steps evaluated in double then stored to float.
    """
    x = np.array(a_in, dtype=_F32)
    n = p = x.shape[0]
    s = np.zeros(p + 1, dtype=_F32)
    e = np.zeros(p, dtype=_F32)
    u = np.zeros((n, n), dtype=_F32)
    v = np.zeros((p, p), dtype=_F32)
    work = np.zeros(n, dtype=_F32)
    one = _F32(1.0)

    nct = min(n - 1, p)
    nrt = max(0, min(p - 2, n))
    lu = max(nct, nrt)
    # 0-based translation of the Fortran index l -> l-1
    for l in range(lu):
        lp1 = l + 1
        if l < nct:
            s[l] = _snrm2(x[l:, l])
            if s[l] != 0:
                if x[l, l] != 0:
                    s[l] = _r_sign(float(s[l]), float(x[l, l]))
                x[l:, l] = (_F32(one / s[l]) * x[l:, l]).astype(_F32)
                x[l, l] = _F32(one + x[l, l])
            s[l] = -s[l]
        for j in range(lp1, p):
            if l < nct and s[l] != 0:
                t = _F32(-_sdot(x[l:, l], x[l:, j]) / float(x[l, l]))
                x[l:, j] = (x[l:, j] + (t * x[l:, l]).astype(_F32)).astype(_F32)
            e[j] = x[l, j]
        if l < nct:
            u[l:, l] = x[l:, l]
        if l < nrt:
            e[l] = _snrm2(e[lp1:])
            if e[l] != 0:
                if e[lp1] != 0:
                    e[l] = _r_sign(float(e[l]), float(e[lp1]))
                e[lp1:] = (_F32(one / e[l]) * e[lp1:]).astype(_F32)
                e[lp1] = _F32(one + e[lp1])
            e[l] = -e[l]
            if lp1 < n and e[l] != 0:
                work[lp1:] = 0
                for j in range(lp1, p):
                    work[lp1:] = (work[lp1:] + (e[j] * x[lp1:, j]).astype(_F32)).astype(_F32)
                for j in range(lp1, p):
                    r1 = _F32(-e[j] / e[lp1])
                    x[lp1:, j] = (x[lp1:, j] + (r1 * work[lp1:]).astype(_F32)).astype(_F32)
            v[lp1:, l] = e[lp1:]
    m = min(p, n + 1)  # 1-based count from here on
    nctp1, nrtp1 = nct + 1, nrt + 1
    if nct < p:
        s[nctp1 - 1] = x[nctp1 - 1, nctp1 - 1]
    if n < m:
        s[m - 1] = 0
    if nrtp1 < m:
        e[nrtp1 - 1] = x[nrtp1 - 1, m - 1]
    e[m - 1] = 0
    # generate U
    for j in range(nctp1 - 1, n):
        u[:, j] = 0
        u[j, j] = one
    for l in range(nct - 1, -1, -1):
        if s[l] != 0:
            for j in range(l + 1, n):
                t = _F32(-_sdot(u[l:, l], u[l:, j]) / float(u[l, l]))
                u[l:, j] = (u[l:, j] + (t * u[l:, l]).astype(_F32)).astype(_F32)
            u[l:, l] = -u[l:, l]
            u[l, l] = _F32(one + u[l, l])
            u[:l, l] = 0
        else:
            u[:, l] = 0
            u[l, l] = one
    # generate V
    for l in range(p - 1, -1, -1):
        lp1 = l + 1
        if l < nrt and e[l] != 0:
            for j in range(lp1, p):
                t = _F32(-_sdot(v[lp1:, l], v[lp1:, j]) / float(v[lp1, l]))
                v[lp1:, j] = (v[lp1:, j] + (t * v[lp1:, l]).astype(_F32)).astype(_F32)
        v[:, l] = 0
        v[l, l] = one

    mm, it, maxit = m, 0, 1000
    while m != 0 and it < maxit:
        l = 0  # 1-based below, as in the Fortran
        for ll in range(1, m + 1):
            l = m - ll
            if l == 0:
                break
            test = _F32(abs(s[l - 1]) + abs(s[l]))
            if _F32(test + abs(e[l - 1])) == test:
                e[l - 1] = 0
                break
        if l == m - 1:
            kase = 4
        else:
            ls = l
            for lls in range(l + 1, m + 2):
                ls = m - lls + l + 1
                if ls == l:
                    break
                test = _F32(0.0)
                if ls != m:
                    test = _F32(test + abs(e[ls - 1]))
                if ls != l + 1:
                    test = _F32(test + abs(e[ls - 2]))
                if _F32(test + abs(s[ls - 1])) == test:
                    s[ls - 1] = 0
                    break
            if ls == l:
                kase = 3
            elif ls == m:
                kase = 1
            else:
                kase, l = 2, ls
        l += 1
        if kase == 1:  # deflate negligible s(m)
            f = e[m - 2]
            e[m - 2] = 0
            for k in range(m - 1, l - 1, -1):
                cs, sn, t1 = _srotg(s[k - 1], f)
                s[k - 1] = t1
                if k != l:
                    f = _F32(-sn * e[k - 2])
                    e[k - 2] = _F32(cs * e[k - 2])
                _srot(v[:, k - 1], v[:, m - 1], cs, sn)
        elif kase == 2:  # split at negligible s(l)
            f = e[l - 2]
            e[l - 2] = 0
            for k in range(l, m + 1):
                cs, sn, t1 = _srotg(s[k - 1], f)
                s[k - 1] = t1
                f = _F32(-sn * e[k - 1])
                e[k - 1] = _F32(cs * e[k - 1])
                _srot(u[:, k - 1], u[:, l - 2], cs, sn)
        elif kase == 3:  # one QR step
            scale = max(abs(s[m - 1]), abs(s[m - 2]), abs(e[m - 2]), abs(s[l - 1]), abs(e[l - 1]))
            sm, smm1, emm1 = _F32(s[m - 1] / scale), _F32(s[m - 2] / scale), _F32(e[m - 2] / scale)
            sl, el = _F32(s[l - 1] / scale), _F32(e[l - 1] / scale)
            b = _F32(_F32(_F32(_F32(smm1 + sm) * _F32(smm1 - sm)) + _F32(emm1 * emm1)) / _F32(2.0))
            r1 = _F32(sm * emm1)
            c = _F32(r1 * r1)
            shift = _F32(0.0)
            if not (b == 0 and c == 0):
                shift = _F32(math.sqrt(float(_F32(_F32(b * b) + c))))
                if b < 0:
                    shift = -shift
                shift = _F32(c / _F32(b + shift))
            f = _F32(_F32(_F32(sl + sm) * _F32(sl - sm)) + shift)
            g = _F32(sl * el)
            for k in range(l, m):
                cs, sn, f = _srotg(f, g)
                if k != l:
                    e[k - 2] = f
                f = _F32(_F32(cs * s[k - 1]) + _F32(sn * e[k - 1]))
                e[k - 1] = _F32(_F32(cs * e[k - 1]) - _F32(sn * s[k - 1]))
                g = _F32(sn * s[k])
                s[k] = _F32(cs * s[k])
                _srot(v[:, k - 1], v[:, k], cs, sn)
                cs, sn, f = _srotg(f, g)
                s[k - 1] = f
                f = _F32(_F32(cs * e[k - 1]) + _F32(sn * s[k]))
                s[k] = _F32(_F32(-sn * e[k - 1]) + _F32(cs * s[k]))
                g = _F32(sn * e[k])
                e[k] = _F32(cs * e[k])
                if k < n:
                    _srot(u[:, k - 1], u[:, k], cs, sn)
            e[m - 2] = f
            it += 1
        else:  # kase 4: convergence; make s(l) positive, sort descending
            if s[l - 1] < 0:
                s[l - 1] = -s[l - 1]
                v[:, l - 1] = -v[:, l - 1]
            while l != mm and s[l - 1] < s[l]:
                s[l - 1], s[l] = s[l], s[l - 1]
                if l < p:
                    v[:, [l - 1, l]] = v[:, [l, l - 1]]
                if l < n:
                    u[:, [l - 1, l]] = u[:, [l, l - 1]]
                l += 1
            it = 0
            m -= 1
    return u, np.abs(s[:p]), v


def _qto_xyz(f: NiftiFields, qcode: int, dx: float, dy: float, dz: float) -> npt.NDArray[np.float32]:
    """nifti_convert_nhdr2nim: qto_xyz (float mat44)."""
    q = np.zeros((4, 4), dtype=_F32)
    q[3, 3] = 1.0
    if qcode <= 0:  # "if not nifti or qform_code <= 0, use grid spacing"
        q[0, 0], q[1, 1], q[2, 2] = dx, dy, dz
        return q
    b, c, d = (float(_F32(_finite_or(v, 0.0))) for v in (f.quatern_b, f.quatern_c, f.quatern_d))
    qx, qy, qz = (float(_F32(_finite_or(v, 0.0))) for v in (f.qoffset_x, f.qoffset_y, f.qoffset_z))
    qfac = -1.0 if float(f.pixdim[0]) < 0.0 else 1.0  # pixdim[0] < 0 => -1, else (incl. 0) +1
    # nifti_quatern_to_mat44
    a = 1.0 - (b * b + c * c + d * d)
    if a < 1.0e-7:
        a = 1.0 / math.sqrt(b * b + c * c + d * d)
        b, c, d = b * a, c * a, d * a
        a = 0.0
    else:
        a = math.sqrt(a)
    xd = dx if dx > 0.0 else 1.0  # non-positive pixdim -> 1 (NOT abs)
    yd = dy if dy > 0.0 else 1.0
    zd = dz if dz > 0.0 else 1.0
    if qfac < 0.0:
        zd = -zd
    q[0, 0] = (a * a + b * b - c * c - d * d) * xd
    q[0, 1] = 2.0 * (b * c - a * d) * yd
    q[0, 2] = 2.0 * (b * d + a * c) * zd
    q[1, 0] = 2.0 * (b * c + a * d) * xd
    q[1, 1] = (a * a + c * c - b * b - d * d) * yd
    q[1, 2] = 2.0 * (c * d - a * b) * zd
    q[2, 0] = 2.0 * (b * d - a * c) * xd
    q[2, 1] = 2.0 * (c * d + a * b) * yd
    q[2, 2] = (a * a + d * d - c * c - b * b) * zd
    q[0, 3], q[1, 3], q[2, 3] = qx, qy, qz
    return q


def _sto_xyz(f: NiftiFields, scode: int) -> npt.NDArray[np.float32]:
    """nifti_convert_nhdr2nim: sto_xyz; left all-zero (calloc) when sform_code <= 0."""
    s = np.zeros((4, 4), dtype=_F32)
    if scode <= 0:
        return s
    s[0, :] = np.asarray(f.srow_x, dtype=_F32)
    s[1, :] = np.asarray(f.srow_y, dtype=_F32)
    s[2, :] = np.asarray(f.srow_z, dtype=_F32)
    s[3, 3] = 1.0
    return s


def _is_affine(m44: npt.NDArray[np.float32]) -> bool:
    """itkNiftiImageIO.cxx anonymous-namespace IsAffine(const mat44 &), in double."""
    mat = m44.astype(np.float64)
    if not np.all(np.isfinite(mat)):
        return False
    bottom = abs(mat[3, 3] - 1.0) + float(np.sum(np.abs(mat[3, :3])))
    if bottom > np.finfo(np.float32).eps:
        return False
    sv = np.linalg.svd(mat, compute_uv=False)
    condition = sv[-1] / sv[0] if sv[0] > 0 else 0.0  # vnl_svd::well_condition()
    if not condition > np.finfo(np.float64).eps:
        return False
    inv4 = np.linalg.inv(mat)
    inv3 = np.linalg.inv(mat[:3, :3])
    t3 = -(inv3 @ mat[:3, 3])
    return not (
        float(np.sum(np.abs(inv4[:3, :3] - inv3))) > 1e-2  # array_one_norm
        or float(np.sum(np.abs(inv4[:3, 3] - t3))) > 1e-2
    )


def _sform_orthonormal(sto: npt.NDArray[np.float32]) -> bool:
    """The lambda ``sform_decomposable_without_skew`` minus the (warning-only) scale check.

    rotation = float 3x3 of sto_xyz; each column normalised (vnl normalize);
    orthonormal iff (rotation * rotation^T).is_identity(1.0e-4) elementwise.
    """
    r = sto[:3, :3].astype(_F32).copy()
    for i in range(3):
        r[:, i] = _vnl_normalize_f32(r[:, i])
    cand = _f32_matmul(r, np.ascontiguousarray(r.T))
    return _is_identity(cand, 1.0e-4)


def _qform_sform_similar(sto: npt.NDArray[np.float32], qto: npt.NDArray[np.float32]) -> bool:
    """Lambda ``qform_sform_are_similar`` (elementwise, float)."""
    if not _is_equal(sto[:3, :3], qto[:3, :3], 1e-5):
        return False
    if _f32_one_norm((sto[:, 3] - qto[:, 3]).astype(_F32)) > 1e-7:
        return False
    if _f32_one_norm((sto[3, :] - qto[3, :]).astype(_F32)) > 1e-7:
        return False
    return True


def _sform_qform_very_similar(sto: npt.NDArray[np.float32], qto: npt.NDArray[np.float32]) -> bool:
    """Lambda ``sform_and_qform_are_very_similar`` (vnl_svd<float> = LINPACK ssvdc)."""
    us, ws, _ = _linpack_svdc(sto[:3, :3])
    uq, wq, _ = _linpack_svdc(qto[:3, :3])
    # sform_svd.U() * vnl_matrix_inverse<float>(qform_svd.U()); float64 here (~1e-7 off)
    cand = us.astype(np.float64) @ np.linalg.inv(uq.astype(np.float64))
    spacing_similar = _is_equal(ws, wq, 1.0e-4)
    rot_similar = _is_identity(cand, 1.0e-4)
    offsets_similar = _is_equal(sto[:3, 3], qto[:3, 3], 1.0e-4)
    persp_similar = _is_equal(sto[3, :], qto[3, :], 1.0e-4)
    return rot_similar and offsets_similar and persp_similar and spacing_similar


def _refused(refusal: Refusal) -> Placement:
    return Placement(affine=None, transform=None, refusal=refusal)


def _has_nifti_magic(f: NiftiFields) -> bool:
    """nifti1_io's NIFTI_VERSION test: 'n', 'i' or '+', a digit 1 to 9."""
    magic = bytes(f.magic)
    return len(magic) == 3 and magic[:1] == b"n" and magic[1:2] in (b"i", b"+") and b"1" <= magic[2:3] <= b"9"


def _choose(sto: npt.NDArray[np.float32], qto: npt.NDArray[np.float32], scode: int,
            qcode: int) -> tuple[npt.NDArray[np.float32] | None, Transform | None]:
    """SetImageIOOrientationFromNIfTI's choice between sform and qform; (None, None) when ITK refuses."""
    prefer_sform = _qform_sform_similar(sto, qto)
    if (not prefer_sform or scode != 0) and _is_affine(sto) and _sform_orthonormal(sto):
        if qcode == 0 and scode != 0:
            prefer_sform = True
        elif scode == 1:  # NIFTI_XFORM_SCANNER_ANAT
            prefer_sform = True
        elif qcode != 0 and scode != 0:
            prefer_sform = _sform_qform_very_similar(sto, qto)
    if prefer_sform:
        return sto, "sform"
    if qcode != 0:
        return qto, "qform"
    return None, None


def itk_placement(f: NiftiFields) -> Placement:
    """Where ITK 5.4 places the file's grid, or why it refuses to open it."""
    is_nifti = _has_nifti_magic(f)
    nifti2 = int(f.sizeof_hdr) == 540 and bytes(f.magic)[2:3] == b"2"
    if nifti2 or (not is_nifti and int(f.sizeof_hdr) != _NIFTI1_HDR_SIZE):
        return _refused("no_reader")
    dim = [int(v) for v in f.dim] + [0] * (8 - len(f.dim))
    if not (1 <= dim[0] <= 7 or (dim[0] == 0 and int(f.sizeof_hdr) == _NIFTI1_HDR_SIZE)) or dim[1] <= 0:
        return _refused("not_nifti")
    for i in range(2, dim[0] + 1):
        dim[i] = max(dim[i], 1)
    pixdim = [float(_F32(v)) for v in list(f.pixdim) + [0.0] * (8 - len(f.pixdim))]
    for i in range(1, dim[0] + 1):  # nifti1_io sets bad grid spacings to 1
        if pixdim[i] == 0.0 or not math.isfinite(pixdim[i]):
            pixdim[i] = 1.0
    dx, dy, dz = pixdim[1], pixdim[2], pixdim[3]
    ndim = dim[0]
    while ndim > 3 and dim[ndim] == 1:  # trailing size-1 dimensions above 3 are dropped
        ndim -= 1
    if ndim < 1:
        return _refused("not_nifti")
    nsp = min(ndim, 3)
    scale = _SPACE_SCALE.get(int(f.xyzt_units) & 0x07, 1.0) if is_nifti else 1.0
    qcode = int(f.qform_code) if is_nifti and int(f.qform_code) > 0 else 0
    scode = int(f.sform_code) if is_nifti and int(f.sform_code) > 0 else 0
    spacing = np.array([dx, dy, dz][:nsp], dtype=np.float64) * scale
    if qcode == 0 and scode == 0:  # origin 0 and the identity direction in LPS
        transform: Transform = "base"
        origin = np.zeros(nsp)
        direction = np.eye(nsp)
    else:
        chosen, picked = _choose(_sto_xyz(f, scode), _qto_xyz(f, qcode, dx, dy, dz), scode, qcode)
        if chosen is None:
            return _refused("not_orthonormal")
        transform = picked
        m = chosen.astype(np.float64)
        origin = np.array([-m[0, 3], -m[1, 3], m[2, 3]][:nsp]) * scale
        direction = np.zeros((nsp, nsp))
        for k in range(nsp):  # LPS columns, normalised: their lengths never reach the placement
            column = np.array([m[i, k] * (-1.0 if i < 2 else 1.0) for i in range(nsp)])
            norm = math.sqrt(float(np.sum(column * column)))
            direction[:, k] = column / norm if norm != 0.0 else column
        if np.linalg.det(direction) == 0.0:
            return _refused("singular_direction")
    for k in range(nsp):  # ImageFileReader: a negative spacing becomes positive and flips its axis
        if spacing[k] < 0:
            spacing[k] = -spacing[k]
            direction[:, k] = -direction[:, k]
    affine = np.eye(4)
    affine[:nsp, :nsp] = direction * spacing[None, :]
    affine[:nsp, 3] = origin
    affine[: min(nsp, 2), :] *= -1.0  # LPS to RAS: the first two world axes change sign
    return Placement(affine=[[float(v) for v in row] for row in affine], transform=transform)
