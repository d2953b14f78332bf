"""Checks of stored data types: the image's voxel type, and each mask's type and scaling."""

from __future__ import annotations

from qa.checks.base import Context, check, finding
from qa.rules.finding import Finding
from qa.scan.facts import CaseFacts


@check("dtypes.case", ("IMAGE_DTYPE", "LABEL_DTYPE"))
def check_case_dtypes(case: CaseFacts, ctx: Context) -> list[Finding]:
    spec = ctx.spec
    found = []
    image_path = f"{case.case}/{spec.image}"
    image = ctx.usable_header(case, case.files.get(image_path))
    if image is not None and image.dtype not in spec.image_dtypes:
        # the stored type is judged, not what the scaling loads: readers of stored values do not apply it
        scaled = (image.loaded(0), image.loaded(1)) != (0.0, 1.0)
        scaling = f" (scl_slope {image.slope:g}, scl_inter {image.inter:g})" if scaled else ""
        found.append(finding(spec, "IMAGE_DTYPE", case.case, image_path,
                             f"{image_path}: stored as {image.dtype}{scaling}, the release allows "
                             f"{', '.join(spec.image_dtypes)}",
                             dtype=image.dtype, allowed=spec.image_dtypes, slope=image.slope, inter=image.inter))
    # the masks of a case share a few header objects (the scan parses each distinct header once): a header without a
    # problem is passed over at once
    fine: set[int] = set()
    for name, path, mask in ctx.mask_headers(case):
        if mask is None or id(mask) in fine:
            continue
        if mask.dtype in spec.mask_dtypes and (mask.loaded(0), mask.loaded(1)) == (0.0, 1.0):
            fine.add(id(mask))
            continue
        if mask.dtype not in spec.mask_dtypes:
            found.append(finding(spec, "LABEL_DTYPE", case.case, path,
                                 f"{path}: stored as {mask.dtype}, the release allows {', '.join(spec.mask_dtypes)}",
                                 subcode="dtype", class_name=name, dtype=mask.dtype, allowed=spec.mask_dtypes))
        zero, one = mask.loaded(0), mask.loaded(1)
        if (zero, one) != (0.0, 1.0):
            found.append(finding(spec, "LABEL_DTYPE", case.case, path,
                                 f"{path}: scaling (slope {mask.slope}, intercept {mask.inter}) loads stored 0 and 1 "
                                 f"as {zero:g} and {one:g}",
                                 subcode="scaling", class_name=name, slope=mask.slope, inter=mask.inter,
                                 zero_loads_as=zero, one_loads_as=one))
    return found
