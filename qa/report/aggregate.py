"""Deep-pass numbers for people: per-case label statistics, per-class distributions, overlapping pairs."""

from __future__ import annotations

import statistics

from qa.report.model import ClassStats, DriftStats, ImageStats, LabelStats, OverlapStats
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts, ReleaseFacts
from qa.scan.measures import (
    ClassDrift,
    Measured,
    class_overlaps,
    extent_mm,
    image_mean_sd,
    shared_voxels,
    voxel_ml,
)


def case_labels(case: CaseFacts, spec: ReleaseSpec, masks: dict[str, Measured]) -> dict[str, LabelStats] | None:
    """Per class of the spec, from its measured masks (measured_masks): voxels, mL, mean image value inside, bounding
    box, centroid in world mm."""
    if case.deep is None:
        return None
    labels = {}
    image_facts = case.files.get(f"{case.case}/{spec.image}")
    image = None if image_facts is None else image_facts.header
    # A case's byte-identical empty masks share their facts objects (the scan decodes such a blob once): their
    # statistics are made once.
    made: dict[tuple[int, int], LabelStats] = {}
    for name, m in masks.items():
        values, facts = m.values, m.facts
        known = made.get((id(values), id(facts.header)))
        if known is not None:
            labels[name] = known
            continue
        centroid = None if m.centre is None else [round(float(v), 3) for v in m.centre]
        mean = values.image_sum / values.voxels if values.voxels and values.image_sum is not None else None
        # scaling is linear, so the stored mean scaled is exactly the mean of the loaded values
        mean_hu = None if mean is None or image is None else image.loaded(mean)
        spread = None if image is None else image_mean_sd(values, image)
        labels[name] = LabelStats(
            voxels=values.voxels,
            volume_ml=values.voxels * voxel_ml(facts.header),
            mean_hu=mean_hu,
            bbox=None if values.bbox is None else [list(values.bbox[0]), list(values.bbox[1])],
            centroid_mm=centroid,
            whole=m.whole if values.voxels else None,
            extent_mm=extent_mm(values, facts.header),
            sd_hu=None if spread is None else round(spread[1], 3),
            pieces=None if values.pieces is None else values.pieces.count,
        )
        made[(id(values), id(facts.header))] = labels[name]
    return labels


def image_stats(case: CaseFacts) -> ImageStats | None:
    if case.deep is None or case.deep.image is None:
        return None
    v = case.deep.image
    return ImageStats(voxels=v.voxels, min=v.min, max=v.max, mean=v.mean, percentiles=v.percentiles,
                      nan_count=v.nan_count, inf_count=v.inf_count)


def _quartiles(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def class_stats(labels: list[dict[str, LabelStats]], spec: ReleaseSpec) -> list[ClassStats]:
    result = []
    for name in spec.classes:
        measured = [case[name] for case in labels if name in case]
        present = [s for s in measured if s.voxels > 0]
        whole = [s for s in present if s.whole]
        q1, median, q3 = _quartiles([s.volume_ml for s in whole])
        hu = [s.mean_hu for s in present if s.mean_hu is not None]
        extents = [s.extent_mm for s in whole if s.extent_mm is not None]
        result.append(ClassStats(name=name, cases_present=len(present), cases_checked=len(measured),
                                 volume_ml_median=median, volume_ml_q1=q1, volume_ml_q3=q3,
                                 mean_hu_median=statistics.median(hu) if hu else None, cases_whole=len(whole),
                                 volume_ml_mean=statistics.fmean(s.volume_ml for s in present) if present else None,
                                 extent_mm_median=statistics.median(extents) if extents else None))
    return result


def overlap_stats(facts: ReleaseFacts, spec: ReleaseSpec) -> list[OverlapStats]:
    pairs: dict[tuple[str, str], OverlapStats] = {}
    for case in facts.cases:
        if case.deep is None:
            continue
        for overlap in class_overlaps(case, spec):
            s = shared_voxels(case, spec, overlap)
            key = tuple(sorted((s.class_a, s.class_b)))
            old = pairs.get(key) or OverlapStats(class_a=key[0], class_b=key[1], cases=0, voxels=0, volume_ml=0.0,
                                                 max_share=0.0)
            pairs[key] = OverlapStats(class_a=key[0], class_b=key[1], cases=old.cases + 1, voxels=old.voxels + s.voxels,
                                      volume_ml=old.volume_ml + s.volume_ml, max_share=max(old.max_share, s.share))
    return sorted(pairs.values(), key=lambda o: (-o.volume_ml, o.class_a, o.class_b))


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def drift_stats(drift: list[ClassDrift], findings: list[Finding]) -> list[DriftStats]:
    """Every class of the spec's reference table against the release (class_drift), with the severity its
    RELEASE_DRIFT findings got; the classes that moved most first."""
    judged = {(f.class_name, f.subcode): f.severity for f in findings if f.code == "RELEASE_DRIFT"}
    rows = [DriftStats(name=d.name, cases=d.cases, present=d.present, coverage=_round(d.coverage),
                       reference_coverage=d.reference_coverage, coverage_pp=_round(d.coverage_pp, 2),
                       coverage_z=_round(d.coverage_z, 2), volume_ml=_round(d.volume_ml, 3),
                       reference_volume_ml=d.reference_volume_ml, volume_ratio=_round(d.volume_ratio),
                       volume_z=_round(d.volume_z, 2), coverage_severity=judged.get((d.name, "coverage")),
                       volume_severity=judged.get((d.name, "volume")))
            for d in drift]
    rank = {"error": 0, "warning": 1, "info": 2, None: 3}

    def moved(row: DriftStats) -> tuple:
        worst = min(rank[row.coverage_severity], rank[row.volume_severity])
        return worst, -abs(row.coverage_pp or 0.0), row.name

    return sorted(rows, key=moved)
