"""Figures for the HTML report as inline SVG written directly: distributions of the cases' geometry, metadata, image
values and per class mask sizes."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

INK, ACCENT, FLAGGED, GRID = "#1f2933", "#3f6ad8", "#d64545", "#e4e7eb"
SERIES = ("#3f6ad8", "#e8833a", "#3aa675")
PX = 100  # pixels per inch of the former figure sizes
FONT = 'font-family="sans-serif"'
Scale = Callable[[float], float]


def _n(value: float) -> str:
    """A coordinate with one decimal: the pictures are at screen resolution, and every byte is in the page."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _text(x: float, y: float, text: str, size: int = 8, anchor: str = "middle", colour: str = INK,
          rotate: bool = False) -> str:
    # Names from the data are escaped as text: nothing in them is markup, math or a link.
    turn = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
    return (f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" text-anchor="{anchor}" fill="{colour}"{turn}>'
            f"{escape(text, quote=False)}</text>")


def _svg(width: float, height: float, parts: list[str], label: str) -> str:
    return (f'<svg class="figure" role="img" aria-label="{escape(label)}" '
            f'width="{_n(width)}" height="{_n(height)}" viewBox="0 0 {_n(width)} {_n(height)}" {FONT}>'
            f'<rect width="100%" height="100%" fill="white"/>{"".join(parts)}</svg>')


def _dots(points: Sequence[tuple[float, float]], colour: str, radius: float = 2.0, opacity: float = 0.6) -> str:
    """Dots as one path of zero-length round-capped strokes: a few bytes a dot, and each pixel drawn once."""
    seen = {(_n(x), _n(y)) for x, y in points}
    if not seen:
        return ""
    path = "".join(f"M{x} {y}h0" for x, y in sorted(seen))
    return (f'<path d="{path}" stroke="{colour}" stroke-width="{_n(2 * radius)}" stroke-linecap="round" '
            f'stroke-opacity="{opacity}" fill="none"/>')


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not high > low:
        return [low]
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if step * m >= raw)
    first = math.ceil(low / step - 1e-9)
    return [k * step for k in range(first, math.floor(high / step + 1e-9) + 1)]


def _tick_label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.0e}"


@dataclass(frozen=True)
class _Box:
    """A plot area in pixels."""

    left: float
    top: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width


def _span(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return low - pad, high + pad


def _linear(low: float, high: float, start: float, end: float) -> Scale:
    return lambda v: start + (v - low) / (high - low) * (end - start)


def _frame(box: _Box, title: str, xlabel: str, ylabel: str) -> list[str]:
    parts = [f'<path d="M{_n(box.left)} {_n(box.top)}V{_n(box.bottom)}H{_n(box.right)}" stroke="{INK}" '
             f'stroke-width="0.8" fill="none"/>']
    if title:
        parts.append(_text(box.left + box.width / 2, box.top - 8, title, 9))
    if xlabel:
        parts.append(_text(box.left + box.width / 2, box.bottom + 30, xlabel))
    if ylabel:
        parts.append(_text(box.left - 44, box.top + box.height / 2, ylabel, rotate=True))
    return parts


def _y_axis(box: _Box, low: float, high: float) -> tuple[Scale, list[str]]:
    y = _linear(low, high, box.bottom, box.top)
    parts = []
    for tick in _nice_ticks(low, high):
        parts.append(f'<path d="M{_n(box.left)} {_n(y(tick))}H{_n(box.right)}" stroke="{GRID}" stroke-width="0.6"/>')
        parts.append(_text(box.left - 4, y(tick) + 3, _tick_label(tick), anchor="end"))
    return y, parts


def _x_categories(box: _Box, labels: Sequence[str]) -> Callable[[float], float]:
    step = box.width / max(len(labels), 1)
    return lambda k: box.left + step * (k + 0.5)


def _strips(box: _Box, series: Sequence[Sequence[float | None]], labels: Sequence[str], title: str, xlabel: str,
            ylabel: str) -> list[str]:
    """One column of jittered dots per series: every case visible, outliers included, at any number of cases."""
    finite = [[float(v) for v in values if v is not None and math.isfinite(v)] for values in series]
    everything = [v for values in finite for v in values]
    if not everything:
        return _frame(box, title, xlabel, ylabel)
    y, parts = _y_axis(box, *_span(everything))
    x = _x_categories(box, labels)
    jitter = random.Random(0)  # fixed jitter: the same report draws the same picture
    half = box.width / max(len(labels), 1) * 0.18
    for k, values in enumerate(finite):
        parts.append(_dots([(x(k) + jitter.uniform(-half, half), y(v)) for v in values], SERIES[k % len(SERIES)]))
        parts.append(_text(x(k), box.bottom + 14, labels[k]))
    return parts + _frame(box, title, xlabel, ylabel)


def geometry_figure(spacings: Sequence[Sequence[float | None]], shapes: Sequence[Sequence[int]]) -> str | None:
    """Voxel spacing and grid size of every case along each voxel axis."""
    if not spacings:
        return None
    axes = ("i", "j", "k")
    left, right = _Box(65, 30, 300, 180), _Box(465, 30, 300, 180)
    parts = _strips(left, [[s[a] for s in spacings if len(s) > a] for a in range(3)], axes,
                    "voxel spacing per case", "voxel axis", "mm")
    parts += _strips(right, [[float(s[a]) for s in shapes if len(s) > a] for a in range(3)], axes,
                     "grid size per case", "voxel axis", "voxels")
    return _svg(800, 260, parts, "Voxel spacing and grid size")


def _histogram(box: _Box, values: Sequence[float], title: str) -> list[str]:
    bins = min(30, max(1, len(set(values))))
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    if high == low:
        low, high = low - 0.5, low + 0.5
    counts = [0] * bins
    for v in values:
        counts[min(int((v - low) / width), bins - 1)] += 1
    y, parts = _y_axis(box, 0, max(counts) * 1.05)
    x = _linear(low, high, box.left, box.right)
    step = box.width / bins
    for k, count in enumerate(counts):
        if count:
            parts.append(f'<rect x="{_n(box.left + k * step)}" y="{_n(y(count))}" width="{_n(step)}" '
                         f'height="{_n(box.bottom - y(count))}" fill="{ACCENT}"/>')
    for tick in _nice_ticks(low, high, 4):
        parts.append(_text(x(tick), box.bottom + 14, _tick_label(tick)))
    return parts + _frame(box, title, "value", "cases")


def numbers_figure(columns: dict[str, list[float]]) -> str | None:
    """One histogram per numeric meta.csv column."""
    columns = {name: values for name, values in columns.items() if values}
    if not columns:
        return None
    width = min(800.0, 320.0 * len(columns))
    cell = width / len(columns)
    parts = []
    for k, (name, values) in enumerate(columns.items()):
        parts += _histogram(_Box(k * cell + 65, 30, cell - 85, 160), values, name)
    return _svg(width, 240, parts, "Numeric meta.csv columns")


def image_values_figure(p1: list[float], p50: list[float], p99: list[float]) -> str | None:
    """Each case's 1st, 50th and 99th voxel percentile, in HU."""
    if not p50:
        return None
    parts = _strips(_Box(65, 30, 420, 180), [p1, p50, p99], ["p1", "p50", "p99"],
                    "image voxel percentiles per case", "percentile", "HU")
    return _svg(500, 260, parts, "Image values")


@dataclass(frozen=True)
class ClassSeries:
    """One class's whole masks over the release, and the cases a label finding flags, with their values."""

    name: str
    volumes: list[float]
    extents: list[float]
    flagged: list[tuple[str, float | None, float | None]]  # case, volume, extent


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def _log_axis(box: _Box, values: Sequence[float], label: str) -> tuple[Scale, list[str]]:
    low = math.floor(math.log10(min(values))) if values else 0
    high = max(math.ceil(math.log10(max(values))) if values else 1, low + 1)
    x = _linear(low, high, box.left, box.right)
    parts = []
    every = math.ceil((high - low + 1) / 7)  # at most 7 labels: more would run into each other
    for decade in range(low, high + 1):
        parts.append(f'<path d="M{_n(x(decade))} {_n(box.top)}V{_n(box.bottom)}" stroke="{GRID}" '
                     f'stroke-width="0.6"/>')
        if (decade - low) % every == 0:
            parts.append(_text(x(decade), box.bottom + 14, f"{10.0 ** decade:g}"))
    parts += _frame(box, "", label, "")
    return lambda v: x(math.log10(v)), parts


def class_distributions_figure(series: Sequence[ClassSeries]) -> str | None:
    """Per class, every whole mask's volume and head-to-feet extent (log scales), the flagged cases in red and named."""
    series = [s for s in series if s.volumes or s.flagged]
    if not series:
        return None
    row_height = 28
    height = 90 + row_height * len(series)
    boxes = (_Box(190, 20, 270, row_height * len(series)), _Box(500, 20, 285, row_height * len(series)))
    parts = []
    jitter = random.Random(0)
    for panel, (box, label) in enumerate(zip(boxes, ("volume of whole masks (mL)", "head-to-feet extent (mm)"))):
        values = [v for s in series for v in (s.volumes if panel == 0 else s.extents) if _positive(v)]
        values += [m[panel + 1] for s in series for m in s.flagged if _positive(m[panel + 1])]
        x, axis = _log_axis(box, values, label)
        parts += axis
        dots, marks = [], []
        for row, s in enumerate(series):
            y = box.top + row_height * (row + 0.5)
            dots += [(x(v), y + jitter.uniform(-5, 5)) for v in (s.volumes if panel == 0 else s.extents)
                     if _positive(v)]
            for case, *measured in s.flagged:
                if _positive(measured[panel]):
                    marks.append((x(measured[panel]), y))
                    parts.append(_text(x(measured[panel]) + 4, y - 4, case, 6, "start", FLAGGED))
            if panel == 0:
                parts.append(_text(box.left - 6, y + 3, s.name, 7, "end"))
        parts.append(_dots(dots, ACCENT, 1.8, 0.5))
        parts += [f'<path d="M{_n(mx)} {_n(my - 4)}l4 4l-4 4l-4-4z" fill="{FLAGGED}"/>' for mx, my in marks]
    return _svg(800, height, parts, "Per class distributions of whole masks")
