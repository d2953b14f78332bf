"""Checks of geometry: the image's spacing, orientation and affine, and every mask's grid against its image."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from nibabel.orientations import aff2axcodes

from qa.checks.base import Context, check, finding
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts, HeaderFacts

# Problems after which the affine says nothing about where the image is: orientation and mask affines are not judged.
UNUSABLE_AFFINE = ("non_finite", "singular", "no_transform", "bad_quaternion", "bad_code")
# NIfTI's transform codes: unknown, scanner, aligned, Talairach, MNI 152, other template.
XFORM_CODES = range(0, 6)
NIBABEL_CODES = range(1, 6)


def corner_deviation_mm(a: list[list[float]], b: list[list[float]], shape: tuple[int, ...]) -> float:
    """The largest distance between where two affines put a corner of the grid: a deviation a person can picture."""
    extent = [max(n - 1, 0) for n in shape[:3]] + [0] * (3 - len(shape[:3]))
    corners = np.array([[*c, 1.0] for c in itertools.product(*[(0, n) for n in extent])]).T
    with np.errstate(all="ignore"):
        diff = (np.asarray(a) - np.asarray(b)) @ corners
    deviation = float(np.max(np.linalg.norm(diff[:3], axis=0)))
    return deviation if np.isfinite(deviation) else float("inf")


def axcodes(header: HeaderFacts) -> list[str | None]:
    # only the rotation and zooms decide the axis codes, and the cases of a release share them
    return list(_axcodes(tuple(tuple(row[:3]) for row in header.affine[:3])))


@functools.lru_cache(maxsize=1024)
def _axcodes(rotation: tuple[tuple[float, ...], ...]) -> tuple[str | None, ...]:
    """nibabel's axis codes of an affine whose upper 3 x 3 is `rotation` (its SVD is most of a quick pass's judging)."""
    affine = np.eye(4)
    affine[:3, :3] = rotation
    try:
        with np.errstate(all="ignore"):
            return tuple(aff2axcodes(affine))
    except (ValueError, np.linalg.LinAlgError):
        return (None, None, None)


def nibabel_transform(header: HeaderFacts) -> str:
    """The transform nib.load takes: the sform, else the qform, for codes 1 to 5 (it sets others to 0), else none."""
    if header.sform_code in NIBABEL_CODES:
        return "sform"
    return "qform" if header.qform_code in NIBABEL_CODES and header.qform is not None else "base"


def placements(header: HeaderFacts, spec: ReleaseSpec,
               readers: list[str] | None = None) -> dict[str, list[list[float]] | None]:
    """Where each of the readers (default: the spec's) puts the grid (None: that reader refuses the file). A reader
    whose placement is not known for this header (no ITK facts) is left out."""
    found: dict[str, list[list[float]] | None] = {}
    for reader in readers or spec.readers:
        if reader == "nibabel":
            found[reader] = header.affine
        elif header.itk is not None and header.version in spec.nifti_versions:
            found[reader] = header.itk.affine
    return found


def _orthonormality_error(header: HeaderFacts) -> float:
    """max |R^T R - I| of the direction cosines of the sform (or, without one, of the affine nibabel uses)."""
    rotation = np.asarray(header.sform if header.sform is not None else header.affine)[:3, :3]
    unit = rotation / np.linalg.norm(rotation, axis=0)
    return float(np.max(np.abs(unit.T @ unit - np.eye(3))))


def _itk_reads(header: HeaderFacts, spec: ReleaseSpec) -> str:
    """What ITK does with the header's transforms, for messages about them."""
    itk = header.itk
    if itk is None or "itk" not in spec.readers:
        return ""
    if itk.refusal is not None:
        return f"; ITK refuses the file ({itk.reason})"
    return f"; ITK reads the {itk.transform}, nibabel the {nibabel_transform(header)}"


def affine_problems(header: HeaderFacts, spec: ReleaseSpec) -> list[tuple[str, str, dict]]:
    """(subcode, message, details) for each reason not to trust a header's affine."""
    affine = np.asarray(header.affine)
    if not np.all(np.isfinite(affine)):
        return [("non_finite", "the affine has non-finite entries", {})]
    rotation = affine[:3, :3]
    norms = np.linalg.norm(rotation, axis=0)
    det = float(np.linalg.det(rotation))
    if np.any(norms == 0) or abs(det) < 1e-12 * float(np.prod(norms)):
        return [("singular", f"the affine is singular (determinant {det:.3g})", {"determinant": det})]
    problems = []
    for name, code in (("sform_code", header.sform_code), ("qform_code", header.qform_code)):
        if code not in XFORM_CODES:
            problems.append(("bad_code", f"{name} {code} is not a NIfTI transform code (0 to 5): nibabel ignores that "
                             "transform, ITK uses it if the code is positive", {name: code}))
    if header.qform_error is not None and header.sform is None:
        problems.append(("bad_quaternion", f"qform_code {header.qform_code} but {header.qform_error}; nibabel refuses "
                         "to load it, ITK renormalises the quaternion", {"qform_code": header.qform_code}))
    if header.sform_code == 0 and header.qform_code == 0:
        problems.append(("no_transform", "neither sform nor qform is set (both codes 0): tools guess the orientation",
                         {}))
    if header.sform is not None and header.qform is not None:
        deviation = corner_deviation_mm(header.sform, header.qform, header.shape)
        if deviation > spec.geometry.affine_tolerance_mm:
            problems.append(("sform_qform", f"sform and qform disagree by up to {deviation:.4g} mm"
                             + _itk_reads(header, spec), {"max_deviation_mm": deviation}))
    error = _orthonormality_error(header)
    itk_refuses = "itk" in spec.readers and header.itk is not None and header.itk.refusal == "not_orthonormal"
    if error > spec.geometry.orthonormal_tolerance or itk_refuses:
        problems.append(("not_orthonormal", f"direction cosines are not orthonormal (max |RᵀR - I| = {error:.3g})"
                         + _itk_reads(header, spec),
                         {"orthonormality_error": error, "tolerance": spec.geometry.orthonormal_tolerance}))
    return problems


def readers_disagree(header: HeaderFacts, spec: ReleaseSpec) -> tuple[str, str, dict] | None:
    """The image's placements under nibabel and under ITK, when they are further apart than the tolerance."""
    placed = placements(header, spec)
    if placed.get("nibabel") is None or placed.get("itk") is None:
        return None
    deviation = corner_deviation_mm(placed["itk"], placed["nibabel"], header.shape)
    if deviation <= spec.geometry.affine_tolerance_mm:
        return None
    itk, nib = header.itk.transform, nibabel_transform(header)
    if itk != nib:
        why = f"ITK reads the {itk}, nibabel the {nib}"
    else:
        columns = np.linalg.norm(np.asarray(header.affine)[:3, :3], axis=0)
        why = (f"ITK takes voxel sizes from pixdim ({', '.join(f'{z:g}' for z in header.zooms[:3])} mm), nibabel from "
               f"the {nib}'s columns ({', '.join(f'{z:.4g}' for z in columns)} mm)")
    return ("readers_disagree", f"nibabel and ITK place the grid up to {deviation:.4g} mm apart: {why}",
            {"max_deviation_mm": deviation, "nibabel_affine": placed["nibabel"], "itk_affine": placed["itk"],
             "nibabel_transform": nib, "itk_transform": itk})


def affine_unusable(found: list[Finding]) -> bool:
    """Whether the findings say an affine means nothing, so nothing may be judged against it."""
    return any(f.code == "GEOM_AFFINE_INVALID" and f.subcode in UNUSABLE_AFFINE for f in found)


def _invalid_affine(spec: ReleaseSpec, case: str, path: str, header: HeaderFacts) -> list[Finding]:
    return [finding(spec, "GEOM_AFFINE_INVALID", case, path, f"{path}: {message}", subcode=subcode, **details)
            for subcode, message, details in affine_problems(header, spec)]


def check_image_grid(case: str, path: str, image: HeaderFacts, spec: ReleaseSpec) -> list[Finding]:
    found = _invalid_affine(spec, case, path, image)
    unusable = affine_unusable(found)
    disagreement = None if unusable else readers_disagree(image, spec)
    # ITK reading the qform that nibabel ignores is the sform_qform finding's consequence, already said there
    if disagreement is not None and not any(f.subcode == "sform_qform" for f in found):
        subcode, message, details = disagreement
        found.append(finding(spec, "GEOM_AFFINE_INVALID", case, path, f"{path}: {message}", subcode=subcode,
                             **details))
    geometry = spec.geometry
    spacing = [round(z, 6) for z in image.zooms[:3]]
    # "not within" rather than "beyond" the tolerance, so that a NaN voxel size fails too
    if geometry.spacing is not None and (
        len(spacing) < 3 or not all(abs(a - b) <= geometry.spacing_tolerance for a, b in zip(spacing, geometry.spacing))
    ):
        finite = all(np.isfinite(z) for z in spacing)
        found.append(finding(spec, "GEOM_SPACING", case, path,
                             f"{path}: spacing {' x '.join(f'{z:g}' for z in spacing)} mm, the release has "
                             f"{' x '.join(f'{z:g}' for z in geometry.spacing)} mm",
                             subcode="mismatch" if finite else "not_finite",
                             spacing=spacing, expected=list(geometry.spacing), tolerance=geometry.spacing_tolerance))
    codes = axcodes(image)
    if geometry.axcodes is not None and not unusable and codes != list(geometry.axcodes):
        found.append(finding(spec, "GEOM_ORIENTATION", case, path,
                             f"{path}: axis codes {''.join(c or '?' for c in codes)}, the release has "
                             f"{''.join(geometry.axcodes)}",
                             axcodes=codes, expected=list(geometry.axcodes)))
    return found


@dataclass(frozen=True)
class Misplaced:
    """How far each reader puts a mask's grid from where it puts its image's."""

    deviations: dict[str, float]
    tolerance: float

    @property
    def readers(self) -> list[str]:
        return [r for r, d in self.deviations.items() if not d <= self.tolerance]


def misplaced(mask: HeaderFacts, image: HeaderFacts, spec: ReleaseSpec, readers: list[str]) -> Misplaced:
    """Each reader's corner deviation between mask and image; a reader that refuses either file is left out."""
    mask_at, image_at = placements(mask, spec, readers), placements(image, spec, readers)
    deviations = {reader: corner_deviation_mm(mask_at[reader], image_at[reader], image.shape)
                  for reader in mask_at if mask_at[reader] is not None and image_at.get(reader) is not None}
    return Misplaced(deviations, spec.geometry.affine_tolerance_mm)


def _mismatch_message(path: str, off: Misplaced) -> tuple[str, str]:
    """(subcode, message): which readers put the mask away from its image, and how far."""
    readers, deviations = off.readers, off.deviations
    far = max(deviations[r] for r in readers)
    if len(readers) == len(deviations) and len(readers) > 1:
        return "both", f"{path}: affine differs from its image's by up to {far:.4g} mm (nibabel and ITK alike)"
    [reader] = readers
    name = "ITK" if reader == "itk" else "nibabel"
    others = ", ".join(f"{'ITK' if r == 'itk' else 'nibabel'} {d:.3g} mm" for r, d in deviations.items() if r != reader)
    return reader, (f"{path}: {name} places it up to {far:.4g} mm from its image" +
                    (f" ({others}: aligned)" if others else ""))


@dataclass(frozen=True)
class MaskHeaderVerdict:
    """What a mask header says against its image's, whichever mask carries it."""

    shape_differs: bool
    off: Misplaced | None
    problems: list[tuple[str, str, dict]]


def judge_mask_header(mask: HeaderFacts, image: HeaderFacts, spec: ReleaseSpec,
                      readers: list[str]) -> MaskHeaderVerdict:
    """A mask header against its image's under the given readers (none: the image's affine means nothing)."""
    if mask.shape[:3] != image.shape[:3]:
        return MaskHeaderVerdict(True, None, [])
    # Masks written from their image's header place the grid exactly as it does under every reader: most of a
    # release's masks need no measuring.
    if not readers or placements(mask, spec, readers) == placements(image, spec, readers):
        return MaskHeaderVerdict(False, None, [])
    off = misplaced(mask, image, spec, readers)
    if not off.readers:
        return MaskHeaderVerdict(False, None, [])
    return MaskHeaderVerdict(False, off, affine_problems(mask, spec))


def mask_findings(case: str, name: str, path: str, mask: HeaderFacts, image: HeaderFacts, spec: ReleaseSpec,
                  verdict: MaskHeaderVerdict) -> list[Finding]:
    if verdict.shape_differs:
        return [finding(spec, "GEOM_SHAPE_MISMATCH", case, path,
                        f"{path}: shape {tuple(mask.shape)}, its image has {tuple(image.shape)}", subcode="size",
                        class_name=name, shape=list(mask.shape), image_shape=list(image.shape))]
    found = []
    if len(mask.shape) != 3:
        # nibabel keeps the extra axes: ct[mask > 0] with a (x, y, z, 1) mask raises an IndexError
        found.append(finding(spec, "GEOM_SHAPE_MISMATCH", case, path,
                             f"{path}: {len(mask.shape)}-D, shape {tuple(mask.shape)}: masks are 3-D like their "
                             f"image {tuple(image.shape)}; drop the extra axes", subcode="ndim", class_name=name,
                             shape=list(mask.shape), image_shape=list(image.shape)))
    off = verdict.off
    if off is None:
        return found
    subcode, message = _mismatch_message(path, off)
    details = {"max_deviation_mm": max(off.deviations[r] for r in off.readers),
               "tolerance_mm": spec.geometry.affine_tolerance_mm, "affine": mask.affine, "image_affine": image.affine}
    details |= {f"{reader}_deviation_mm": deviation for reader, deviation in off.deviations.items()}
    if "itk" in off.deviations:
        details |= {"itk_affine": mask.itk.affine, "image_itk_affine": image.itk.affine}
    found.append(finding(spec, "GEOM_AFFINE_MISMATCH", case, path, message, subcode=subcode, class_name=name,
                         **details))
    return found + [finding(spec, "GEOM_AFFINE_INVALID", case, path, f"{path}: {text}", subcode=problem,
                            class_name=name, **more) for problem, text, more in verdict.problems]


def mask_readers(image_findings: list[Finding], image: HeaderFacts, spec: ReleaseSpec) -> list[str]:
    """The readers under which masks are compared with their image. An image whose affine means nothing is one
    finding: comparing 117 masks with it would only repeat it. An image that the readers place apart is one finding
    too: under ITK every mask written with the sform alone is off by just that, so masks are compared under nibabel."""
    if affine_unusable(image_findings):
        return []
    if readers_disagree(image, spec) is not None:
        return [r for r in spec.readers if r == "nibabel"] or spec.readers[:1]
    return list(spec.readers)


@check("geometry.case", ("GEOM_SPACING", "GEOM_ORIENTATION", "GEOM_AFFINE_INVALID", "GEOM_SHAPE_MISMATCH",
                         "GEOM_AFFINE_MISMATCH"))
def check_case_geometry(case: CaseFacts, ctx: Context) -> list[Finding]:
    spec = ctx.spec
    image_path = f"{case.case}/{spec.image}"
    image = ctx.usable_header(case, case.files.get(image_path))
    if image is None:
        return []
    found = check_image_grid(case.case, image_path, image, spec)
    readers = mask_readers(found, image, spec)
    # A case's masks share a handful of distinct headers (the scan hands identical headers out as one object): each
    # distinct header is judged once.
    verdicts: dict[int, MaskHeaderVerdict] = {}
    for name, path, mask in ctx.mask_headers(case):
        if mask is None:
            continue
        if id(mask) not in verdicts:
            verdicts[id(mask)] = judge_mask_header(mask, image, spec, readers)
        found += mask_findings(case.case, name, path, mask, image, spec, verdicts[id(mask)])
    return found
