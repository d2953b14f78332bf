"""Streaming a gzip NIfTI in bounded steps: every member verified by the member walk the whole-file path shares, the
voxels in slabs, and the same facts as a volume held whole."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import write_zeros_nifti

from qa.scan.members import MemberStream
from qa.scan.nifti import read_file_facts
from qa.scan.stream import blob_key, voxel_slabs
from qa.scan.voxels import ImageStats, MaskStats, image_values, measure_mask, voxel_array
from qa.source.fs import FolderSource

LIVER = "s0000/segmentations/liver.nii.gz"
CT = "s0000/ct.nii.gz"


def streamed(path: Path, expected: int) -> tuple[bytes, MemberStream]:
    source = FolderSource(path.parent)
    with source.open(path.name) as reader:
        stream = MemberStream(reader, expected)
        data = b"".join(stream)
    return data, stream


def test_stream_yields_the_whole_file_and_verifies_it(example_root: Path) -> None:
    expected = gzip.decompress((example_root / CT).read_bytes())
    data, stream = streamed(example_root / CT, len(expected))
    assert data == expected
    assert (stream.facts.inflated_bytes, stream.facts.error) == (len(expected), None)


def test_members_that_follow_each_other_are_one_valid_stream(example_root: Path, tmp_path: Path) -> None:
    whole = gzip.decompress((example_root / LIVER).read_bytes())
    (tmp_path / "two.nii.gz").write_bytes(gzip.compress(whole[:1000]) + gzip.compress(whole[1000:]))
    data, stream = streamed(tmp_path / "two.nii.gz", len(whole))
    assert (data, stream.facts.error) == (whole, None)


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda raw: raw[:-8] + bytes([raw[-8] ^ 0xFF]) + raw[-7:], "CRC32 mismatch"),
    (lambda raw: raw[: len(raw) // 2], "truncated"),
    (lambda raw: raw + b"trailing junk", "13 bytes after the last gzip member"),
    (lambda raw: raw[:-4] + (1 + int.from_bytes(raw[-4:], "little")).to_bytes(4, "little"), "length mismatch"),
])
def test_a_broken_stream_says_what_broke(example_root: Path, tmp_path: Path, damage, reason: str) -> None:
    raw = (example_root / LIVER).read_bytes()
    (tmp_path / "broken.nii.gz").write_bytes(damage(raw))
    _, stream = streamed(tmp_path / "broken.nii.gz", len(gzip.decompress(raw)))
    assert reason in stream.facts.error


def test_a_stream_longer_than_its_header_says_stops_there(example_root: Path) -> None:
    expected = len(gzip.decompress((example_root / LIVER).read_bytes()))
    data, stream = streamed(example_root / LIVER, expected - 5000)
    assert stream.facts.error == "the stream holds more data than the header says"
    assert len(data) <= expected - 5000 + (1 << 22)


def test_a_stream_that_turns_to_garbage_stops_at_the_garbage(tmp_path: Path) -> None:
    """1000^3 int16 declared (2 GB), 4 kB of real deflate data: a few megabytes come out, then the error."""
    write_zeros_nifti(tmp_path / "ct.nii.gz", (1000, 1000, 1000), "int16", np.eye(4), garbage_after=4096)
    data, stream = streamed(tmp_path / "ct.nii.gz", 352 + 2 * 10**9)
    assert stream.facts.error.startswith("deflate data broken after")
    assert len(data) < 64 << 20


def test_slabs_are_the_voxels_in_file_order(example_root: Path) -> None:
    facts = read_file_facts(FolderSource(example_root), CT)
    with FolderSource(example_root).open(CT) as reader:
        slabs = [(start, slab.copy()) for start, slab in voxel_slabs(MemberStream(reader, facts.header.stream_bytes),
                                                                      facts.header, voxels=10_000)]
    voxels = np.asarray(nib.load(example_root / CT).dataobj).ravel(order="F")
    assert [start for start, _ in slabs] == list(range(0, voxels.size, 10_000))
    assert np.array_equal(np.concatenate([slab for _, slab in slabs]), voxels)


def whole_and_streamed(root: Path, path: str) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    source = FolderSource(root)
    facts = read_file_facts(source, path)
    whole = voxel_array(bytearray(gzip.decompress((root / path).read_bytes())), facts.header)
    with source.open(path) as reader:
        slabs = [(start, slab.copy()) for start, slab in
                 voxel_slabs(MemberStream(reader, facts.header.stream_bytes), facts.header, voxels=50_000)]
    return whole, slabs


def test_image_statistics_streamed_equal_those_held_whole(example_root: Path) -> None:
    whole, slabs = whole_and_streamed(example_root, CT)
    header = read_file_facts(FolderSource(example_root), CT).header
    stats = ImageStats(whole.size, whole.dtype)
    for start, slab in slabs:
        stats.add(start, slab)
    assert stats.result(header) == image_values(whole, header)


def test_mask_facts_streamed_equal_those_held_whole_with_the_same_voxel_index(example_root: Path) -> None:
    image, _ = whole_and_streamed(example_root, CT)
    mask, slabs = whole_and_streamed(example_root, LIVER)
    shape = read_file_facts(FolderSource(example_root), LIVER).header.shape
    held, streaming = (MaskStats(shape, image, -1024.0, index_limit=1 << 30) for _ in range(2))
    measure_mask(mask, held)
    for start, slab in slabs:
        streaming.add(start, slab)
    assert streaming.result() == held.result()
    assert held.result().voxels == np.count_nonzero(mask) > 0
    assert np.array_equal(streaming.index, held.index)
    assert np.array_equal(held.index, np.flatnonzero(mask))


def test_values_other_than_0_and_1_are_counted_across_slabs() -> None:
    mask = np.zeros(300_000, dtype=np.uint8)
    mask[[5, 150_000, 299_999]] = 2
    mask[200_000:200_010] = 1
    stats = MaskStats((100, 100, 30))
    for start in range(0, mask.size, 100_000):
        stats.add(start, mask[start : start + 100_000])
    values = stats.result()
    assert (values.voxels, values.other_values) == (13, {"2": 3})


def test_a_voxel_index_larger_than_its_limit_is_dropped_and_said() -> None:
    mask = np.ones(20_000, dtype=np.uint8)
    stats = MaskStats((100, 200), index_limit=8 * 19_999)
    measure_mask(mask, stats, slab=1_000)
    assert (stats.index, stats.overflow, stats.result().voxels) == (None, True, 20_000)


def test_blob_key_is_the_same_streamed_or_whole(example_root: Path) -> None:
    raw = (example_root / LIVER).read_bytes()
    assert blob_key(FolderSource(example_root), LIVER, len(raw)) == hashlib.blake2b(raw, digest_size=16).digest()
