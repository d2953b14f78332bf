"""Whether a mask is one whole organ: cut by the field of view, or in more pieces than its class has (deep mode)."""

from __future__ import annotations

import math

from qa.checks.base import Context, check, finding
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import Box, CaseFacts, Piece
from qa.scan.measures import Measured, extent_mm, head_to_feet_axis, touched_faces, voxel_ml


@check("pieces.truncated", ("LABEL_TRUNCATED",), needs="deep")
def check_truncated(case: CaseFacts, ctx: Context) -> list[Finding]:
    """Non-empty masks touching a face of their grid: the organ goes on outside the image."""
    found = []
    for name, m in ctx.measured_masks(case).items():
        if m.whole or m.values.bbox is None:
            continue
        faces = touched_faces(m.values, m.header)
        axis = head_to_feet_axis(m.header)
        across = m.values.bbox[0][axis] <= 0 or m.values.bbox[1][axis] >= m.header.shape[axis] - 1
        where = "first or last slice" if across else "in-plane edge of the grid"
        found.append(finding(ctx.spec, "LABEL_TRUNCATED", case.case, m.path,
                             f"{m.path}: cut by the field of view ({where}: {', '.join(faces)})",
                             subcode="slices" if across else "edge", class_name=name, faces=faces,
                             extent_mm=round(extent_mm(m.values, m.header), 2)))
    return found


def box_gap_mm(a: Box, b: Box, zooms: tuple[float, ...]) -> float:
    """The distance between two bounding boxes, in mm: 0 when they touch or overlap, else from face to face along
    each axis (voxel centres), combined. A lower bound of the distance between the pieces themselves."""
    squares = 0.0
    for axis in range(3):
        gap = max(0, b[0][axis] - a[1][axis], a[0][axis] - b[1][axis])
        squares += (gap * abs(zooms[axis])) ** 2
    return math.sqrt(squares)


def _fragments(case: CaseFacts, spec: ReleaseSpec, m: Measured, most: int) -> Finding | None:
    rule = spec.labels.pieces
    pieces = m.values.pieces
    if pieces is None:
        return None
    unit = voxel_ml(m.header)
    counted = [p for p in pieces.largest
               if p.voxels * unit >= rule.min_ml and p.voxels >= rule.min_share * m.values.voxels]
    if len(counted) <= most:
        return None
    main, extra = counted[0], counted[most:]
    shares = [p.voxels / m.values.voxels for p in extra]
    distances = [box_gap_mm(main.bbox, p.bbox, m.header.zooms) for p in extra]
    if max(shares) >= rule.warning_share:
        subcode, why = "share", f"the largest extra piece holds {max(shares):.0%} of the mask"
    elif max(distances) > rule.far_mm:
        subcode, why = "far", f"an extra piece lies {max(distances):.0f} mm from the main one"
    else:
        subcode, why = "minor", "small extra pieces near the main one"
    faces = touched_faces(m.values, m.header)
    if faces:
        why += f"; the mask is cut by the field of view ({', '.join(faces)}), which can split it"
    return finding(spec, "LABEL_FRAGMENTS", case.case, m.path,
                   f"{m.path}: {len(counted)} pieces where {m.name} has at most {most}: {why}", subcode=subcode,
                   severity="info" if faces else None, class_name=m.name, pieces=len(counted), expected=most,
                   components=pieces.count, sizes_ml=[_ml(p, unit) for p in counted],
                   extra_shares=[round(s, 4) for s in shares], extra_distances_mm=[round(d, 1) for d in distances],
                   truncated=bool(faces))


def _ml(piece: Piece, unit: float) -> float:
    return round(piece.voxels * unit, 3)


@check("pieces.fragments", ("LABEL_FRAGMENTS",), needs="deep")
def check_fragments(case: CaseFacts, ctx: Context) -> list[Finding]:
    """Classes expected in few pieces whose mask has more pieces that count (not specks)."""
    limits = ctx.spec.labels.pieces.limits
    found = []
    for name, m in ctx.measured_masks(case).items():
        if name in limits and m.values.voxels:
            made = _fragments(case, ctx.spec, m, limits[name])
            if made is not None:
                found.append(made)
    return found
