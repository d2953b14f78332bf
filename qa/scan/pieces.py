"""Connected components of a mask (26-connected), measured on the mask's bounding box only: a crop of it made from
the mask held whole, or from its voxels' flat indices when it was streamed."""

from __future__ import annotations

import dataclasses
import math

import cc3d
import numpy as np

from qa.scan.facts import Box, MaskValues, Piece, Pieces

# The pieces kept by size: enough to judge the main one and the next few, bounded for a mask shattered into specks.
KEPT_PIECES = 8
# What labelling a crop holds at most, per voxel of the bounding box: the crop (1 byte), its labels (uint32) and
# cc3d's equivalence table (measured at 1 to 2 bytes); and per piece, cc3d.statistics' count, box and centroid
# (measured at 32 bytes).
PIECE_BYTES = 8
BYTES_PER_PIECE = 48
# Flat indices turned into crop coordinates this many at a time: temporaries of a slab's size.
INDEX_STEP = 1 << 19


def box_voxels(bbox: Box) -> int:
    (i0, j0, k0), (i1, j1, k1) = bbox
    return (i1 - i0 + 1) * (j1 - j0 + 1) * (k1 - k0 + 1)


def _box_shape(bbox: Box) -> tuple[int, int, int]:
    (i0, j0, k0), (i1, j1, k1) = bbox
    return i1 - i0 + 1, j1 - j0 + 1, k1 - k0 + 1


def mask_crop(mask: np.ndarray, shape: tuple[int, ...], bbox: Box) -> np.ndarray:
    """The bounding box of a mask given as its flat voxels in file (Fortran) order, as 0 and 1 (uint8)."""
    grid = mask.reshape(shape[:3], order="F")
    (i0, j0, k0), (i1, j1, k1) = bbox
    # as uint8: cc3d 4.1's bool path can underestimate the labels of thin crops (3 x 1 x 1, two pieces) and raise
    return (grid[i0:i1 + 1, j0:j1 + 1, k0:k1 + 1] != 0).view(np.uint8)


def index_crop(index: np.ndarray, shape: tuple[int, ...], bbox: Box) -> np.ndarray:
    """The bounding box of a mask given as the flat indices (file order) of its non-zero voxels, as 0 and 1 (uint8)."""
    crop = np.zeros(_box_shape(bbox), dtype=np.uint8, order="F")
    (i0, j0, k0), _ = bbox
    nx, ny = shape[0], shape[1]
    for start in range(0, index.size, INDEX_STEP):
        rest, x = np.divmod(index[start : start + INDEX_STEP], nx)
        z, y = np.divmod(rest, ny)
        crop[x - i0, y - j0, z - k0] = 1
    return crop


def pieces(crop: np.ndarray, bbox: Box, voxels: int, room: float = math.inf) -> Pieces | None:
    """The components of a non-empty mask's crop (its bounding box `bbox`, `voxels` non-zero voxels); None when
    listing them would hold more than `room` bytes (a mask of countless specks)."""
    labels, count = cc3d.connected_components(crop, connectivity=26, return_N=True, out_dtype=np.uint32)
    if count <= 1:
        return Pieces(count, (Piece(voxels, bbox),) if count else ())
    if PIECE_BYTES * crop.size + BYTES_PER_PIECE * count > room:
        return None
    stats = cc3d.statistics(labels, no_slice_conversion=True)
    sizes = np.asarray(stats["voxel_counts"])[1:]
    boxes = np.asarray(stats["bounding_boxes"])[1:]  # per label: i0, i1, j0, j1, k0, k1 on the crop, inclusive
    order = np.argsort(-sizes, kind="stable")[:KEPT_PIECES]
    (i0, j0, k0), _ = bbox
    origin = np.array([i0, i0, j0, j0, k0, k0])
    kept = []
    for label in order:
        b = boxes[label] + origin
        kept.append(Piece(int(sizes[label]), ((int(b[0]), int(b[2]), int(b[4])), (int(b[1]), int(b[3]), int(b[5])))))
    return Pieces(int(count), tuple(kept))


def with_pieces(values: MaskValues, crop: np.ndarray, room: float = math.inf) -> MaskValues | None:
    """A non-empty mask's values with the pieces of its crop; None when they do not fit in `room` bytes."""
    found = pieces(crop, values.bbox, values.voxels, room)
    return None if found is None else dataclasses.replace(values, pieces=found)
