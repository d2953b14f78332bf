"""Literal facts for check tests: builders whose defaults are a clean v2 case, so a test states only what it varies."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import EllipsisType

import numpy as np

from qa.checks.base import Context
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec, load_spec
from qa.scan.facts import (
    ISIZE_MODULUS,
    MAX_DEFLATE_RATIO,
    Box,
    CaseFacts,
    DeepFacts,
    FileFacts,
    HeaderFacts,
    ImageValues,
    MaskValues,
    MetaFacts,
    Overlap,
    Pieces,
    Problem,
    ReleaseFacts,
    StreamFacts,
)
from qa.scan.itk import Placement
from qa.source.base import Entry, EntryKind

V2 = load_spec("totalsegmentator-v2")
V3 = load_spec("totalsegmentator-v3")  # the release that publishes no per-split counts
Matrix = list[list[float]]
SHAPE = (4, 5, 6)
SPACING = (1.5, 1.5, 1.5)
NIFTI1_DATA_OFFSET = 352
META_COLUMNS = list(V2.meta.columns)
# The cells of a row that breaks no v2 rule; `row` overrides some of them.
CLEAN_ROW = {"age": "63", "gender": "m", "study_type": "ct thorax-abdomen-pelvis", "split": "train", "kvp": "120"}


def ras(spacing: Iterable[float] = SPACING, origin: Iterable[float] = (0.0, 0.0, 0.0)) -> Matrix:
    """The affine of an axis-aligned RAS grid."""
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = list(origin)
    return affine.tolist()


def shifted(affine: Matrix, mm: float, axis: int = 0) -> Matrix:
    """The same grid moved `mm` along one world axis."""
    moved = np.array(affine, dtype=float)
    moved[axis, 3] += mm
    return moved.tolist()


def header(shape: tuple[int, ...] = SHAPE, affine: Matrix | None = None, dtype: str = "int16",
           zooms: tuple[float, ...] | None = None, sform_code: int = 1, qform_code: int = 1,
           sform: Matrix | None | EllipsisType = ..., qform: Matrix | None | EllipsisType = ...,
           slope: float | None = None, inter: float | None = None, qform_error: str | None = None,
           itk: Placement | None | EllipsisType = ..., version: int = 1) -> HeaderFacts:
    """A NIfTI-1 header as the scan reads it; sform and qform default to the affine where their code is set, and
    ITK places the grid where nibabel does unless `itk` says otherwise."""
    zooms = SPACING if zooms is None else zooms
    affine = ras(zooms[:3]) if affine is None else affine
    return HeaderFacts(
        version=version, shape=shape, dtype=dtype, byteorder="<", zooms=zooms, affine=affine,
        sform_code=sform_code, qform_code=qform_code,
        sform=(affine if sform_code > 0 else None) if sform is ... else sform,
        qform=(affine if qform_code > 0 and qform_error is None else None) if qform is ... else qform,
        slope=slope, inter=inter, data_offset=NIFTI1_DATA_OFFSET,
        data_bytes=math.prod(shape) * np.dtype(dtype).itemsize, qform_error=qform_error,
        itk=Placement(affine=affine, transform="sform") if itk is ... else itk,
    )


def mask_header(image: HeaderFacts | None = None, **changes) -> HeaderFacts:
    """A uint8 mask written from its image's header, as TotalSegmentator writes them."""
    image = image or header()
    grid = {"shape": image.shape, "affine": image.affine, "zooms": image.zooms, "sform_code": image.sform_code,
            "qform_code": image.qform_code}
    if "affine" not in changes:  # a new affine brings its own sform, qform and ITK placement
        grid |= {"sform": image.sform, "qform": image.qform, "itk": image.itk}
    return header(**{"dtype": "uint8", **grid, **changes})


def file_facts(path: str, header: HeaderFacts | None = None, isize: int | None | EllipsisType = ...,
               corrupt: Problem | None = None, size: int | None = None) -> FileFacts:
    """A file's facts; its gzip trailer agrees with its header unless `isize` says otherwise, and it is large enough
    to hold the stream its header declares unless `size` says otherwise."""
    if isize is ...:
        isize = None if header is None else header.stream_bytes % ISIZE_MODULUS
    if size is None:
        size = 4096 if header is None else max(4096, -(-header.stream_bytes // MAX_DEFLATE_RATIO))
    return FileFacts(path=path, size=size, header=header, isize=isize, corrupt=corrupt)


Given = HeaderFacts | FileFacts | Problem


def _file(path: str, given: Given) -> FileFacts:
    if isinstance(given, Problem):
        return FileFacts(path=path, size=100, corrupt=given)
    return given if isinstance(given, FileFacts) else file_facts(path, given)


def case_facts(case: str = "s0001", spec: ReleaseSpec = V2, masks: Mapping[str, Given] = {},
               image: Given | None = None, deep: DeepFacts | None = None,
               absent: Iterable[str] = (), extra: Mapping[str, EntryKind] = {},
               internal_error: Problem | None = None) -> CaseFacts:
    """A scanned case: the image and every spec class present and readable, each mask on its image's grid.
    `masks` replaces some classes' headers or facts (a Problem: the scan found the file corrupt), `absent` removes
    entries (paths relative to the case folder; the mask folder takes every mask with it), `extra` adds entries."""
    unknown = set(masks) - set(spec.classes)
    if unknown:  # a typo would otherwise leave the class clean and the test passing for the wrong reason
        raise ValueError(f"not classes of {spec.id}: {sorted(unknown)}")
    if internal_error is not None:
        return CaseFacts(case=case, internal_error=internal_error)
    image = image or header()
    # masks sit on the image's grid, or on the default grid when the image has no header
    grid = image if isinstance(image, HeaderFacts) else getattr(image, "header", None) or header()
    given = {f"{case}/{spec.image}": image}
    given |= {f"{case}/{spec.mask_file(name)}": masks.get(name, mask_header(grid)) for name in spec.classes}
    gone = [f"{case}/{rel}" for rel in absent]
    present = {p: v for p, v in given.items() if not any(p == g or p.startswith(f"{g}/") for g in gone)}
    kinds: dict[str, EntryKind] = {p: "file" for p in present}
    if f"{case}/{spec.mask_dir}" not in gone:
        kinds[f"{case}/{spec.mask_dir}"] = "dir"
    kinds |= {f"{case}/{rel}": kind for rel, kind in extra.items()}
    # A scan lists the case folder, then its subfolders, each sorted.
    entries = sorted((Entry(p, k) for p, k in kinds.items()), key=lambda e: (e.path.count("/"), e.path))
    files = {p: _file(p, v) for p, v in present.items()}
    return CaseFacts(case=case, entries=entries, files=files, deep=deep)


def mask_values(voxels: int = 0, centroid: tuple[float, float, float] | None = None,
                other_values: dict[str, int] | None = None, padding_voxels: int | None = None,
                bbox: Box | None = None, mean_hu: float = -50.0, sd_hu: float = 0.0,
                pieces: Pieces | None = None) -> MaskValues:
    """A mask's deep facts; a non-empty mask gets a centroid in the middle of the default grid and a bounding box
    inside it (touching no face) unless given them, and the image inside it has mean_hu and sd_hu (stored values,
    no scaling)."""
    if voxels and centroid is None:
        centroid = (1.5, 2.0, 2.5)
    if voxels and bbox is None:
        bbox = ((1, 1, 1), tuple(n - 2 for n in SHAPE))
    return MaskValues(voxels=voxels, other_values=other_values, bbox=bbox if voxels else None, centroid_voxel=centroid,
                      image_sum=None if not voxels else mean_hu * voxels, padding_voxels=padding_voxels,
                      image_sq_sum=None if not voxels else voxels * (sd_hu ** 2 + mean_hu ** 2), pieces=pieces)


def image_values(min: float = -1024.0, max: float = 1500.0, nan_count: int = 0, inf_count: int = 0,
                 padding_value: float | None = None, percentiles: Mapping[str, float] = {}) -> ImageValues:
    return ImageValues(voxels=math.prod(SHAPE), min=min, max=max, mean=-300.0, percentiles=dict(percentiles),
                       nan_count=nan_count, inf_count=inf_count, padding_value=padding_value)


def deep_facts(case: str = "s0001", spec: ReleaseSpec = V2, masks: Mapping[str, MaskValues] = {},
               image: ImageValues | None | EllipsisType = ..., overlaps: Iterable[tuple[str, str, int]] = (),
               stream_errors: Mapping[str, str] = {}) -> DeepFacts:
    """What the deep pass measures in a clean case: every stream whole, the aorta the only mask that is not empty
    (no anatomy rule names it), no overlap.
    `masks` replaces some classes' values, `overlaps` are (class, class, shared voxels) and `stream_errors` maps
    paths relative to the case folder to what broke in their stream."""
    paths = [spec.image, *(spec.mask_file(name) for name in spec.classes)]
    streams = {f"{case}/{rel}": StreamFacts(1000, stream_errors.get(rel)) for rel in paths}
    unknown = set(masks) - set(spec.classes)
    if unknown:
        raise ValueError(f"not classes of {spec.id}: {sorted(unknown)}")
    masks = {"aorta": mask_values(500), **masks}
    values = {f"{case}/{spec.mask_file(name)}": masks.get(name, mask_values()) for name in spec.classes}
    pairs = [sorted((f"{case}/{spec.mask_file(a)}", f"{case}/{spec.mask_file(b)}")) for a, b, _ in overlaps]
    return DeepFacts(streams=streams, image=image_values() if image is ... else image, masks=values,
                     overlaps=[Overlap(first, second, n) for (first, second), (_, _, n) in zip(pairs, overlaps)])


def row(image_id: str, **cells: str) -> str:
    """A v2 meta.csv row that breaks no rule, but for the cells given."""
    values = {"image_id": image_id, **CLEAN_ROW, **cells}
    return ";".join(values.get(column, "") for column in META_COLUMNS)


def meta_csv(*rows: str, columns: Iterable[str] = META_COLUMNS) -> str:
    return "\n".join([";".join(columns), *rows]) + "\n"


def release_facts(cases: Iterable[CaseFacts | str] = (), meta_csv_text: str | bytes | None | EllipsisType = ...,
                  meta_error: Problem | None = None, root_extra: Mapping[str, EntryKind] = {}) -> ReleaseFacts:
    """A release root holding the cases and a meta.csv (by default one clean row per case; None: no meta.csv)."""
    cases = [case_facts(c) if isinstance(c, str) else c for c in cases]
    if meta_csv_text is ...:
        meta_csv_text = meta_csv(*(row(c.case) for c in cases))
    raw = meta_csv_text.encode("utf-8") if isinstance(meta_csv_text, str) else meta_csv_text or b""
    meta = MetaFacts(path="meta.csv", present=meta_csv_text is not None or meta_error is not None, raw=raw,
                     error=meta_error)
    kinds: dict[str, EntryKind] = {c.case: "dir" for c in cases} | dict(root_extra)
    if meta.present:
        kinds["meta.csv"] = "file"
    return ReleaseFacts(root="/release", meta=meta, root_entries=[Entry(p, k) for p, k in sorted(kinds.items())],
                        cases=cases)


def context(facts: ReleaseFacts | None = None, spec: ReleaseSpec = V2, subset: bool = False) -> Context:
    """What a check judges with; a case check does not look at the release's facts, so they may be left out."""
    return Context(release_facts() if facts is None else facts, spec, subset)


def essentials(found: list[Finding]) -> list[tuple[str, str | None, str | None, str | None, str | None, str]]:
    """What a finding says and where: code, subcode, case, path, class_name and severity."""
    return [(f.code, f.subcode, f.case, f.path, f.class_name, f.severity) for f in found]
