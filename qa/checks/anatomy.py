"""Anatomical plausibility: where mask centroids lie relative to each other, by the spec's rules (deep mode)."""

from __future__ import annotations

import numpy as np

from qa.checks.base import Context, check, finding
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts
from qa.scan.measures import Measured

# World coordinates of NIfTI are RAS+: x grows to the subject's right, z towards the head.
RIGHT, SUPERIOR = 0, 2


def centroids(masks: dict[str, Measured]) -> dict[str, np.ndarray]:
    """The world centroid of each non-empty measured mask whose affine places it."""
    found = {}
    for name, m in masks.items():
        if m.centre is not None and np.all(np.isfinite(m.centre)):
            found[name] = m.centre
    return found


def _misplaced(spec: ReleaseSpec, case: CaseFacts, name: str, other: str, subcode: str, message: str,
               centres: dict[str, np.ndarray], by_mm: float) -> Finding:
    path = f"{case.case}/{spec.mask_file(name)}"
    return finding(spec, "LABEL_POSITION", case.case, path, f"{path}: {message} by {by_mm:.1f} mm", subcode=subcode,
                   class_name=name, key=other, other_class=other,
                   centroid_mm=[round(float(v), 2) for v in centres[name]],
                   other_centroid_mm=[round(float(v), 2) for v in centres[other]], by_mm=round(by_mm, 2))


def check_order(case: CaseFacts, spec: ReleaseSpec, centres: dict[str, np.ndarray]) -> list[Finding]:
    """Each present class of a head-to-feet sequence lies below the previous present one."""
    found = []
    for sequence in spec.anatomy.head_to_feet:
        present = [name for name in sequence if name in centres]
        for upper, lower in zip(present, present[1:]):
            by = centres[lower][SUPERIOR] - centres[upper][SUPERIOR]
            if by > spec.anatomy.tolerance_mm:
                found.append(_misplaced(spec, case, lower, upper, "order", f"lies above {upper}", centres, by))
    return found


def check_above(case: CaseFacts, spec: ReleaseSpec, centres: dict[str, np.ndarray]) -> list[Finding]:
    found = []
    for upper, lower in spec.anatomy.above:
        if upper in centres and lower in centres:
            by = centres[lower][SUPERIOR] - centres[upper][SUPERIOR]
            if by > spec.anatomy.tolerance_mm:
                found.append(_misplaced(spec, case, upper, lower, "above", f"lies below {lower}", centres, by))
    return found


def check_sides(case: CaseFacts, spec: ReleaseSpec, centres: dict[str, np.ndarray]) -> list[Finding]:
    """Every X_left lies to the subject's left of its X_right twin."""
    found = []
    if not spec.anatomy.left_right:
        return found
    for left in centres:
        right = left.replace("_left", "_right")
        if "_left" in left and right in centres:
            by = centres[left][RIGHT] - centres[right][RIGHT]
            if by > spec.anatomy.tolerance_mm:
                found.append(_misplaced(spec, case, left, right, "side", f"lies on the subject's right of {right}",
                                        centres, by))
    return found


@check("anatomy.case", ("LABEL_POSITION",), needs="deep")
def check_case_anatomy(case: CaseFacts, ctx: Context) -> list[Finding]:
    spec = ctx.spec
    centres = centroids(ctx.measured_masks(case))
    return check_order(case, spec, centres) + check_above(case, spec, centres) + check_sides(case, spec, centres)
