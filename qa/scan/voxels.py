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
# Distinct values other than 0 and 1 counted per mask; a mask with more (noise) keeps its most frequent ones.
MAX_TRACKED_VALUES = 1 << 12
# Voxels measured at a time: every temporary of a measurement is at most a few arrays of this many voxels.
SLAB_VOXELS = 1 << 19
# Voxels of up to 16 bits summed in int32 this many at a time, which cannot overflow it: 65535 * 2**15 < 2**31 - 1.
SUM_BLOCK = 1 << 15
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


class ImageStats:
    """Statistics of an image accumulated over consecutive slabs of its stored voxels in file order, so that a volume
    streamed in pieces and one held whole give the same facts: min, max, mean and percentiles in loaded units, NaN and
    infinity counts, and the padding value (stored)."""

    def __init__(self, voxels: int, dtype: np.dtype) -> None:
        self.voxels, self.kind = voxels, dtype.kind
        # Percentiles are taken on every `step`-th voxel: a regular sample of at most PERCENTILE_SAMPLE voxels.
        self.step = max(1, math.ceil(voxels / PERCENTILE_SAMPLE))
        self.sample: list[np.ndarray] = []
        self.nan_count = self.inf_count = self.finite = 0
        self.low = self.high = None
        self.total = 0.0
        self.floor, self.floor_count = None, 0  # the smallest stored value so far and how many voxels hold it

    def add(self, start: int, stored: np.ndarray) -> None:
        finite = stored
        if self.kind == "f":
            nan, inf = int(np.count_nonzero(np.isnan(stored))), int(np.count_nonzero(np.isinf(stored)))
            self.nan_count, self.inf_count = self.nan_count + nan, self.inf_count + inf
            if nan or inf:
                finite = stored[np.isfinite(stored)]
        sample = stored[(-start) % self.step :: self.step]
        self.sample.append(sample[np.isfinite(sample)] if self.kind == "f" else sample.copy())
        if finite.size == 0:
            return
        low, high = finite.min(), finite.max()
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        self.total += _sum(finite)
        self.finite += finite.size
        if self.kind in "iu" and (self.floor is None or low <= self.floor):
            count = int(np.count_nonzero(stored == low))
            self.floor_count = count if self.floor is None or low < self.floor else self.floor_count + count
            self.floor = low

    def padding_value(self) -> float | None:
        """The stored value that fills the region outside the scanned volume, when the image has one."""
        if self.floor is None or self.floor_count < PADDING_MIN_SHARE * self.voxels:
            return None
        return float(self.floor)

    def result(self, header: HeaderFacts) -> ImageValues:
        if self.finite == 0:
            return ImageValues(self.voxels, None, None, None, {}, self.nan_count, self.inf_count)
        quantiles = percentiles(np.concatenate(self.sample))
        low, high = sorted((header.loaded(float(self.low)), header.loaded(float(self.high))))
        return ImageValues(
            voxels=self.voxels,
            min=low,
            max=high,
            mean=header.loaded(self.total / self.finite),
            percentiles={f"p{p}": header.loaded(float(q)) for p, q in zip(PERCENTILES, quantiles)},
            nan_count=self.nan_count,
            inf_count=self.inf_count,
            padding_value=self.padding_value(),
        )


def _sum(values: np.ndarray) -> float:
    """The sum as float64 adds the values up. Integers of up to 16 bits (a CT's) are added exactly, and twice as fast,
    in int32 over blocks too short to overflow it: the same number, as float64 adds them exactly too (its partial sums
    stay integers below 2**53 for fewer than 2**37 values)."""
    if values.dtype.kind not in "iu" or values.dtype.itemsize > 2:
        return float(values.sum(dtype=np.float64))
    whole = values.size - values.size % SUM_BLOCK
    blocks = values[:whole].reshape(-1, SUM_BLOCK).sum(axis=1, dtype=np.int32)
    return float(int(blocks.sum(dtype=np.int64)) + int(values[whole:].sum(dtype=np.int64)))


def percentiles(values: np.ndarray) -> np.ndarray:
    """np.percentile(values, PERCENTILES) (its linear method), bit for bit. 8- and 16-bit integers (a CT's int16) are
    counted instead of partitioned, several times faster: the values at the ranks each percentile falls between are
    read off the running count, and interpolated as numpy's _lerp does, on the same types. The counting holds 8 bytes
    per value, at most PERCENTILE_SAMPLE of them: within a slab's temporaries."""
    if values.dtype.kind not in "iu" or values.dtype.itemsize > 2:
        return np.percentile(values, PERCENTILES, overwrite_input=True)
    lowest = int(np.iinfo(values.dtype).min)
    shifted = values.astype(np.intp)
    shifted -= lowest  # from 0: bincount counts non-negative integers
    running = np.cumsum(np.bincount(shifted))
    del shifted
    last = values.size - 1
    virtual = last * np.true_divide(PERCENTILES, 100)  # below the last rank: no percentile is 100
    below = np.floor(virtual)
    ranks = np.concatenate([below, np.minimum(below + 1, last)]).astype(np.intp)
    at = (np.searchsorted(running, ranks, side="right") + lowest).astype(values.dtype)
    a, b = at[: len(PERCENTILES)], at[len(PERCENTILES) :]
    gamma = virtual - below
    step = b - a
    result = np.add(a, step * gamma)
    np.subtract(b, step * (1 - gamma), out=result, where=gamma >= 0.5, casting="unsafe", dtype=result.dtype)
    return result


def image_values(stored: np.ndarray, header: HeaderFacts, slab: int = SLAB_VOXELS) -> ImageValues:
    """The statistics of an image held whole, taken slab by slab: no temporary larger than a slab."""
    stats = ImageStats(stored.size, stored.dtype)
    for start in range(0, stored.size, slab):
        stats.add(start, stored[start : start + slab])
    return stats.result(header)


class MaskStats:
    """A mask's facts accumulated over slabs of its stored voxels (each slab's first voxel given as a flat index in file
    order): values other than 0 and 1, non-zero voxels, their extent and centre, and the image inside them when
    `image` (flat, on the same grid) is given, with how many of them hold the image's `padding` value.

    The flat indices of the non-zero voxels are kept for the overlap tracker while they take at most `index_limit`
    bytes (None: not kept); past it `index` is None and `overflow` says so."""

    def __init__(self, shape: tuple[int, ...], image: np.ndarray | None = None, padding: float | None = None,
                 index_limit: int | None = None) -> None:
        self.nx, self.ny = shape[0], shape[1] if len(shape) > 1 else 1
        self.image, self.padding = image, padding
        self.voxels = 0
        self.low, self.high, self.sums = [math.inf] * 3, [-1] * 3, [0] * 3
        self.image_sum = None if image is None else 0.0
        self.image_sq_sum: int | float | None = None if image is None else 0
        self.padding_voxels = None if image is None or padding is None else 0
        self.others: dict[str, int] = {}
        self.index_limit = index_limit
        self.chunks: list[np.ndarray] = []
        self.index_bytes = 0
        self.overflow = False

    def add(self, start: int, stored: np.ndarray) -> None:
        """One slab of voxels, the first of them `start` voxels into the image."""
        index = _nonzero(stored, self._count_others(stored))
        if index.size:
            index += start
            self._add_index(index)

    def add_words(self, head: int, first: int, chosen: np.ndarray, values: np.ndarray) -> None:
        """The voxels of some non-zero 8-byte words of a mask whose words start `head` voxels into it: the words'
        numbers counted from word `first`, ascending, and their voxels, 8 bytes' worth per word."""
        shift = (8 // values.itemsize).bit_length() - 1  # voxels per word: 1, 2, 4 or 8
        found = _nonzero(values, self._count_others(values))
        if found.size == 0:
            return
        index = np.take(chosen, found >> shift)
        index += first
        index <<= shift
        found &= (1 << shift) - 1
        index += found
        del found
        index += head
        self._add_index(index)

    def _add_index(self, index: np.ndarray) -> None:
        """Non-zero voxels by their flat indices in file order, ascending, after any added before."""
        self.voxels += index.size
        # In int32 where the indices fit: a third less time than int64 (half the bytes), the copy included. numpy
        # divides by a constant five times faster than np.divmod does (libdivide), and the remainder is then a
        # multiply and a subtract, done in place: no more temporaries than divmod's
        flat = index.astype(np.int32) if index[-1] <= np.iinfo(np.int32).max else index
        rows = flat // self.nx
        x = rows * self.nx
        np.subtract(flat, x, out=x)
        del flat
        z = rows // self.ny
        y = z * self.ny
        np.subtract(rows, y, out=y)
        del rows
        for axis, coord in enumerate((x, y, z)):
            self.low[axis] = min(self.low[axis], int(coord[0]) if axis == 2 else int(coord.min()))
            self.high[axis] = max(self.high[axis], int(coord[-1]) if axis == 2 else int(coord.max()))
            self.sums[axis] += int(coord.sum(dtype=np.int64))
        del x, y, z
        if self.image is not None:
            inside = np.take(self.image, index)  # as self.image[index], a third faster
            self.image_sum += float(inside.sum(dtype=np.float64))
            self.image_sq_sum += _sum_of_squares(inside)
            if self.padding is not None:
                self.padding_voxels += int(np.count_nonzero(inside == self.padding))
        self._keep(index)

    def _keep(self, index: np.ndarray) -> None:
        if self.index_limit is None or self.overflow:
            return
        if self.index_bytes + index.nbytes > self.index_limit:
            self.chunks, self.overflow = [], True
            return
        self.chunks.append(index)
        self.index_bytes += index.nbytes

    def _count_others(self, stored: np.ndarray) -> bool:
        """Counts the slab's values other than 0 and 1; whether it has none. The cheap test first."""
        if stored.dtype == np.uint8 or stored.dtype == np.bool_:
            if stored.max() <= 1:
                return True
        elif bool(np.all((stored == 0) | (stored == 1))):
            return True
        values, counts = np.unique(stored, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist()):
            if value not in (0, 1):
                key = f"{value:g}"
                self.others[key] = self.others.get(key, 0) + count
        if len(self.others) > MAX_TRACKED_VALUES:
            # a mask of noise: keep the most frequent values (their counts may then be short by a few voxels)
            kept = sorted(self.others.items(), key=lambda kv: -kv[1])[: MAX_TRACKED_VALUES // 2]
            self.others = dict(kept)
        return False

    @property
    def index(self) -> np.ndarray | None:
        """The flat indices of the non-zero voxels, ascending, or None when they were not kept (or dropped)."""
        if self.index_limit is None or self.overflow:
            return None
        if len(self.chunks) != 1:  # joined once, so that the slabs' pieces are not held beside the whole
            self.chunks = [np.concatenate(self.chunks) if self.chunks else np.empty(0, dtype=np.intp)]
        return self.chunks[0]

    def drop_index(self) -> None:
        """Let go of the indices once they have served."""
        self.chunks, self.index_limit = [], None

    def result(self) -> MaskValues:
        others = sorted(self.others.items(), key=lambda kv: (-kv[1], _number(kv[0])))[:MAX_REPORTED_VALUES]
        other = dict(others) if others else None
        sq_sum = None if self.image_sq_sum is None else float(self.image_sq_sum)
        if self.voxels == 0:
            return MaskValues(0, other, None, None, self.image_sum, self.padding_voxels, sq_sum)
        bbox = (tuple(int(v) for v in self.low), tuple(int(v) for v in self.high))
        centroid = tuple(total / self.voxels for total in self.sums)
        return MaskValues(self.voxels, other, bbox, centroid, self.image_sum, self.padding_voxels, sq_sum)


def _sum_of_squares(values: np.ndarray) -> int | float:
    """The sum of squares, exact for 8- and 16-bit integers, which square into 32 bits (int16's) or 64: 30 times
    faster than through float64 copies on an int16 CT. An integer for those, so that slabs add up exactly."""
    if values.dtype.kind in "iu" and values.dtype.itemsize <= 2:
        wide = np.int64 if values.dtype == np.uint16 else np.int32
        return int(np.square(values, dtype=wide).sum(dtype=np.int64))
    return float(np.square(values, dtype=np.float64).sum())


def _number(key: str) -> float:
    """A reported value's number, NaN last, so that values with equal counts are listed in a stable order."""
    value = float(key)
    return math.inf if math.isnan(value) else value


def measure_mask(mask: np.ndarray, stats: MaskStats, slab: int = SLAB_VOXELS) -> None:
    """A mask held whole (flat, file order), slab by slab. Most of a mask is zeros: for integers, whose zero is all
    zero bytes, its 8-byte words are tested first (one pass at memory speed over bytes the inflater has just written)
    and only the voxels of non-zero words looked at. Each step's temporaries stay within a slab's: `slab` words
    tested at a time, and the non-zero ones taken `slab // 8` words (at most `slab` voxels) at a time."""
    words = _word_span(mask)
    if words is None:
        for start in range(0, mask.size, slab):
            stats.add(start, mask[start : start + slab])
        return
    head, end = words
    if head:
        stats.add(0, mask[:head])
    body = mask[head:end].view(np.uint64)
    step = max(1, slab // 8)
    for first in range(0, body.size, slab):
        block = body[first : first + slab]
        chosen = np.flatnonzero(block != 0)  # a bool array's non-zero entries are found fastest (see _nonzero)
        for part in range(0, chosen.size, step):
            some = chosen[part : part + step]
            stats.add_words(head, first, some, np.take(block, some).view(mask.dtype))
    if end < mask.size:
        stats.add(end, mask[end:])


def _word_span(mask: np.ndarray) -> tuple[int, int] | None:
    """Where a flat mask's aligned 8-byte words lie, as voxel indices (the first voxel of the first word, the voxel
    after the last word), when its voxels are integers that no word boundary splits; None otherwise."""
    size = mask.dtype.itemsize
    if mask.dtype.kind not in "biu" or 8 % size or not mask.flags.c_contiguous:
        return None
    skew = -mask.ctypes.data % 8
    if skew % size:
        return None
    per, head = 8 // size, min(skew // size, mask.size)
    return head, head + (mask.size - head) // per * per


def _nonzero(values: np.ndarray, binary: bool) -> np.ndarray:
    """The flat indices of the non-zero values. numpy finds the non-zero voxels of a bool array about 20 times faster
    than of a uint8 one, and uint8 values of 0 and 1 are exactly bool ones."""
    if binary and values.dtype == np.uint8:
        return np.flatnonzero(values.view(np.bool_))
    return np.flatnonzero(values)


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
        previous = np.take(self.owner, index)  # as self.owner[index], faster
        self.owner[index] = current
        if not previous.any():  # most masks share no voxel: no shared ones to pick out
            return []
        taken = previous > 0
        shared, on_top = index[taken], previous[taken]
        met = [on_top]
        if self.beneath_voxels.size:
            below = np.isin(self.beneath_voxels, shared, assume_unique=False)
            met.append(self.beneath_owners[below])
        self.beneath_voxels = np.concatenate([self.beneath_voxels, shared])
        self.beneath_owners = np.concatenate([self.beneath_owners, on_top])
        counts = np.bincount(np.concatenate(met), minlength=current)
        return [Overlap(self.names[k - 1], name, int(counts[k])) for k in np.flatnonzero(counts)]
