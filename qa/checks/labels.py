"""Checks of the deep pass: broken streams, mask values, overlaps, empty cases, image values, cases tsqa could not check."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

from qa.checks import finding
from qa.facts import CaseFacts, HeaderFacts, Overlap
from qa.report import Finding
from qa.spec import ReleaseSpec, Severity


def check_streams(case: CaseFacts, spec: ReleaseSpec) -> list[Finding]:
    """A stream that fails its CRC or length anywhere: the quick pass cannot see it, a reader crashes on it."""
    return [finding(spec, "FILE_CORRUPT", case.case, path, f"{path}: {stream.error}", variant="stream",
                    reason=stream.error, inflated_bytes=stream.inflated_bytes)
            for path, stream in sorted(case.deep.streams.items()) if stream.error is not None]


def check_image_values(case: CaseFacts, spec: ReleaseSpec) -> list[Finding]:
    values, path = case.deep.image, f"{case.case}/{spec.image}"
    if values is None:
        return []
    low, high = spec.values.image_min, spec.values.image_max
    problems = []
    if values.nan_count or values.inf_count:
        problems.append(f"{values.nan_count} NaN and {values.inf_count} infinite voxels")
    if low is not None and values.min is not None and values.min < low:
        problems.append(f"minimum {values.min:g} below {low:g}")
    if high is not None and values.max is not None and values.max > high:
        problems.append(f"maximum {values.max:g} above {high:g}")
    if not problems:
        return []
    return [finding(spec, "IMAGE_VALUES", case.case, path, f"{path}: {'; '.join(problems)}",
                    min=values.min, max=values.max, nan_count=values.nan_count, inf_count=values.inf_count,
                    plausible_min=low, plausible_max=high)]


def check_mask_values(case: CaseFacts, spec: ReleaseSpec) -> list[Finding]:
    found = []
    expected = {f"{case.case}/{spec.mask_file(name)}" for name in spec.classes}
    for path, values in sorted(case.deep.masks.items()):
        if path in expected and values.other_values:
            listed = ", ".join(f"{v} ({n} voxels)" for v, n in values.other_values.items())
            found.append(finding(spec, "LABEL_VALUES", case.case, path, f"{path}: values other than 0 and 1: {listed}",
                                 values=values.other_values))
    return found


def check_all_empty(case: CaseFacts, spec: ReleaseSpec) -> list[Finding]:
    expected = [f"{case.case}/{spec.mask_file(name)}" for name in spec.classes]
    measured = [case.deep.masks[p] for p in expected if p in case.deep.masks]
    if not measured or any(m.voxels for m in measured):
        return []
    mask_dir = f"{case.case}/{spec.mask_dir}"
    return [finding(spec, "LABEL_ALL_EMPTY", case.case, mask_dir, f"{mask_dir}: all {len(measured)} masks are empty",
                    masks=len(measured))]


def overlap_severity(share: float, spec: ReleaseSpec) -> Severity:
    if share >= spec.values.overlap_error_share:
        return "error"
    return "warning" if share >= spec.values.overlap_warning_share else "info"


def voxel_ml(header: HeaderFacts) -> float:
    return math.prod(abs(z) for z in header.zooms[:3]) / 1000.0


@dataclass(frozen=True)
class SharedVoxels:
    """An overlap in the units people judge it by: the two classes, the volume, and the share of the smaller mask."""

    class_a: str
    class_b: str
    voxels: int
    volume_ml: float
    share: float


def shared_voxels(case: CaseFacts, spec: ReleaseSpec, overlap: Overlap) -> SharedVoxels:
    smaller = min(case.deep.masks[overlap.first].voxels, case.deep.masks[overlap.second].voxels)
    return SharedVoxels(class_a=spec.class_of(case.case, overlap.first), class_b=spec.class_of(case.case, overlap.second),
                        voxels=overlap.voxels, volume_ml=overlap.voxels * voxel_ml(case.files[overlap.second].header),
                        share=overlap.voxels / smaller)


def check_overlaps(case: CaseFacts, spec: ReleaseSpec) -> list[Finding]:
    found = []
    for overlap in case.deep.overlaps:
        s = shared_voxels(case, spec, overlap)
        found.append(finding(spec, "LABEL_OVERLAP", case.case, overlap.second,
                             f"{s.class_b} shares {s.voxels} voxels ({s.volume_ml:.2f} mL, {s.share:.1%} of the smaller "
                             f"mask) with {s.class_a}",
                             class_a=s.class_a, class_b=s.class_b, path_a=overlap.first, voxels=s.voxels,
                             volume_ml=round(s.volume_ml, 4), share_of_smaller=round(s.share, 6),
                             severity=overlap_severity(s.share, spec)))
    return found


def check_case_deep(case: CaseFacts, spec: ReleaseSpec) -> list[Finding]:
    if case.deep is None:
        return []
    return (check_streams(case, spec) + check_image_values(case, spec) + check_mask_values(case, spec)
            + check_all_empty(case, spec) + check_overlaps(case, spec) + check_padding(case, spec))


def check_internal(case: CaseFacts, spec: ReleaseSpec) -> list[Finding]:
    if case.internal_error is None:
        return []
    return [finding(spec, "QA_INTERNAL", case.case, case.case, f"{case.case} could not be checked: {case.internal_error}",
                    error=case.internal_error)]


def check_padding(case: CaseFacts, spec: ReleaseSpec) -> list[Finding]:
    """Masks reaching where the image is only padding: beyond the scanned volume there is nothing to label."""
    found = []
    for name in spec.classes:
        path = f"{case.case}/{spec.mask_file(name)}"
        values = case.deep.masks.get(path)
        if values is None or not values.padding_voxels or any(fnmatch.fnmatch(name, p) for p in spec.values.padding_exempt):
            continue
        share = values.padding_voxels / values.voxels
        if share >= spec.values.padding_share:
            found.append(finding(spec, "LABEL_IN_PADDING", case.case, path,
                                 f"{path}: {values.padding_voxels} voxels ({share:.1%} of the mask) lie in the image's padding "
                                 f"(value {case.deep.image.padding_value:g})",
                                 voxels=values.padding_voxels, share=round(share, 6), padding_value=case.deep.image.padding_value))
    return found
