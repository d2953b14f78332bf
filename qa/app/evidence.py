"""Evidence: slice pictures of flagged masks, read through the source within the scan's bounds, kept beside the report.

A picture is a courtesy: a file that cannot be read, is too large, or holds an empty mask just gets none."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.output.files import write_atomic
from qa.report.model import Evidence, Report
from qa.rules.codes import SEVERITY_RANK
from qa.rules.finding import Finding
from qa.scan.case import Layout
from qa.scan.memory import DEFAULT_BUDGET
from qa.scan.volume import Volume, read_volume
from qa.source.base import ReleaseSource

EVIDENCE_DIR = "evidence"
MAX_PICTURES = 24
PICTURE_SECONDS = 30.0  # past this much reading time a report gets no more pictures, however few it has
# Findings about a mask's geometry, values or overlap: the ones a picture of the mask on its CT helps to judge.
PICTURE_CODES = frozenset({"GEOM_SHAPE_MISMATCH", "GEOM_AFFINE_MISMATCH", "GEOM_AFFINE_INVALID", "LABEL_VALUES",
                           "LABEL_OVERLAP", "LABEL_DTYPE"})
SOFT_TISSUE = (40.0, 400.0)  # window level and width in HU
OUTLINE_COLOURS = ("#ffb000", "#00d4ff")


def picture_candidates(findings: list[Finding]) -> list[Finding]:
    """Findings worth a picture, one per mask file, taking the codes in turn so that one code cannot use up the cap."""
    seen: set[str] = set()
    per_code: dict[str, list[Finding]] = {}
    for f in sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.case or "", f.path or "")):
        if f.code not in PICTURE_CODES or f.case is None or f.class_name is None or f.path in seen:
            continue
        seen.add(f.path)
        per_code.setdefault(f.code, []).append(f)
    queues = [per_code[code] for code in sorted(per_code)]
    order: list[Finding] = []
    while any(queues):
        order += [q.pop(0) for q in queues if q]
    return order


def make_evidence(report: Report, source: ReleaseSource, layout: Layout, out_dir: Path,
                  limit: int = MAX_PICTURES, seconds: float = PICTURE_SECONDS,
                  max_memory: int = DEFAULT_BUDGET) -> list[Evidence]:
    """Slice pictures of flagged masks written as PNG files under out_dir/evidence/, and what each shows. The image
    (at most half of `max_memory`) and two masks (an eighth each) held for a picture stay within `max_memory`: a
    larger volume gets no picture."""
    made: list[Evidence] = []
    deadline = time.monotonic() + seconds
    image_cache: dict[str, Volume | None] = {}
    for f in picture_candidates(report.findings):
        if len(made) >= limit or time.monotonic() > deadline:
            break
        image_path = f"{f.case}/{layout.image}"
        if image_path not in image_cache:
            image_cache.clear()  # one image in memory at a time
            image_cache[image_path] = read_volume(source, image_path, layout, max_memory // 2)
        mask = read_volume(source, f.path, layout, max_memory // 8)
        other = f.details.get("path_a") if f.code == "LABEL_OVERLAP" else None
        other_mask = (read_volume(source, other, layout, max_memory // 8)
                      if isinstance(other, str) and mask is not None else None)
        shown = [m for m in (mask, other_mask) if m is not None]
        png = slice_picture(image_cache[image_path], shown)
        if png is None:
            continue
        name = f"{EVIDENCE_DIR}/{f.fingerprint}.png"
        write_atomic(out_dir / name, png)
        classes = [f.class_name] + ([str(f.details["class_a"])] if other_mask is not None else [])
        made.append(Evidence(fingerprint=f.fingerprint, file=name, case=f.case, path=f.path, classes=classes))
    return made


def _axial_axis(affine: np.ndarray) -> int:
    """The voxel axis that runs most nearly along the world's inferior-superior axis."""
    columns = affine[:3, :3]
    return int(np.argmax(np.abs(columns[2]) / np.linalg.norm(columns, axis=0)))


def _centre_world(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """A world point in the mask's fullest axial slice, at the centre of that slice's voxels."""
    axis = _axial_axis(affine)
    others = tuple(a for a in range(3) if a != axis)
    fullest = int(np.argmax(mask.sum(axis=others)))
    plane = np.take(mask, fullest, axis=axis)
    centre = [float(np.mean(idx)) for idx in np.nonzero(plane)]
    voxel = centre[:axis] + [float(fullest)] + centre[axis:]
    return affine @ np.array([*voxel, 1.0])


def _resample_onto(mask: np.ndarray, mask_affine: np.ndarray, ct_affine: np.ndarray, axis: int, index: int,
                   plane_shape: tuple[int, int]) -> np.ndarray:
    """The mask's voxels at the centres of one CT slice's voxels (nearest neighbour, in world space)."""
    grid = np.meshgrid(np.arange(plane_shape[0]), np.arange(plane_shape[1]), indexing="ij")
    coords = [g.ravel().astype(float) for g in grid]
    coords.insert(axis, np.full(coords[0].shape, float(index)))
    ct_voxels = np.vstack([*coords, np.ones_like(coords[0])])
    mask_voxels = np.rint((np.linalg.inv(mask_affine) @ ct_affine @ ct_voxels)[:3]).astype(np.int64)
    inside = np.all((mask_voxels >= 0) & (mask_voxels < np.array(mask.shape)[:, None]), axis=0)
    values = np.zeros(ct_voxels.shape[1], dtype=bool)
    values[inside] = mask[tuple(mask_voxels[:, inside])]
    return values.reshape(plane_shape)


def _radiological(plane: np.ndarray, affine: np.ndarray, axes: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Turn a slice so anterior is up and the patient's right is on the viewer's left; return it and its aspect."""
    columns = affine[:3, :3]
    dominant = [int(np.argmax(np.abs(columns[:, a]))) for a in axes]
    spacing = [float(np.linalg.norm(columns[:, a])) for a in axes]
    if dominant == [0, 1]:
        plane, dominant, spacing, axes = plane.T, [1, 0], spacing[::-1], axes[::-1]
    if dominant != [1, 0]:  # an oblique slice: show it as stored
        return plane, spacing[0] / spacing[1]
    if columns[1, axes[0]] > 0:  # rows run towards anterior: flip so anterior is at the top
        plane = plane[::-1]
    if columns[0, axes[1]] > 0:  # columns run towards the patient's right (RAS+ x): that side goes left
        plane = plane[:, ::-1]
    return plane, spacing[0] / spacing[1]


def _placeable(volume: Volume) -> bool:
    return bool(np.all(np.isfinite(volume.affine)) and abs(np.linalg.det(volume.affine[:3, :3])) >= 1e-9)


def _focus(masks: list[np.ndarray], affines: list[np.ndarray]) -> np.ndarray:
    if len(masks) > 1 and masks[1].shape == masks[0].shape and np.allclose(affines[1], affines[0]):
        shared = masks[0] & masks[1]
        if shared.any():
            return shared
    return masks[0]


def slice_picture(image: Volume | None, masks: Sequence[Volume]) -> bytes | None:
    """A PNG of a CT slice in the soft-tissue window with each mask outlined; None when there is nothing to show.

    The slice is the first mask's fullest, or, when a second mask on the same grid shares voxels with it, the fullest
    slice of the shared voxels."""
    if image is None or not masks or not _placeable(image) or not all(_placeable(m) for m in masks):
        return None
    binary, affines = [m.data != 0 for m in masks], [m.affine for m in masks]
    if not binary[0].any():
        return None
    from matplotlib.figure import Figure  # only a check that pictures something pays for importing matplotlib

    axis = _axial_axis(image.affine)
    voxel = np.linalg.inv(image.affine) @ _centre_world(_focus(binary, affines), affines[0])
    index = int(np.clip(np.rint(voxel[axis]), 0, image.data.shape[axis] - 1))
    plane = np.take(image.data, index, axis=axis).astype(np.float32)
    axes = tuple(a for a in range(3) if a != axis)
    shown, aspect = _radiological(plane, image.affine, axes)
    level, width = SOFT_TISSUE
    fig = Figure(figsize=(2.6, max(1.0, min(2.6 * shown.shape[0] * aspect / shown.shape[1], 5.2))))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(shown, cmap="gray", vmin=level - width / 2, vmax=level + width / 2, aspect=aspect,
              interpolation="nearest")
    # The other mask is dashed on top, so where the two outlines coincide both stay visible.
    for mask, affine, colour, style in zip(binary, affines, OUTLINE_COLOURS, ("solid", (0, (2, 2)))):
        outline = _resample_onto(mask, affine, image.affine, axis, index, plane.shape)
        turned, _ = _radiological(outline.astype(np.float32), image.affine, axes)
        if turned.any():
            ax.contour(turned, levels=[0.5], colors=[colour], linewidths=1.4, linestyles=[style])
    ax.text(0.02, 0.5, "R", color="white", fontsize=8, transform=ax.transAxes, va="center")
    ax.text(0.98, 0.5, "L", color="white", fontsize=8, transform=ax.transAxes, va="center", ha="right")
    ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()
