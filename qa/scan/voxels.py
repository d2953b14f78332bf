"""Voxel measurements of the deep pass: image statistics, mask values, extent, image inside each mask, overlaps."""

from __future__ import annotations

import math

import numpy as np

from qa.scan.facts import HeaderFacts, ImageValues, MaskValues, Overlap

# Percentiles are exact up to this many voxels and taken on a regular sample above it: a full sort of a
# 200-million-voxel CT would cost more than decompressing it.
PERCENTILE_SAMPLE = 1 << 20
PERCENTILES = (1, 5, 50, 95, 99)
MAX_REPORTED_VALUES = 20
# Padding (outside the scanned field of view) is one constant value, the image's minimum, over a large region; a
# minimum that few voxels reach is just the darkest air, not padding.
PADDING_MIN_SHARE = 0.01


def measurable(header: HeaderFacts) -> bool:
    """Whether the voxels are numbers the deep pass measures: not RGB24 or RGBA32 (numpy records), which the data
    type checks report."""
    try:
        return np.dtype(header.dtype).kind in "biuf"
    except TypeError:  # 'void24' and the like name no numpy type
        return False


def voxel_array(buffer: bytes | np.ndarray, header: HeaderFacts) -> np.ndarray:
    """The stored voxels as a flat array in file (Fortran) order, without copying the buffer."""
    dtype = np.dtype(header.dtype).newbyteorder(header.byteorder)
    return np.frombuffer(buffer, dtype=dtype, count=math.prod(header.shape), offset=header.data_offset)


def padding_value(stored: np.ndarray) -> float | None:
    """The stored value that fills the region outside the scanned volume, when the image has one."""
    if stored.size == 0 or stored.dtype.kind not in "iu":
        return None
    low = stored.min()
    return float(low) if np.count_nonzero(stored == low) >= PADDING_MIN_SHARE * stored.size else None


def image_values(stored: np.ndarray, header: HeaderFacts) -> ImageValues:
    """Min, max, mean and percentiles in loaded units, with NaN and infinity counts and the padding value (stored)."""
    nan_count = inf_count = 0
    finite = stored
    if stored.dtype.kind == "f":
        nan_count = int(np.count_nonzero(np.isnan(stored)))
        inf_count = int(np.count_nonzero(np.isinf(stored)))
        if nan_count or inf_count:
            finite = stored[np.isfinite(stored)]
    if finite.size == 0:
        return ImageValues(stored.size, None, None, None, {}, nan_count, inf_count)
    step = max(1, math.ceil(finite.size / PERCENTILE_SAMPLE))
    quantiles = np.percentile(finite[::step], PERCENTILES)
    low, high = sorted((header.loaded(float(finite.min())), header.loaded(float(finite.max()))))
    return ImageValues(
        voxels=int(stored.size),
        min=low,
        max=high,
        mean=header.loaded(float(finite.mean(dtype=np.float64))),
        percentiles={f"p{p}": header.loaded(float(q)) for p, q in zip(PERCENTILES, quantiles)},
        nan_count=nan_count,
        inf_count=inf_count,
        padding_value=padding_value(stored),
    )


def _other_values(mask: np.ndarray) -> dict[str, int] | None:
    """Values other than 0 and 1 with their counts, or None for a binary mask; the cheap test first."""
    if mask.dtype == np.uint8 or mask.dtype == np.bool_:
        if mask.max() <= 1:
            return None
    elif bool(np.all((mask == 0) | (mask == 1))):
        return None
    values, counts = np.unique(mask, return_counts=True)
    others = [(v, int(c)) for v, c in zip(values.tolist(), counts) if v not in (0, 1)]
    others.sort(key=lambda vc: -vc[1])
    return {f"{v:g}": c for v, c in others[:MAX_REPORTED_VALUES]}


def _nonzero(mask: np.ndarray, other: dict[str, int] | None, shape: tuple[int, ...]) -> np.ndarray:
    """Flat indices of the non-zero voxels. numpy finds those of a bool array about 20 times faster than of a uint8
    one, and a uint8 mask without other values holds only 0 and 1, which are exactly False and True. Most masks fill
    a few of a CT's slices: a max per slice (cheap) bounds the search to the slices that hold voxels."""
    if mask.dtype != np.uint8 or other is not None:
        return np.flatnonzero(mask)
    plane = shape[0] * (shape[1] if len(shape) > 1 else 1)
    filled = np.flatnonzero(mask.reshape(-1, plane).max(axis=1))
    if filled.size == 0:
        return filled
    start = int(filled[0]) * plane
    index = np.flatnonzero(mask[start : (int(filled[-1]) + 1) * plane].view(np.bool_))
    index += start
    return index


def mask_values(mask: np.ndarray, shape: tuple[int, ...], image: np.ndarray | None,
                padding: float | None = None) -> tuple[MaskValues, np.ndarray]:
    """A mask's facts and the flat indices of its non-zero voxels; `image` is on the same grid, or None, and
    `padding` is its stored padding value, if any."""
    other = _other_values(mask)
    index = _nonzero(mask, other, shape)
    if index.size == 0:
        image_sum = None if image is None else 0.0
        padding_voxels = None if image is None or padding is None else 0
        return MaskValues(0, other, None, None, image_sum, padding_voxels, image_sq_sum=image_sum), index
    nx, ny = shape[0], shape[1] if len(shape) > 1 else 1
    rest, x = np.divmod(index, nx)
    z, y = np.divmod(rest, ny)
    coords = (x, y, z)
    bbox = (tuple(int(c.min()) for c in coords), tuple(int(c.max()) for c in coords))
    centroid = tuple(float(c.mean()) for c in coords)
    image_sum = padding_voxels = image_sq_sum = None
    if image is not None:
        inside = image[index]
        image_sum = float(inside.sum(dtype=np.float64))
        padding_voxels = None if padding is None else int(np.count_nonzero(inside == padding))
        image_sq_sum = _sum_of_squares(inside)
    return MaskValues(int(index.size), other, bbox, centroid, image_sum, padding_voxels, image_sq_sum), index


def _sum_of_squares(values: np.ndarray) -> float:
    """The sum of squares, exact for 8- and 16-bit integers, which square into 32 bits (int16's) or 64: 30 times
    faster than through float64 copies on an int16 CT."""
    if values.dtype.kind in "iu" and values.dtype.itemsize <= 2:
        wide = np.int64 if values.dtype == np.uint16 else np.int32
        return float(np.square(values, dtype=wide).sum(dtype=np.int64))
    return float(np.square(values, dtype=np.float64).sum())


class OverlapTracker:
    """Every pair of a case's masks that share voxels, with the exact count, in one pass over the masks.

    `owner` holds the latest mask on each voxel. A voxel that a later mask takes over keeps its earlier owners in
    `beneath` (voxel, owner pairs: only voxels that are shared, which are few), so a third mask on a voxel meets the
    first as well as the second."""

    def __init__(self, voxels: int, masks: int) -> None:
        self.owner = np.zeros(voxels, dtype=np.uint8 if masks < 255 else np.uint16)
        self.beneath_voxels = np.empty(0, dtype=np.intp)
        self.beneath_owners = np.empty(0, dtype=self.owner.dtype)
        self.names: list[str] = []

    def add(self, name: str, index: np.ndarray) -> list[Overlap]:
        self.names.append(name)
        if index.size == 0:
            return []
        current = len(self.names)
        previous = self.owner[index]
        taken = previous > 0
        shared, on_top = index[taken], previous[taken]
        self.owner[index] = current
        if shared.size == 0:
            return []
        met = [on_top]
        if self.beneath_voxels.size:
            below = np.isin(self.beneath_voxels, shared, assume_unique=False)
            met.append(self.beneath_owners[below])
        self.beneath_voxels = np.concatenate([self.beneath_voxels, shared])
        self.beneath_owners = np.concatenate([self.beneath_owners, on_top])
        counts = np.bincount(np.concatenate(met), minlength=current)
        return [Overlap(self.names[k - 1], name, int(counts[k])) for k in np.flatnonzero(counts)]
