"""Connected components of a mask (26-connected), measured on the mask's bounding box only."""

from __future__ import annotations

import dataclasses

import cc3d
import numpy as np

from qa.scan.facts import Box, MaskValues, Piece, Pieces

# The pieces kept by size: enough to judge the main one and the next few, bounded for a mask shattered into specks.
KEPT_PIECES = 8


def pieces(mask: np.ndarray, shape: tuple[int, ...], bbox: Box, voxels: int) -> Pieces:
    """The components of a non-empty mask given as its flat voxels in file (Fortran) order, with its bounding box and
    its count of non-zero voxels."""
    grid = mask.reshape(shape[:3], order="F")
    (i0, j0, k0), (i1, j1, k1) = bbox
    # as uint8: cc3d 4.1's bool path can underestimate the labels of thin crops (3 x 1 x 1, two pieces) and raise
    crop = (grid[i0:i1 + 1, j0:j1 + 1, k0:k1 + 1] != 0).view(np.uint8)
    labels, count = cc3d.connected_components(crop, connectivity=26, return_N=True)
    if count <= 1:
        return Pieces(count, (Piece(voxels, bbox),) if count else ())
    stats = cc3d.statistics(labels, no_slice_conversion=True)
    sizes = np.asarray(stats["voxel_counts"])[1:]
    boxes = np.asarray(stats["bounding_boxes"])[1:]  # per label: i0, i1, j0, j1, k0, k1 on the crop, inclusive
    order = np.argsort(-sizes, kind="stable")[:KEPT_PIECES]
    origin = np.array([i0, i0, j0, j0, k0, k0])
    kept = []
    for label in order:
        b = boxes[label] + origin
        kept.append(Piece(int(sizes[label]), ((int(b[0]), int(b[2]), int(b[4])), (int(b[1]), int(b[3]), int(b[5])))))
    return Pieces(int(count), tuple(kept))


def with_pieces(values: MaskValues, mask: np.ndarray, shape: tuple[int, ...]) -> MaskValues:
    """A non-empty 3D mask's values with its pieces; others as they are."""
    if values.voxels == 0 or values.bbox is None or len(shape) < 3 or any(n > 1 for n in shape[3:]):
        return values
    return dataclasses.replace(values, pieces=pieces(mask, shape, values.bbox, values.voxels))
