"""Deep-pass numbers for people: per-case label statistics, per-class distributions, overlapping pairs."""

from __future__ import annotations

import statistics

from qa.report.model import ClassStats, ImageStats, LabelStats, OverlapStats
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts, ReleaseFacts
from qa.scan.measures import class_overlaps, shared_voxels, voxel_ml, world_centroid


def case_labels(case: CaseFacts, spec: ReleaseSpec) -> dict[str, LabelStats] | None:
    """Per class of the spec: voxels, mL, mean image value inside, bounding box, centroid in world mm."""
    if case.deep is None:
        return None
    labels = {}
    image_facts = case.files.get(f"{case.case}/{spec.image}")
    image = None if image_facts is None else image_facts.header
    for name in spec.classes:
        path = f"{case.case}/{spec.mask_file(name)}"
        values, facts = case.deep.masks.get(path), case.files.get(path)
        if values is None or facts is None or facts.header is None:
            continue
        centre = world_centroid(values, facts)
        centroid = None if centre is None else [round(float(v), 3) for v in centre]
        mean = values.image_sum / values.voxels if values.voxels and values.image_sum is not None else None
        # scaling is linear, so the stored mean scaled is exactly the mean of the loaded values
        mean_hu = None if mean is None or image is None else image.loaded(mean)
        labels[name] = LabelStats(
            voxels=values.voxels,
            volume_ml=values.voxels * voxel_ml(facts.header),
            mean_hu=mean_hu,
            bbox=None if values.bbox is None else [list(values.bbox[0]), list(values.bbox[1])],
            centroid_mm=centroid,
        )
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
        q1, median, q3 = _quartiles([s.volume_ml for s in present])
        hu = [s.mean_hu for s in present if s.mean_hu is not None]
        result.append(ClassStats(name=name, cases_present=len(present), cases_checked=len(measured),
                                 volume_ml_median=median, volume_ml_q1=q1, volume_ml_q3=q3,
                                 mean_hu_median=statistics.median(hu) if hu else None))
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
