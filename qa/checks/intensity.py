"""The image inside each mask against its class's plausible range: a 'liver' at -800 HU is lung (deep mode)."""

from __future__ import annotations

from qa.checks.base import Context, check, finding, usable_header
from qa.rules.finding import Finding
from qa.scan.facts import CaseFacts
from qa.scan.measures import image_mean_sd


@check("intensity.hu", ("LABEL_HU",), needs="deep")
def check_hu(case: CaseFacts, ctx: Context) -> list[Finding]:
    spec = ctx.spec
    rule = spec.labels.hu
    image = usable_header(case.files.get(f"{case.case}/{spec.image}"), spec)
    if image is None or not rule.groups:
        return []
    found = []
    for name, m in ctx.measured_masks(case).items():
        grouped = None if m.values.voxels < rule.min_voxels else rule.group_of(name)
        measured = None if grouped is None else image_mean_sd(m.values, image)
        if measured is None:
            continue
        group_name, group = grouped
        (mean, sd), (low, high) = measured, group.range
        severity = None
        if mean < low:
            subcode, why = "low", f"mean {mean:.0f} HU below {group_name}'s {low:g}"
        elif mean > high:
            subcode, why, severity = "high", f"mean {mean:.0f} HU above {group_name}'s {high:g}", group.high
        elif group.sd_max is not None and sd > group.sd_max:
            subcode, why = "spread", f"standard deviation {sd:.0f} HU above {group_name}'s {group.sd_max:g}"
        else:
            continue
        found.append(finding(spec, "LABEL_HU", case.case, m.path,
                             f"{m.path}: {why}: the mask does not hold {name} tissue (mislabel, swap or misplaced)",
                             subcode=subcode, severity=severity, class_name=name, mean_hu=round(mean, 1),
                             sd_hu=round(sd, 1), group=group_name, range=list(group.range), sd_max=group.sd_max,
                             voxels=m.values.voxels))
    return found
