"""Checks of the deep pass: broken streams, mask values, overlaps, empty cases, image values; cases checked in part
or not at all."""

from __future__ import annotations

import fnmatch

from qa.checks.base import Context, check, finding
from qa.checks.intensity import not_ct
from qa.rules.codes import Severity
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts
from qa.scan.measures import class_overlaps, shared_voxels


@check("labels.streams", ("FILE_CORRUPT",), needs="deep")
def check_streams(case: CaseFacts, ctx: Context) -> list[Finding]:
    """A stream that fails its CRC or length anywhere: the quick pass cannot see it, a reader crashes on it."""
    classes = {path: name for name, path in ctx.mask_paths(case)}
    return [finding(ctx.spec, "FILE_CORRUPT", case.case, path, f"{path}: {stream.error}", subcode="stream",
                    class_name=classes.get(path), reason=stream.error, inflated_bytes=stream.inflated_bytes)
            for path, stream in sorted(case.deep.streams.items()) if stream.error is not None]


@check("labels.image_values", ("IMAGE_VALUES",), needs="deep")
def check_image_values(case: CaseFacts, ctx: Context) -> list[Finding]:
    spec = ctx.spec
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


@check("labels.mask_values", ("LABEL_VALUES",), needs="deep")
def check_mask_values(case: CaseFacts, ctx: Context) -> list[Finding]:
    found = []
    for name, path in ctx.mask_paths(case):
        values = case.deep.masks.get(path)
        if values is not None and values.other_values:
            listed = ", ".join(f"{v} ({n} voxels)" for v, n in values.other_values.items())
            found.append(finding(ctx.spec, "LABEL_VALUES", case.case, path,
                                 f"{path}: values other than 0 and 1: {listed}", class_name=name,
                                 values=values.other_values))
    return found


@check("labels.all_empty", ("LABEL_ALL_EMPTY",), needs="deep")
def check_all_empty(case: CaseFacts, ctx: Context) -> list[Finding]:
    spec = ctx.spec
    measured = [case.deep.masks[p] for _, p in ctx.mask_paths(case) if p in case.deep.masks]
    if not measured or any(m.voxels for m in measured):
        return []
    mask_dir = f"{case.case}/{spec.mask_dir}"
    return [finding(spec, "LABEL_ALL_EMPTY", case.case, mask_dir, f"{mask_dir}: all {len(measured)} masks are empty",
                    masks=len(measured))]


def overlap_severity(share: float, spec: ReleaseSpec) -> Severity:
    if share >= spec.values.overlap_error_share:
        return "error"
    return "warning" if share >= spec.values.overlap_warning_share else "info"


@check("labels.overlaps", ("LABEL_OVERLAP",), needs="deep")
def check_overlaps(case: CaseFacts, ctx: Context) -> list[Finding]:
    found = []
    for overlap in class_overlaps(case, ctx.spec):
        s = shared_voxels(case, ctx.spec, overlap)
        found.append(finding(ctx.spec, "LABEL_OVERLAP", case.case, overlap.second,
                             f"{s.class_b} shares {s.voxels} voxels ({s.volume_ml:.2f} mL, {s.share:.1%} of the "
                             "smaller "
                             f"mask) with {s.class_a}",
                             class_name=s.class_b, key=s.class_a, severity=overlap_severity(s.share, ctx.spec),
                             class_a=s.class_a, class_b=s.class_b, path_a=overlap.first, voxels=s.voxels,
                             volume_ml=round(s.volume_ml, 4), share_of_smaller=round(s.share, 6)))
    return found


@check("labels.padding", ("LABEL_IN_PADDING",), needs="deep")
def check_padding(case: CaseFacts, ctx: Context) -> list[Finding]:
    """Masks reaching where the image is only padding: beyond the scanned volume there is nothing to label."""
    spec = ctx.spec
    if not_ct(case, ctx) is not None:  # a blank or label-map image is all "padding": IMAGE_NOT_CT says why
        return []
    found = []
    for name, path in ctx.mask_paths(case):
        values = case.deep.masks.get(path)
        if values is None or not values.padding_voxels:
            continue
        if any(fnmatch.fnmatch(name, p) for p in spec.values.padding_exempt):
            continue
        share = values.padding_voxels / values.voxels
        if share >= spec.values.padding_share:
            found.append(finding(spec, "LABEL_IN_PADDING", case.case, path,
                                 f"{path}: {values.padding_voxels} voxels ({share:.1%} of the mask) lie in the image's "
                                 f"padding (value {case.deep.image.padding_value:g})", class_name=name,
                                 voxels=values.padding_voxels, share=round(share, 6),
                                 padding_value=case.deep.image.padding_value))
    return found


SKIPPED = {"overlaps": "overlaps with other masks not counted",
           "padding": "masks not measured against the image (padding, HU inside)",
           "pieces": "connected pieces not counted"}


@check("labels.partial", ("QA_PARTIAL",), needs="deep")
def check_partial(case: CaseFacts, ctx: Context) -> list[Finding]:
    """What the deep pass left out to stay within --max-memory: never silently."""
    classes = {path: name for name, path in ctx.mask_paths(case)}
    return [finding(ctx.spec, "QA_PARTIAL", case.case, skipped.path, f"{skipped.path}: {SKIPPED[skipped.what]}: "
                    f"{skipped.reason}", subcode=skipped.what, class_name=classes.get(skipped.path),
                    reason=skipped.reason)
            for skipped in case.deep.skipped]


@check("labels.internal", ("QA_INTERNAL",), scope="unscanned_case")
def check_internal(case: CaseFacts, ctx: Context) -> list[Finding]:
    error = case.internal_error
    return [finding(ctx.spec, "QA_INTERNAL", case.case, case.case, f"{case.case} could not be checked: {error.reason}",
                    subcode=error.kind, error=error.reason)]
