"""A gzip NIfTI's voxels in slabs, from its members inflated in bounded steps (qa.scan.members), for files too large to
inflate whole: memory stays at a few steps whatever the file declares; and a file's identity read in steps."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import numpy as np

from qa.scan.facts import HeaderFacts
from qa.scan.members import OUTPUT_STEP, READ_STEP
from qa.scan.voxels import SLAB_VOXELS
from qa.source.base import ReleaseSource

# What streaming a file holds besides its slab: a compressed step, zlib's copy of its unconsumed tail, an uncompressed
# step.
STEP_BYTES = 2 * READ_STEP + OUTPUT_STEP
BLOB_KEY_BYTES = 16


def voxel_slabs(stream: Iterable[bytes], header: HeaderFacts,
                voxels: int = SLAB_VOXELS) -> Iterator[tuple[int, np.ndarray]]:
    """(index of the first voxel, voxels) for consecutive slabs of at most `voxels` voxels in file order, from the
    stream's data after the header's offset. One buffer is reused: a consumer copies what it keeps."""
    dtype = np.dtype(header.dtype).newbyteorder(header.byteorder)
    total = header.data_bytes // dtype.itemsize
    slab = bytearray(min(voxels, max(total, 1)) * dtype.itemsize)
    skip, filled, start = header.data_offset, 0, 0
    for chunk in stream:
        view = memoryview(chunk)
        if skip:
            taken = min(skip, len(view))
            view, skip = view[taken:], skip - taken
        while view and start < total:
            room = min(len(slab), (total - start) * dtype.itemsize) - filled
            taken = min(room, len(view))
            slab[filled : filled + taken] = view[:taken]
            view, filled = view[taken:], filled + taken
            if filled == min(len(slab), (total - start) * dtype.itemsize):
                count = filled // dtype.itemsize
                yield start, np.frombuffer(slab, dtype=dtype, count=count)
                start, filled = start + count, 0


def blob_key(source: ReleaseSource, path: str, size: int) -> bytes:
    """The BLAKE2b digest of a file's compressed bytes, read `READ_STEP` at a time (as blake2b of the whole file)."""
    digest = hashlib.blake2b(digest_size=BLOB_KEY_BYTES)
    with source.open(path) as reader:
        for offset in range(0, size, READ_STEP):
            digest.update(reader.read_at(offset, READ_STEP))
    return digest.digest()
