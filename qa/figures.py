"""Figures for the HTML report as PNG data URIs: distributions, and CT slices with a mask outlined."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

SOFT_TISSUE = (40.0, 400.0)  # window level and width in HU
MAX_PICTURE_VOXELS = 2**27  # a mask this large is read whole (uint8: 128 MiB); a header claiming more gets no picture
OUTLINE_COLOURS = ("#ffb000", "#00d4ff")
INK, ACCENT = "#1f2933", "#3f6ad8"
SERIES = ("#3f6ad8", "#e8833a", "#3aa675")


def _data_uri(fig: Figure, dpi: int = 100) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _figure(width: float, height: float) -> Figure:
    """A figure with fixed margins in inches: a layout engine would cost more time than all the drawing."""
    fig = Figure(figsize=(width, height))
    fig.set_facecolor("white")
    fig.subplots_adjust(left=0.65 / width, right=1 - 0.15 / width, bottom=0.5 / height, top=1 - 0.3 / height,
                        wspace=0.85 / (width / 2))
    return fig


def _style(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=9, color=INK)
    ax.set_xlabel(xlabel, fontsize=8, color=INK)
    ax.set_ylabel(ylabel, fontsize=8, color=INK)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=INK, labelsize=8)
    ax.grid(axis="y", color="#e4e7eb", linewidth=0.6)
    ax.set_axisbelow(True)


def _strips(ax: Axes, series: Sequence[Sequence[float]], labels: Sequence[str]) -> None:
    """One column of jittered dots per series: every case visible, outliers included, at any number of cases."""
    rng = np.random.default_rng(0)  # fixed jitter: the same report draws the same picture
    for k, values in enumerate(series):
        finite = np.array([v for v in values if math.isfinite(v)], dtype=float)
        ax.scatter(k + rng.uniform(-0.18, 0.18, finite.size), finite, s=10, alpha=0.6, color=SERIES[k % len(SERIES)],
                   linewidths=0)
    ax.set_xticks(range(len(series)), labels)
    ax.set_xlim(-0.6, len(series) - 0.4)


def geometry_figure(spacings: Sequence[Sequence[float]], shapes: Sequence[Sequence[int]]) -> str | None:
    """Voxel spacing and grid size of every case along each voxel axis."""
    if not spacings:
        return None
    fig = _figure(8.0, 2.6)
    left, right = fig.subplots(1, 2)
    axes = ("i", "j", "k")
    _strips(left, [[s[a] for s in spacings if len(s) > a] for a in range(3)], axes)
    _style(left, "voxel spacing per case", "voxel axis", "mm")
    _strips(right, [[float(s[a]) for s in shapes if len(s) > a] for a in range(3)], axes)
    _style(right, "grid size per case", "voxel axis", "voxels")
    return _data_uri(fig)


def numbers_figure(columns: dict[str, list[float]]) -> str | None:
    """One histogram per numeric meta.csv column."""
    columns = {name: values for name, values in columns.items() if values}
    if not columns:
        return None
    fig = _figure(min(8.0, 3.2 * len(columns)), 2.4)
    for ax, (name, values) in zip(fig.subplots(1, len(columns), squeeze=False)[0], columns.items()):
        ax.hist(values, bins=min(30, max(1, len(set(values)))), color=ACCENT)
        _style(ax, name, "value", "cases")
    return _data_uri(fig)


def image_values_figure(p1: list[float], p50: list[float], p99: list[float]) -> str | None:
    """Each case's 1st, 50th and 99th voxel percentile, in HU."""
    if not p50:
        return None
    fig = _figure(5.0, 2.6)
    ax = fig.subplots()
    _strips(ax, [p1, p50, p99], ["p1", "p50", "p99"])
    _style(ax, "image voxel percentiles per case", "percentile", "HU")
    return _data_uri(fig)


def _read_header(path: Path) -> nib.Nifti1Image | None:
    image = nib.load(path)
    shape = image.shape
    if len(shape) < 3 or any(n < 1 for n in shape[:3]) or math.prod(shape[:3]) > MAX_PICTURE_VOXELS:
        return None
    if not np.all(np.isfinite(image.affine)) or abs(np.linalg.det(image.affine[:3, :3])) < 1e-9:
        return None
    return image


def _mask_voxels(image: nib.Nifti1Image) -> np.ndarray:
    data = np.asanyarray(image.dataobj)
    while data.ndim > 3:
        data = data[..., 0]
    return data != 0


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
    """Turn a slice so anterior is up and the patient's right is on the viewer's left; return it and its pixel aspect."""
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


def slice_picture(image_path: Path, mask_paths: Sequence[Path]) -> str | None:
    """A PNG of a CT slice in the soft-tissue window with each mask outlined; None when there is nothing to show.

    The slice is the first mask's fullest, or, when a second mask on the same grid shares voxels with it, the fullest
    slice of the shared voxels. Files that cannot be read, are too large, or an empty first mask give None: a picture
    is a courtesy, never a reason for the report to fail.
    """
    try:
        return _slice_picture(image_path, list(mask_paths))
    except Exception:  # noqa: BLE001 - broken input is normal here; it only costs the picture
        return None


def _focus(masks: list[np.ndarray], affines: list[np.ndarray]) -> np.ndarray:
    if len(masks) > 1 and masks[1].shape == masks[0].shape and np.allclose(affines[1], affines[0]):
        shared = masks[0] & masks[1]
        if shared.any():
            return shared
    return masks[0]


def _slice_picture(image_path: Path, mask_paths: list[Path]) -> str | None:
    ct = _read_header(image_path)
    headers = [_read_header(path) for path in mask_paths]
    if ct is None or not headers or headers[0] is None:
        return None
    readable = [h for h in headers if h is not None]
    masks, affines = [_mask_voxels(h) for h in readable], [h.affine for h in readable]
    if not masks[0].any():
        return None
    axis = _axial_axis(ct.affine)
    voxel = np.linalg.inv(ct.affine) @ _centre_world(_focus(masks, affines), affines[0])
    index = int(np.clip(np.rint(voxel[axis]), 0, ct.shape[axis] - 1))
    selector = tuple(index if a == axis else slice(None) for a in range(3)) + (0,) * (len(ct.shape) - 3)
    plane = np.asarray(ct.dataobj[selector], dtype=np.float32)
    axes = tuple(a for a in range(3) if a != axis)
    shown, aspect = _radiological(plane, ct.affine, axes)
    level, width = SOFT_TISSUE
    fig = Figure(figsize=(2.6, max(1.0, min(2.6 * shown.shape[0] * aspect / shown.shape[1], 5.2))))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(shown, cmap="gray", vmin=level - width / 2, vmax=level + width / 2, aspect=aspect, interpolation="nearest")
    # The other mask is dashed on top, so where the two outlines coincide both stay visible.
    for mask, affine, colour, style in zip(masks, affines, OUTLINE_COLOURS, ("solid", (0, (2, 2)))):
        outline = _resample_onto(mask, affine, ct.affine, axis, index, plane.shape)
        turned, _ = _radiological(outline.astype(np.float32), ct.affine, axes)
        if turned.any():
            ax.contour(turned, levels=[0.5], colors=[colour], linewidths=1.4, linestyles=[style])
    ax.text(0.02, 0.5, "R", color="white", fontsize=8, transform=ax.transAxes, va="center")
    ax.text(0.98, 0.5, "L", color="white", fontsize=8, transform=ax.transAxes, va="center", ha="right")
    ax.set_axis_off()
    return _data_uri(fig)
