"""Measures derived from facts in the units people judge by: mL per voxel, world centroids, shared voxels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts, FileFacts, HeaderFacts, MaskValues, Overlap


def voxel_ml(header: HeaderFacts) -> float:
    return math.prod(abs(z) for z in header.zooms[:3]) / 1000.0


def world_centroid(values: MaskValues, facts: FileFacts) -> np.ndarray | None:
    """A mask's centre of mass in world millimetres, through its own affine."""
    if values.centroid_voxel is None or facts.header is None:
        return None
    return (np.asarray(facts.header.affine) @ [*values.centroid_voxel, 1.0])[:3]


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
    return SharedVoxels(class_a=spec.class_of(case.case, overlap.first),
                        class_b=spec.class_of(case.case, overlap.second),
                        voxels=overlap.voxels, volume_ml=overlap.voxels * voxel_ml(case.files[overlap.second].header),
                        share=overlap.voxels / smaller)


def class_overlaps(case: CaseFacts, spec: ReleaseSpec) -> list[Overlap]:
    """The case's overlaps between masks of the spec's classes: a stray file in the mask folder (FILE_UNEXPECTED
    already) is measured for its stream but shares no voxels with a class."""
    classes = set(spec.classes)
    return [o for o in case.deep.overlaps
            if spec.class_of(case.case, o.first) in classes and spec.class_of(case.case, o.second) in classes]
