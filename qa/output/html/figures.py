"""Figures for the HTML report as PNG data URIs: distributions of the cases' geometry, metadata and image values."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

INK, ACCENT, FLAGGED = "#1f2933", "#3f6ad8", "#d64545"
SERIES = ("#3f6ad8", "#e8833a", "#3aa675")
# Text from the data (column, class and case names) is drawn as it is: as math text, '$x^2$' would show as x squared
# and 'a$$b' would raise; a user's matplotlibrc with text.usetex would hand '_' and '%' to LaTeX.
LITERAL = {"usetex": False, "parse_math": False}


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
    ax.set_title(title, fontsize=9, color=INK, **LITERAL)
    ax.set_xlabel(xlabel, fontsize=8, color=INK, **LITERAL)
    ax.set_ylabel(ylabel, fontsize=8, color=INK, **LITERAL)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=INK, labelsize=8)
    ax.grid(axis="y", color="#e4e7eb", linewidth=0.6)
    ax.set_axisbelow(True)


def _strips(ax: Axes, series: Sequence[Sequence[float | None]], labels: Sequence[str]) -> None:
    """One column of jittered dots per series: every case visible, outliers included, at any number of cases."""
    rng = np.random.default_rng(0)  # fixed jitter: the same report draws the same picture
    for k, values in enumerate(series):
        finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
        ax.scatter(k + rng.uniform(-0.18, 0.18, finite.size), finite, s=10, alpha=0.6, color=SERIES[k % len(SERIES)],
                   linewidths=0)
    ax.set_xticks(range(len(series)), labels)
    ax.set_xlim(-0.6, len(series) - 0.4)


def geometry_figure(spacings: Sequence[Sequence[float | None]], shapes: Sequence[Sequence[int]]) -> str | None:
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


@dataclass(frozen=True)
class ClassSeries:
    """One class's whole masks over the release, and the cases a label finding flags, with their values."""

    name: str
    volumes: list[float]
    extents: list[float]
    flagged: list[tuple[str, float | None, float | None]]  # case, volume, extent


def class_distributions_figure(series: Sequence[ClassSeries]) -> str | None:
    """Per class, every whole mask's volume and head-to-feet extent (log scales), the flagged cases in red and named."""
    fig = draw_class_distributions(series)
    return None if fig is None else _data_uri(fig)


def draw_class_distributions(series: Sequence[ClassSeries]) -> Figure | None:
    """The figure of class_distributions_figure, not yet rendered."""
    series = [s for s in series if s.volumes or s.flagged]
    if not series:
        return None
    height = 0.9 + 0.28 * len(series)
    fig = _figure(8.0, height)
    fig.subplots_adjust(left=1.9 / 8.0, bottom=0.5 / height, top=1 - 0.3 / height)
    volume_ax, extent_ax = fig.subplots(1, 2, sharey=True)
    rng = np.random.default_rng(0)
    # one scatter of dots and one of flagged cases per axes: a collection per class would cost more than the drawing
    dots: dict[Axes, tuple[list[np.ndarray], list[np.ndarray]]] = {volume_ax: ([], []), extent_ax: ([], [])}
    marks: dict[Axes, tuple[list[float], list[int]]] = {volume_ax: ([], []), extent_ax: ([], [])}
    for row, s in enumerate(reversed(series)):
        for ax, values, k in ((volume_ax, s.volumes, 1), (extent_ax, s.extents, 2)):
            finite = np.array([v for v in values if v and math.isfinite(v) and v > 0], dtype=float)
            dots[ax][0].append(finite)
            dots[ax][1].append(row + rng.uniform(-0.18, 0.18, finite.size))
            for case, *measured in s.flagged:
                value = measured[k - 1]
                if value is not None and math.isfinite(value) and value > 0:
                    marks[ax][0].append(value)
                    marks[ax][1].append(row)
                    ax.annotate(case, (value, row), xytext=(3, 3), textcoords="offset points", fontsize=6,
                                color=FLAGGED, **LITERAL)
    for ax, (xs, ys) in dots.items():
        ax.scatter(np.concatenate(xs), np.concatenate(ys), s=8, alpha=0.5, color=ACCENT, linewidths=0)
        if marks[ax][0]:
            ax.scatter(*marks[ax], s=26, color=FLAGGED, marker="D", linewidths=0, zorder=3)
    for ax, label in ((volume_ax, "volume of whole masks (mL)"), (extent_ax, "head-to-feet extent (mm)")):
        ax.set_xscale("log")
        _style(ax, "", label, "")
        ax.grid(axis="x", color="#e4e7eb", linewidth=0.6)
    volume_ax.set_yticks(range(len(series)), [s.name for s in reversed(series)], fontsize=7, **LITERAL)
    volume_ax.set_ylim(-0.6, len(series) - 0.4)
    return fig
