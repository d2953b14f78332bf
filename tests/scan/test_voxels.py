"""qa.scan.voxels: a mask measured word by word has the facts of one measured slab by slab; percentiles are numpy's."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.scan.voxels import PERCENTILES, MaskStats, measure_mask, percentiles

SHAPE = (24, 10, 9)
VOXELS = 24 * 10 * 9
MASK_DTYPES = ["|u1", "|i1", "|b1", "<u2", ">u2", "<i2", ">i4", "<u8", "<f4"]


def stored_mask(dtype: str, skew: int, values: np.ndarray) -> np.ndarray:
    """The values as a flat mask of `dtype` whose first voxel lies `skew` bytes past an 8-byte boundary, as a mask
    inflated behind a header of any length lies in its buffer."""
    size = np.dtype(dtype).itemsize
    buffer = np.zeros(16 + VOXELS * size, dtype=np.uint8)
    start = (-buffer.ctypes.data) % 8 + skew
    mask = np.frombuffer(buffer, dtype=dtype, count=VOXELS, offset=start)
    mask.setflags(write=True)
    mask[:] = values.astype(dtype)
    return mask


def slab_by_slab(mask: np.ndarray, stats: MaskStats, slab: int) -> None:
    for start in range(0, mask.size, slab):
        stats.add(start, mask[start : start + slab])


@st.composite
def masks(draw: st.DrawFn) -> np.ndarray:
    """Blobs of 1 on zeros, sometimes with a few other values: what measuring a real mask meets."""
    values = np.zeros(VOXELS, dtype=np.int64)
    for _ in range(draw(st.integers(0, 4))):
        first = draw(st.integers(0, VOXELS - 1))
        values[first : first + draw(st.integers(1, 300))] = 1
    for _ in range(draw(st.integers(0, 3))):
        values[draw(st.integers(0, VOXELS - 1))] = draw(st.sampled_from([2, 3, 7, 100]))
    return values


@settings(max_examples=80, deadline=None)
@given(dtype=st.sampled_from(MASK_DTYPES), skew=st.integers(0, 7), values=masks(),
       slab=st.sampled_from([64, 1000, 1 << 19]))
def test_a_mask_measured_by_words_has_the_facts_of_one_measured_slab_by_slab(dtype: str, skew: int,
                                                                             values: np.ndarray, slab: int) -> None:
    if dtype == "|b1":
        values = values.clip(0, 1)
    mask = stored_mask(dtype, skew, values)
    image = np.arange(VOXELS, dtype=np.int16) % 50 - 10
    by_words, by_slabs = (MaskStats(SHAPE, image, padding=-10.0, index_limit=1 << 20) for _ in range(2))
    measure_mask(mask, by_words, slab)
    slab_by_slab(mask, by_slabs, slab)
    assert by_words.result() == by_slabs.result()
    assert np.array_equal(by_words.index, np.flatnonzero(values))


def test_values_other_than_0_and_1_are_counted_in_a_mask_measured_by_words() -> None:
    values = np.zeros(VOXELS, dtype=np.int64)
    values[[0, 7, 8, VOXELS - 1]] = [2, 255, 1, 2]
    stats = MaskStats(SHAPE)
    measure_mask(stored_mask("|u1", 3, values), stats)
    assert (stats.result().voxels, stats.result().other_values) == (4, {"2": 2, "255": 1})


def test_a_mask_of_ones_measured_by_words_in_small_slabs_keeps_every_voxel_in_order() -> None:
    mask = stored_mask("|u1", 5, np.ones(VOXELS, dtype=np.int64))
    stats = MaskStats(SHAPE, index_limit=1 << 20)
    measure_mask(mask, stats, slab=16)
    assert np.array_equal(stats.index, np.arange(VOXELS))
    assert stats.result().bbox == ((0, 0, 0), (23, 9, 8))


@settings(max_examples=150, deadline=None)
@given(dtype=st.sampled_from(["|i1", "|u1", "<i2", ">i2", "<u2"]), data=st.data())
def test_percentiles_of_small_integers_are_numpys_bit_for_bit(dtype: str, data: st.DataObject) -> None:
    info = np.iinfo(np.dtype(dtype))
    values = np.array(data.draw(st.lists(st.integers(int(info.min), int(info.max)) | st.sampled_from(
        [int(info.min), int(info.max), 0]), min_size=1, max_size=300)), dtype=dtype)
    expected = np.percentile(values, PERCENTILES)
    assert percentiles(values.copy()).tobytes() == expected.tobytes()


def test_percentiles_of_other_values_are_numpys() -> None:
    values = np.array([0.5, -3.0, 7.25, 1e9, 2.0], dtype=np.float32)
    assert np.array_equal(percentiles(values.copy()), np.percentile(values, PERCENTILES))
