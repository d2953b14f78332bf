"""Measures derived from facts in the units people judge by: mL per voxel, world centroids, shared voxels."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qa.rules.spec import ReferenceClass, ReferenceSpec, ReleaseSpec
from qa.scan.facts import CaseFacts, FileFacts, HeaderFacts, MaskValues, Overlap, ReleaseFacts


def voxel_ml(header: HeaderFacts) -> float:
    return _grid(header).voxel_ml


def world_centroid(values: MaskValues, facts: FileFacts) -> np.ndarray | None:
    """A mask's centre of mass in world millimetres, through its own affine."""
    if values.centroid_voxel is None or facts.header is None:
        return None
    return (_grid(facts.header).affine @ [*values.centroid_voxel, 1.0])[:3]


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


# World (RAS+) direction names of the two ends of each world axis: (negative end, positive end).
_DIRECTIONS = (("left", "right"), ("posterior", "anterior"), ("inferior", "superior"))


# These two run for every mask of every case at each judging (a warm cached run is mostly judging): plain floats on
# three numbers, as numpy would compute them, without numpy's per-call cost.
def _world_axis(header: HeaderFacts, axis: int) -> tuple[int, bool]:
    """The world axis a voxel axis runs most nearly along, and whether it runs towards that axis's positive end."""
    column = [float(header.affine[row][axis]) for row in range(3)]
    if not all(math.isfinite(x) for x in column) or not any(column):
        return axis, True
    world = max(range(3), key=lambda row: abs(column[row]))  # the first of equals, as np.argmax
    return world, column[world] > 0


def head_to_feet_axis(header: HeaderFacts) -> int:
    """The voxel axis that runs most nearly along the world's inferior-superior axis."""
    return _grid(header).head_to_feet


def _head_to_feet_axis(header: HeaderFacts) -> int:
    affine = [[float(x) for x in row[:3]] for row in header.affine[:3]]
    if not all(math.isfinite(x) for row in affine for x in row) or not any(affine[2]):
        return 2
    share = [abs(affine[2][c]) / max(math.sqrt(sum(affine[r][c] ** 2 for r in range(3))), 1e-12) for c in range(3)]
    return max(range(3), key=lambda c: share[c])


Faces = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Grid:
    """How a header's grid lies in the world: the world directions the low and the high face of each voxel axis face,
    the head-to-feet voxel axis, the affine as an array, and a voxel's volume in mL."""

    faces: Faces
    head_to_feet: int
    affine: np.ndarray
    voxel_ml: float


# A case's masks share one or two header objects: how their grid lies in the world is worked out once per header
# object, kept with it (so that its id names no other header meanwhile), a bounded number of them.
_GRIDS: dict[int, tuple[HeaderFacts, _Grid]] = {}
GRIDS_KEPT = 4096


def _grid(header: HeaderFacts) -> _Grid:
    """How the header's grid lies in the world, worked out once per header object."""
    known = _GRIDS.get(id(header))
    if known is None or known[0] is not header:
        faces = []
        for axis in range(3):
            world, positive = _world_axis(header, axis)
            faces.append(_DIRECTIONS[world] if positive else _DIRECTIONS[world][::-1])
        if len(_GRIDS) >= GRIDS_KEPT:
            _GRIDS.clear()
        grid = _Grid(tuple(faces), _head_to_feet_axis(header), np.asarray(header.affine, dtype=np.float64),
                     math.prod(abs(z) for z in header.zooms[:3]) / 1000.0)
        known = _GRIDS[id(header)] = (header, grid)
    return known[1]


def touched_faces(values: MaskValues, header: HeaderFacts) -> list[str]:
    """The faces of its grid a non-empty mask touches, named by the world direction they face (e.g. 'superior')."""
    if values.bbox is None:
        return []
    faces = []
    for axis, (low, high) in enumerate(_grid(header).faces):
        if values.bbox[0][axis] <= 0:
            faces.append(low)
        if values.bbox[1][axis] >= header.shape[axis] - 1:
            faces.append(high)
    return faces


def is_whole(values: MaskValues, facts: FileFacts) -> bool:
    """A non-empty mask that touches no face of its grid: the field of view did not cut it."""
    return values.voxels > 0 and facts.header is not None and not touched_faces(values, facts.header)


def extent_mm(values: MaskValues, header: HeaderFacts) -> float | None:
    """A mask's head-to-feet extent in mm: its bounding box's length along the grid's head-to-feet axis."""
    if values.bbox is None:
        return None
    axis = head_to_feet_axis(header)
    return (values.bbox[1][axis] - values.bbox[0][axis] + 1) * abs(header.zooms[axis])


def volume_ml(values: MaskValues, header: HeaderFacts) -> float:
    return values.voxels * voxel_ml(header)


def image_mean_sd(values: MaskValues, image: HeaderFacts) -> tuple[float, float] | None:
    """Mean and standard deviation of the image inside a mask, in loaded units (scaling is linear)."""
    if not values.voxels or values.image_sum is None or values.image_sq_sum is None:
        return None
    mean = values.image_sum / values.voxels
    variance = max(values.image_sq_sum / values.voxels - mean * mean, 0.0)
    slope = 1.0 if image.slope is None else image.slope
    return image.loaded(mean), abs(slope) * math.sqrt(variance)


@dataclass(frozen=True, slots=True)
class Measured:
    """One class's mask in a case with the facts every label check reads, whether the field of view cut it, and its
    world centroid (worked out once: several checks and the report ask)."""

    name: str
    path: str
    values: MaskValues
    facts: FileFacts
    whole: bool
    centre: np.ndarray | None

    @property
    def header(self) -> HeaderFacts:
        return self.facts.header


def measured_masks(case: CaseFacts, spec: ReleaseSpec) -> dict[str, Measured]:
    """Every class of the spec whose mask the deep pass measured and whose header was read, by class."""
    found = {}
    if case.deep is None:
        return found
    prefix, masks, files = f"{case.case}/", case.deep.masks, case.files
    for name, file in spec.mask_files():
        path = prefix + file
        values, facts = masks.get(path), files.get(path)
        if values is not None and facts is not None and facts.header is not None:
            found[name] = Measured(name, path, values, facts, is_whole(values, facts), world_centroid(values, facts))
    return found


@dataclass(frozen=True)
class ClassDrift:
    """One class of the release against the spec's reference: coverage and mean volume, each change and its z."""

    name: str
    cases: int  # cases whose mask of the class was measured
    present: int  # ... and is not empty
    coverage: float | None
    reference_coverage: float
    coverage_z: float | None
    volume_ml: float | None  # mean over the non-empty masks, cut ones included: the reference's statistic
    reference_volume_ml: float | None
    volume_z: float | None

    @property
    def coverage_pp(self) -> float | None:
        return None if self.coverage is None else 100 * (self.coverage - self.reference_coverage)

    @property
    def volume_ratio(self) -> float | None:
        if self.volume_ml is None or self.reference_volume_ml is None or self.volume_ml <= 0:
            return None
        return self.volume_ml / self.reference_volume_ml


def _coverage_z(present: int, cases: int, reference: float) -> float:
    """The change of coverage in standard errors of a binomial share at the reference, at least one case's worth."""
    variance = max(reference * (1 - reference), 1 / cases) / cases
    return (present / cases - reference) / math.sqrt(variance)


def _volume_z(volumes: list[float], reference: float) -> float | None:
    """The change of the log mean volume in its standard errors (delta method: the coefficient of variation over
    the square root of the count)."""
    if len(volumes) < 2:
        return None
    mean = sum(volumes) / len(volumes)
    sd = math.sqrt(sum((v - mean) ** 2 for v in volumes) / (len(volumes) - 1))
    error = max(sd / mean, 1e-6) / math.sqrt(len(volumes))
    return math.log(mean / reference) / error


def class_drift(facts: ReleaseFacts, spec: ReleaseSpec,
                masks_of: Callable[[CaseFacts], dict[str, Measured]] | None = None) -> list[ClassDrift]:
    """Every class of the spec's reference table, measured over the release's deep-scanned cases (their measured
    masks from `masks_of` when given, as judging keeps them)."""
    if spec.reference is None:
        return []
    volumes: dict[str, list[float]] = {name: [] for name in spec.reference.classes}
    measured = dict.fromkeys(spec.reference.classes, 0)
    for case in facts.cases:
        masks = measured_masks(case, spec) if masks_of is None else masks_of(case)
        for name in spec.reference.classes:
            if name in masks:
                measured[name] += 1
                if masks[name].values.voxels:
                    volumes[name].append(volume_ml(masks[name].values, masks[name].header))
    rows = []
    for name, ref in spec.reference.classes.items():
        cases, found = measured[name], volumes[name]
        mean = sum(found) / len(found) if found else None
        rows.append(ClassDrift(
            name=name, cases=cases, present=len(found), coverage=len(found) / cases if cases else None,
            reference_coverage=ref.coverage, coverage_z=_coverage_z(len(found), cases, ref.coverage) if cases else None,
            volume_ml=mean, reference_volume_ml=ref.volume_ml,
            volume_z=None if ref.volume_ml is None or not found else _volume_z(found, ref.volume_ml)))
    return rows


def measured_reference(facts: ReleaseFacts, spec: ReleaseSpec, source: str) -> ReferenceSpec:
    """A reference table measured on a release's facts (coverage, mean volume of the non-empty masks), to judge later
    releases against: what a spec's `reference:` holds. Tolerances are the spec's reference's, or the defaults."""
    measured: dict[str, int] = {}
    volumes: dict[str, list[float]] = {}
    for case in facts.cases:
        for name, m in measured_masks(case, spec).items():
            measured[name] = measured.get(name, 0) + 1
            if m.values.voxels:
                volumes.setdefault(name, []).append(volume_ml(m.values, m.header))
    table = {}
    for name in spec.classes:
        if measured.get(name):
            found = volumes.get(name, [])
            table[name] = ReferenceClass(cases=len(found), coverage=len(found) / measured[name],
                                         volume_ml=sum(found) / len(found) if found else None)
    base = spec.reference
    tolerances = {} if base is None else {"info": base.info, "warning": base.warning, "min_cases": base.min_cases}
    cases = sum(case.deep is not None for case in facts.cases)
    return ReferenceSpec(source=source, cases=max(cases, 1), classes=table, **tolerances)
