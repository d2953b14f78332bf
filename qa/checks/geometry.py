"""Checks of geometry: the image's spacing, orientation and affine, and every mask's grid against its image."""

from __future__ import annotations

import itertools

import numpy as np
from nibabel.orientations import aff2axcodes

from qa.checks.base import Context, check, finding, mask_paths, usable_header
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts, HeaderFacts

# Problems after which the affine says nothing about where the image is: orientation and mask affines are not judged.
UNUSABLE_AFFINE = ("non_finite", "singular", "no_transform", "bad_quaternion", "bad_code")
# NIfTI's transform codes: unknown, scanner, aligned, Talairach, MNI 152, other template.
XFORM_CODES = range(0, 6)


def corner_deviation_mm(a: list[list[float]], b: list[list[float]], shape: tuple[int, ...]) -> float:
    """The largest distance between where two affines put a corner of the grid: a deviation a person can picture."""
    extent = [max(n - 1, 0) for n in shape[:3]] + [0] * (3 - len(shape[:3]))
    corners = np.array([[*c, 1.0] for c in itertools.product(*[(0, n) for n in extent])]).T
    with np.errstate(all="ignore"):
        diff = (np.asarray(a) - np.asarray(b)) @ corners
    deviation = float(np.max(np.linalg.norm(diff[:3], axis=0)))
    return deviation if np.isfinite(deviation) else float("inf")


def axcodes(header: HeaderFacts) -> list[str | None]:
    try:
        with np.errstate(all="ignore"):
            return list(aff2axcodes(np.asarray(header.affine)))
    except (ValueError, np.linalg.LinAlgError):
        return [None, None, None]


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
            problems.append(("bad_code", f"{name} {code} is not a NIfTI transform code (0 to 5): nibabel and ITK read "
                             "such a header differently", {name: code}))
    if header.qform_error is not None and header.sform is None:
        problems.append(("bad_quaternion", f"qform_code {header.qform_code} but {header.qform_error}; readers fall "
                         "back to a guessed affine", {"qform_code": header.qform_code}))
    if header.sform_code == 0 and header.qform_code == 0:
        problems.append(("no_transform", "neither sform nor qform is set (both codes 0): tools guess the orientation",
                         {}))
    if header.sform is not None and header.qform is not None:
        deviation = corner_deviation_mm(header.sform, header.qform, header.shape)
        if deviation > spec.geometry.affine_tolerance_mm:
            problems.append(("sform_qform", f"sform and qform disagree by up to {deviation:.4g} mm",
                             {"max_deviation_mm": deviation}))
    error = float(np.max(np.abs((rotation / norms).T @ (rotation / norms) - np.eye(3))))
    if error > spec.geometry.orthonormal_tolerance:
        problems.append(("not_orthonormal", f"direction cosines are not orthonormal (max |RᵀR - I| = {error:.3g})",
                         {"orthonormality_error": error, "tolerance": spec.geometry.orthonormal_tolerance}))
    return problems


def affine_unusable(found: list[Finding]) -> bool:
    """Whether the findings say an affine means nothing, so nothing may be judged against it."""
    return any(f.code == "GEOM_AFFINE_INVALID" and f.subcode in UNUSABLE_AFFINE for f in found)


def _invalid_affine(spec: ReleaseSpec, case: str, path: str, header: HeaderFacts,
                    class_name: str | None = None) -> list[Finding]:
    return [finding(spec, "GEOM_AFFINE_INVALID", case, path, f"{path}: {message}", subcode=subcode,
                    class_name=class_name, **details)
            for subcode, message, details in affine_problems(header, spec)]


def check_image_grid(case: str, path: str, image: HeaderFacts, spec: ReleaseSpec) -> list[Finding]:
    found = _invalid_affine(spec, case, path, image)
    unusable = affine_unusable(found)
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


def check_mask_grid(case: str, name: str, path: str, mask: HeaderFacts, image: HeaderFacts, spec: ReleaseSpec,
                    compare_affine: bool = True) -> list[Finding]:
    if mask.shape[:3] != image.shape[:3] or any(n != 1 for n in mask.shape[3:]):
        return [finding(spec, "GEOM_SHAPE_MISMATCH", case, path,
                        f"{path}: shape {tuple(mask.shape)}, its image has {tuple(image.shape)}", class_name=name,
                        shape=list(mask.shape), image_shape=list(image.shape))]
    # Masks written from their image's header carry its affine exactly; most of a release's masks need no measuring.
    if not compare_affine or mask.affine == image.affine:
        return []
    deviation = corner_deviation_mm(mask.affine, image.affine, image.shape)
    if deviation <= spec.geometry.affine_tolerance_mm:
        return []
    found = [finding(spec, "GEOM_AFFINE_MISMATCH", case, path,
                     f"{path}: affine differs from its image's by up to {deviation:.4g} mm", class_name=name,
                     max_deviation_mm=deviation, tolerance_mm=spec.geometry.affine_tolerance_mm,
                     affine=mask.affine, image_affine=image.affine)]
    return found + _invalid_affine(spec, case, path, mask, name)


@check("geometry.case", ("GEOM_SPACING", "GEOM_ORIENTATION", "GEOM_AFFINE_INVALID", "GEOM_SHAPE_MISMATCH",
                         "GEOM_AFFINE_MISMATCH"))
def check_case_geometry(case: CaseFacts, ctx: Context) -> list[Finding]:
    spec = ctx.spec
    image_path = f"{case.case}/{spec.image}"
    image = usable_header(case.files.get(image_path), spec)
    if image is None:
        return []
    found = check_image_grid(case.case, image_path, image, spec)
    # An image whose affine means nothing is one finding; comparing 117 masks with it would only repeat it.
    compare = not affine_unusable(found)
    for name, path in mask_paths(case, spec):
        mask = usable_header(case.files.get(path), spec)
        if mask is not None:
            found += check_mask_grid(case.case, name, path, mask, image, spec, compare_affine=compare)
    return found
