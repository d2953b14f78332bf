"""Evidence: slice pictures of flagged masks, read through the source within the scan's bounds, kept beside the report.

A picture is a courtesy: a file that cannot be read, is too large, or holds an empty mask just gets none."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence

import numpy as np

from qa.output.files import Folder
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
# A mask cut by the field of view (LABEL_TRUNCATED, info, about 20 a real case) is no error to look at: its pictures
# would crowd out those of real errors.
PICTURE_CODES = frozenset({"GEOM_SHAPE_MISMATCH", "GEOM_AFFINE_MISMATCH", "GEOM_AFFINE_INVALID", "LABEL_VALUES",
                           "LABEL_OVERLAP", "LABEL_DTYPE", "LABEL_HU", "LABEL_CHAIN", "LABEL_FRAGMENTS",
                           "LABEL_OUTLIER"})
# Findings about a whole organ or a chain are seen along the body, each mask's every piece projected onto the slice:
# the spine from the side, organs from the front.
VIEWS = {"LABEL_CHAIN": "sagittal", "LABEL_FRAGMENTS": "coronal", "LABEL_TRUNCATED": "coronal",
         "LABEL_OUTLIER": "coronal"}
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


def make_evidence(report: Report, source: ReleaseSource, layout: Layout, out: Folder,
                  limit: int = MAX_PICTURES, seconds: float = PICTURE_SECONDS,
                  max_memory: int = DEFAULT_BUDGET) -> list[Evidence]:
    """Slice pictures of flagged masks written as PNG files under evidence/ in `out`, and what each shows. The image
    (at most half of `max_memory`) and up to three masks (an eighth each) held for a picture stay within
    `max_memory`: a larger volume gets no picture."""
    made: list[Evidence] = []
    deadline = time.monotonic() + seconds
    image_cache: dict[str, Volume | None] = {}
    for f in picture_candidates(report.findings):
        if len(made) >= limit or time.monotonic() > deadline:
            break
        image_path = f"{f.case}/{layout.image}"
        if image_path not in image_cache:
            image_cache.clear()  # one image in memory at a time
            image_cache[image_path] = _volume(source, image_path, layout, max_memory // 2)
        mask = _volume(source, f.path, layout, max_memory // 8)
        read = ([] if mask is None else
                [(name, _volume(source, path, layout, max_memory // 8)) for name, path in _other_masks(f)])
        others = [(name, volume) for name, volume in read if volume is not None]
        view = VIEWS.get(f.code, "axial")
        png = _picture(image_cache[image_path], [mask, *(volume for _, volume in others)], view)
        if png is None:
            continue
        name = f"{EVIDENCE_DIR}/{f.fingerprint}.png"
        out.write(name, png)
        classes = [f.class_name, *(other for other, _ in others)]
        made.append(Evidence(fingerprint=f.fingerprint, file=name, case=f.case, path=f.path, classes=classes))
    return made


# The files pictured are the flagged ones, hostile at times: whatever goes wrong with one costs its picture, never the
# report that is written after the pictures.
def _volume(source: ReleaseSource, path: str, layout: Layout, limit: int) -> Volume | None:
    try:
        return read_volume(source, path, layout, limit)
    except Exception:
        return None


def _picture(image: Volume | None, masks: Sequence[Volume | None], view: str) -> bytes | None:
    try:
        return slice_picture(image, masks, view=view, project=view != "axial")
    except Exception:
        return None


def _sibling(path: str, class_name: str, other: str) -> str:
    """The path of another class's mask in the same folder, named as this one is."""
    folder, _, file = path.rpartition("/")
    return f"{folder}/{other}{file[len(class_name):]}"


def _other_masks(f: Finding) -> list[tuple[str, str]]:
    """(class, path) of the masks a picture of the finding outlines besides its own: the other mask of an overlap, a
    chain member's neighbours."""
    if f.code == "LABEL_OVERLAP" and isinstance(f.details.get("path_a"), str):
        return [(str(f.details["class_a"]), f.details["path_a"])]
    if f.code == "LABEL_CHAIN" and f.class_name is not None:
        names = [f.details.get("above"), f.details.get("below")] if f.subcode == "gap" else f.details.get("neighbours")
        return [(name, _sibling(f.path, f.class_name, name)) for name in names or [] if isinstance(name, str)]
    return []


# The world axis each view looks along: RAS+ x (sagittal), y (coronal), z (axial).
VIEW_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


def _view_axis(affine: np.ndarray, view: str) -> int:
    """The voxel axis that runs most nearly along the world axis the view looks along."""
    columns = affine[:3, :3]
    return int(np.argmax(np.abs(columns[VIEW_AXES[view]]) / np.linalg.norm(columns, axis=0)))


def _axial_axis(affine: np.ndarray) -> int:
    """The voxel axis that runs most nearly along the world's inferior-superior axis."""
    return _view_axis(affine, "axial")


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


def _focus(masks: list[np.ndarray], affines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The voxels a picture centres on, and their affine: the first mask's (its shared voxels with the second, when
    they share any on one grid), or the first non-empty mask's when the first is empty (a chain's gap)."""
    if len(masks) > 1 and masks[1].shape == masks[0].shape and np.allclose(affines[1], affines[0]):
        shared = masks[0] & masks[1]
        if shared.any():
            return shared, affines[0]
    k = next(k for k, mask in enumerate(masks) if mask.any())
    return masks[k], affines[k]


def _upright(plane: np.ndarray, affine: np.ndarray, axes: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Turn a coronal or sagittal slice so the head is up and the patient's right (coronal) or front (sagittal) is on
    the viewer's left; return it and its aspect."""
    columns = affine[:3, :3]
    spacing = [float(np.linalg.norm(columns[:, a])) for a in axes]
    if abs(columns[2, axes[1]]) > abs(columns[2, axes[0]]):  # rows must run head to feet
        plane, axes, spacing = plane.T, axes[::-1], spacing[::-1]
    if columns[2, axes[0]] > 0:  # rows run towards the head: flip so the head is at the top
        plane = plane[::-1]
    across = int(np.argmax(np.abs(columns[:2, axes[1]])))
    if columns[across, axes[1]] > 0:  # columns run to the patient's right (or front): that side goes left
        plane = plane[:, ::-1]
    return plane, spacing[0] / spacing[1]


def _outline(mask: np.ndarray, affine: np.ndarray, image: Volume, axis: int, index: int, plane_shape: tuple[int, int],
             project: bool) -> np.ndarray:
    """The mask on one slice of the image: its projection along the view (every piece, wherever it lies) when it
    shares the image's grid and `project` is asked, else its voxels at the slice."""
    if project and mask.shape == image.data.shape and np.allclose(affine, image.affine):
        return mask.any(axis=axis)
    return _resample_onto(mask, affine, image.affine, axis, index, plane_shape)


def _slice_index(focus: np.ndarray, affine: np.ndarray, image: Volume, axis: int, view: str) -> int:
    """The image slice through the focus: its fullest axial slice, or its centre of mass seen along the body."""
    if view == "axial":
        voxel = np.linalg.inv(image.affine) @ _centre_world(focus, affine)
    else:
        voxel = np.linalg.inv(image.affine) @ affine @ np.array([*np.argwhere(focus).mean(axis=0), 1.0])
    return int(np.clip(np.rint(voxel[axis]), 0, image.data.shape[axis] - 1))


SIDE_LABELS = {"axial": ("R", "L"), "coronal": ("R", "L"), "sagittal": ("A", "P")}


def slice_picture(image: Volume | None, masks: Sequence[Volume | None], view: str = "axial",
                  project: bool = False) -> bytes | None:
    """A PNG of a CT slice in the soft-tissue window with each mask outlined; None when there is nothing to show.

    axial: the slice is the first mask's fullest, or, when a second mask on the same grid shares voxels with it, the
    fullest slice of the shared voxels. coronal and sagittal: the slice through the first non-empty mask's centre,
    with (when `project`) each mask's projection along the view outlined, so that a piece off the slice shows."""
    if image is None or not masks or masks[0] is None or not _placeable(image) \
            or not all(_placeable(m) for m in masks if m is not None):
        return None
    masks = [m for m in masks if m is not None]
    binary, affines = [m.data != 0 for m in masks], [m.affine for m in masks]
    if not binary[0].any() and (view == "axial" or not any(b.any() for b in binary)):
        return None
    from matplotlib.figure import Figure  # only a check that pictures something pays for importing matplotlib

    axis = _view_axis(image.affine, view)
    focus, focus_affine = _focus(binary, affines)
    index = _slice_index(focus, focus_affine, image, axis, view)
    plane = np.take(image.data, index, axis=axis).astype(np.float32)
    axes = tuple(a for a in range(3) if a != axis)
    turn = _radiological if view == "axial" else _upright
    shown, aspect = turn(plane, image.affine, axes)
    level, width = SOFT_TISSUE
    fig = Figure(figsize=(2.6, max(1.0, min(2.6 * shown.shape[0] * aspect / shown.shape[1], 5.2))))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(shown, cmap="gray", vmin=level - width / 2, vmax=level + width / 2, aspect=aspect,
              interpolation="nearest")
    # The other masks are dashed on top, so where two outlines coincide both stay visible.
    styles = ["solid", *[(0, (2, 2))] * (len(binary) - 1)]
    colours = [OUTLINE_COLOURS[0], *[OUTLINE_COLOURS[1]] * (len(binary) - 1)]
    for mask, affine, colour, style in zip(binary, affines, colours, styles):
        outline = _outline(mask, affine, image, axis, index, plane.shape, project)
        turned, _ = turn(outline.astype(np.float32), image.affine, axes)
        if turned.any():
            ax.contour(turned, levels=[0.5], colors=[colour], linewidths=1.4, linestyles=[style])
    near, far = SIDE_LABELS[view]
    ax.text(0.02, 0.5, near, color="white", fontsize=8, transform=ax.transAxes, va="center")
    ax.text(0.98, 0.5, far, color="white", fontsize=8, transform=ax.transAxes, va="center", ha="right")
    ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()
