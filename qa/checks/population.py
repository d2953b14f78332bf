"""Each class over the whole release: masks far from their class's typical size, and classes drifting from the
spec's reference table (deep mode, release scope)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from qa.checks.base import Context, check, finding
from qa.rules.finding import Finding
from qa.rules.spec import DriftTolerance, OutlierSpec, ReleaseSpec
from qa.scan.measures import (
    ClassDrift,
    Measured,
    extent_mm,
    head_to_feet_axis,
    volume_ml,
)

# The MAD of a normal distribution is 0.6745 of its standard deviation: this factor makes z comparable to one.
MAD_TO_SD = 0.6745


@dataclass(frozen=True)
class Observation:
    """One whole mask's value, and the step in which it is measured (a slice, for an extent; 0: continuous)."""

    case: str
    mask: Measured
    value: float
    step: float = 0.0


def robust_z(values: list[float], floor: float) -> tuple[float, float]:
    """Median and the MAD (at least `floor`) of a list of numbers."""
    median = statistics.median(values)
    return median, max(statistics.median(abs(v - median) for v in values), floor)


def _quartiles(values: list[float]) -> list[float]:
    return [round(q, 3) for q in statistics.quantiles(values, n=4, method="inclusive")]


def body_sizes(observed: dict[str, list[Observation]], spec: ReleaseSpec) -> dict[str, float]:
    """Each case's size as its whole masks tell it: the median, over the judged classes it has, of how far (in logs)
    its mask lies from its class's median; 0 for a case with fewer than min_classes such masks. Organs scale with
    the body: taken out, a large organ of a small person stands out, a large person's organs do not. Chain members
    do not speak: two dozen vertebrae and ribs that grow together would make the spine the body's size."""
    rule = spec.labels.outliers
    chained = {name for chain in spec.labels.chains for name in chain.members}
    offsets: dict[str, list[float]] = {}
    for name, items in observed.items():
        if len(items) < rule.min_cases or name in chained:
            continue
        median = statistics.median(math.log(o.value) for o in items)
        for o in items:
            offsets.setdefault(o.case, []).append(math.log(o.value) - median)
    return {case: statistics.median(found) if len(found) >= rule.min_classes else 0.0
            for case, found in offsets.items()}


def class_outliers(spec: ReleaseSpec, rule: OutlierSpec, subcode: str, unit: str, observed: list[Observation],
                   sizes: dict[str, float]) -> list[Finding]:
    """Observations whose log, less its case's body size, lies at least rule.z_info robust standard deviations from
    the class's median."""
    if len(observed) < rule.min_cases:
        return []
    logs = [math.log(o.value) - sizes.get(o.case, 0.0) for o in observed]
    # a value measured in whole slices cannot tell one slice more from natural spread: one step is the least MAD
    resolution = statistics.median(o.step / o.value for o in observed)
    median, mad = robust_z(logs, max(rule.mad_floor, resolution))
    quartiles = _quartiles([o.value for o in observed])
    warn = len(observed) >= rule.min_cases_warning
    found = []
    for o, log in zip(observed, logs):
        z = MAD_TO_SD * (log - median) / mad
        if abs(z) < rule.z_info:
            continue
        name, path = o.mask.name, o.mask.path
        what = "volume" if subcode == "volume" else "head-to-feet extent"
        size = sizes.get(o.case, 0.0)
        found.append(finding(
            spec, "LABEL_OUTLIER", o.case, path,
            f"{path}: {what} {o.value:.4g} {unit} is {math.exp(log - median):.2g}x the median of {len(observed)} "
            f"whole {name} masks for a body of this case's size ({math.exp(size):.2f}x the typical; robust z "
            f"{z:+.1f})",
            subcode=subcode, severity="warning" if abs(z) >= rule.z_warning and warn else "info", class_name=name,
            z=round(z, 2), value=round(o.value, 3), unit=unit, median=round(math.exp(median), 3),
            case_size=round(math.exp(size), 3), quartiles=quartiles, masks=len(observed)))
    return found


@check("population.outliers", ("LABEL_OUTLIER",), scope="release", needs="deep")
def check_outliers(ctx: Context) -> list[Finding]:
    spec, rule = ctx.spec, ctx.spec.labels.outliers
    if rule is None:
        return []
    volumes: dict[str, list[Observation]] = {}
    extents: dict[str, list[Observation]] = {}
    for case in ctx.facts.cases:
        for name, m in ctx.measured_masks(case).items():
            if name in rule.exclude or not m.whole:
                continue
            volumes.setdefault(name, []).append(Observation(case.case, m, volume_ml(m.values, m.header)))
            step = abs(m.header.zooms[head_to_feet_axis(m.header)])
            extents.setdefault(name, []).append(Observation(case.case, m, extent_mm(m.values, m.header), step))
    # a class whose typical mask is a few voxels has a volume that is mostly its boundary: not judged by volume
    volumes = {name: items for name, items in volumes.items()
               if statistics.median(o.mask.values.voxels for o in items) >= rule.min_voxels}
    volume_sizes, extent_sizes = body_sizes(volumes, spec), body_sizes(extents, spec)
    found = []
    for name in spec.classes:
        found += class_outliers(spec, rule, "volume", "mL", volumes.get(name, []), volume_sizes)
        found += class_outliers(spec, rule, "extent", "mm", extents.get(name, []), extent_sizes)
    return found


def _beyond(drift: ClassDrift, tolerance: DriftTolerance) -> list[str]:
    """Which of coverage and volume moved at least the tolerance, in size and in standard errors."""
    moved = []
    if drift.coverage_pp is not None and abs(drift.coverage_pp) >= tolerance.coverage_pp \
            and abs(drift.coverage_z) >= tolerance.z:
        moved.append("coverage")
    ratio = drift.volume_ratio
    if ratio is not None and drift.volume_z is not None and max(ratio, 1 / ratio) >= tolerance.volume_ratio \
            and abs(drift.volume_z) >= tolerance.z:
        moved.append("volume")
    return moved


def drift_severity(drift: ClassDrift, spec: ReleaseSpec, subcode: str) -> str | None:
    """warning beyond the reference's warning tolerance, info beyond its info tolerance, else None."""
    if subcode in _beyond(drift, spec.reference.warning):
        return "warning"
    return "info" if subcode in _beyond(drift, spec.reference.info) else None


def _drift_finding(spec: ReleaseSpec, drift: ClassDrift, subcode: str, severity: str) -> Finding:
    if subcode == "coverage":
        message = (f"{drift.name}: in {drift.coverage:.1%} of {drift.cases} cases, against "
                   f"{drift.reference_coverage:.1%} in the reference ({drift.coverage_pp:+.1f} points, "
                   f"z {drift.coverage_z:+.1f})")
    else:
        message = (f"{drift.name}: mean volume {drift.volume_ml:.4g} mL over {drift.present} masks, "
                   f"{drift.volume_ratio:.2f}x the reference's {drift.reference_volume_ml:.4g} mL "
                   f"(z {drift.volume_z:+.1f})")
    return finding(spec, "RELEASE_DRIFT", None, None, message, subcode=subcode, severity=severity,
                   class_name=drift.name, cases=drift.cases, present=drift.present,
                   coverage=_round(drift.coverage), reference_coverage=drift.reference_coverage,
                   coverage_pp=_round(drift.coverage_pp), coverage_z=_round(drift.coverage_z),
                   volume_ml=_round(drift.volume_ml), reference_volume_ml=drift.reference_volume_ml,
                   volume_ratio=_round(drift.volume_ratio), volume_z=_round(drift.volume_z),
                   reference=spec.reference.source)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@check("population.drift", ("RELEASE_DRIFT",), scope="release", needs="deep")
def check_drift(ctx: Context) -> list[Finding]:
    spec = ctx.spec
    if spec.reference is None:
        return []
    found = []
    for drift in ctx.drift:
        if drift.cases < spec.reference.min_cases:
            continue
        for subcode in ("coverage", "volume"):
            severity = drift_severity(drift, spec, subcode)
            if severity is not None:
                found.append(_drift_finding(spec, drift, subcode, severity))
    return found
