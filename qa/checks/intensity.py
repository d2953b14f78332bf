"""The image's intensities: whether it is a CT in HU at all, and the image inside each mask against its class's
plausible range: a 'liver' at -800 HU is lung (deep mode)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from qa.checks.base import Context, check, finding, usable_header
from qa.rules.finding import Detail, Finding
from qa.rules.spec import HuGroup
from qa.scan.facts import CaseFacts
from qa.scan.measures import image_mean_sd


@dataclass(frozen=True)
class Judged:
    """A mask that labels.hu judges: its class, path, the image's mean and standard deviation inside it, its group."""

    name: str
    path: str
    mean: float
    sd: float
    voxels: int
    group_name: str
    group: HuGroup

    @property
    def out_of_range(self) -> bool:
        low, high = self.group.range
        return not low <= self.mean <= high


@dataclass(frozen=True)
class NotCt:
    """Why a case's image is no CT in HU: the subcode, the reason in words, and the measured numbers."""

    subcode: str
    why: str
    details: dict[str, Detail]


def judged_masks(case: CaseFacts, ctx: Context) -> list[Judged]:
    """The case's masks large enough and of a class with an HU group, with the image's mean inside each."""
    spec = ctx.spec
    rule = spec.labels.hu
    image = usable_header(case.files.get(f"{case.case}/{spec.image}"), spec)
    if image is None or not rule.groups:
        return []
    judged = []
    for name, m in ctx.measured_masks(case).items():
        grouped = None if m.values.voxels < rule.min_voxels else rule.group_of(name)
        measured = None if grouped is None else image_mean_sd(m.values, image)
        if measured is not None:
            judged.append(Judged(name, m.path, measured[0], measured[1], m.values.voxels, *grouped))
    return judged


def not_ct(case: CaseFacts, ctx: Context) -> NotCt | None:
    """Why the case's image cannot be a CT in HU (values.hu_scale), or None: judged before its masks' HU, which a
    broken image throws off all at once."""
    values, scale = case.deep.image, ctx.spec.values.hu_scale
    if values is None or values.min is None or values.max is None or "p1" not in values.percentiles:
        return None
    low, high = values.min, values.max
    p1, p99 = values.percentiles["p1"], values.percentiles["p99"]
    numbers: dict[str, Detail] = {"min": low, "max": high, "p1": p1, "p99": p99}
    if low >= 0 and 1 <= high <= scale.label_max and float(low).is_integer() and float(high).is_integer():
        return NotCt("label_map", f"whole numbers from {low:g} to {high:g} only: a segmentation, not a CT",
                     numbers | {"label_max": scale.label_max})
    judged = judged_masks(case, ctx)
    # a body in under 1% of a wide field of view leaves p1 to p99 in the air, but its masks hold tissue
    flat = all(abs(j.mean - (p1 + p99) / 2) <= scale.blank_spread for j in judged)
    if p99 - p1 <= scale.blank_spread and flat:
        return NotCt("blank", f"98% of the voxels between {p1:g} and {p99:g} HU: no anatomy, a blank image",
                     numbers | {"blank_spread": scale.blank_spread})
    if low >= scale.shifted_min:
        return NotCt("shifted", f"no voxel below {scale.shifted_min:g} HU (minimum {low:g}): no air, lung or fat, "
                                "raw scanner values without their intercept",
                     numbers | {"shifted_min": scale.shifted_min})
    above = [j.mean - j.group.range[1] for j in judged if j.mean > j.group.range[1]]
    if len(judged) >= scale.shifted_min_masks and len(above) >= scale.shifted_mask_share * len(judged):
        excess = statistics.median(above)
        return NotCt("shifted", f"{len(above)} of its {len(judged)} masks judged lie above their HU range, by "
                                f"{excess:.0f} HU in the median: raw scanner values without their intercept",
                     numbers | {"masks_above_range": len(above), "masks_judged": len(judged),
                                "median_excess_hu": round(excess, 1), "shifted_mask_share": scale.shifted_mask_share})
    return None


@check("intensity.ct", ("IMAGE_NOT_CT",), needs="deep")
def check_not_ct(case: CaseFacts, ctx: Context) -> list[Finding]:
    """A blank, shifted or label-map image: one error on the image, not a warning on each of its masks."""
    broken = not_ct(case, ctx)
    if broken is None:
        return []
    path = f"{case.case}/{ctx.spec.image}"
    off = sum(j.out_of_range for j in judged_masks(case, ctx))
    masks = f"; the HU of its masks is not judged ({off} out of their range, LABEL_HU left out)" if off else ""
    return [finding(ctx.spec, "IMAGE_NOT_CT", case.case, path, f"{path}: {broken.why}{masks}",
                    subcode=broken.subcode, masks_out_of_range=off, **broken.details)]


@check("intensity.hu", ("LABEL_HU",), needs="deep")
def check_hu(case: CaseFacts, ctx: Context) -> list[Finding]:
    if not_ct(case, ctx) is not None:  # the image is at fault, reported once as IMAGE_NOT_CT
        return []
    found = []
    for j in judged_masks(case, ctx):
        (low, high), group_name = j.group.range, j.group_name
        severity = None
        if j.mean < low:
            subcode, why = "low", f"mean {j.mean:.0f} HU below {group_name}'s {low:g}"
        elif j.mean > high:
            subcode, why, severity = "high", f"mean {j.mean:.0f} HU above {group_name}'s {high:g}", j.group.high
        elif j.group.sd_max is not None and j.sd > j.group.sd_max:
            subcode, why = "spread", f"standard deviation {j.sd:.0f} HU above {group_name}'s {j.group.sd_max:g}"
        else:
            continue
        found.append(finding(ctx.spec, "LABEL_HU", case.case, j.path,
                             f"{j.path}: {why}: the mask does not hold {j.name} tissue (mislabel, swap or misplaced)",
                             subcode=subcode, severity=severity, class_name=j.name, mean_hu=round(j.mean, 1),
                             sd_hu=round(j.sd, 1), group=group_name, range=list(j.group.range),
                             sd_max=j.group.sd_max, voxels=j.voxels))
    return found
