"""Inflating a gzip file in bounded steps, verified by each member's CRC32 and length, for files too large to inflate
whole: memory stays at a few steps whatever the file declares."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator

import numpy as np

from qa.scan.facts import ISIZE_MODULUS, HeaderFacts, StreamFacts
from qa.scan.voxels import SLAB_VOXELS
from qa.source.base import MemberReader, ReleaseSource, SourceError

GZIP_MAGIC = b"\x1f\x8b"
READ_STEP = 1 << 20  # compressed bytes read at a time
INFLATE_STEP = 1 << 22  # uncompressed bytes produced at a time
MAX_GZIP_HEADER = 1 << 16  # a member header longer than this (its file name or comment) is not a NIfTI's
BLOB_KEY_BYTES = 16


class _Broken(Exception):
    """The stream cannot be read on; the message is the reason a person reads."""


class GzipStream:
    """The uncompressed bytes of a gzip file, `INFLATE_STEP` at a time, then `facts`: how many came out and what
    broke. Every member is verified by its CRC32 and length; members may follow each other (as gzip writes them when
    asked to append), anything else after the last one is an error. Reading stops past `expected` bytes: a stream that
    inflates to more than its header declares is broken, however much more."""

    def __init__(self, reader: MemberReader, expected: int) -> None:
        self.reader, self.expected = reader, expected
        self.facts: StreamFacts | None = None
        self._offset = 0
        self._total = 0

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._members()
        except _Broken as exc:
            self.facts = StreamFacts(self._total, str(exc))
            return
        except SourceError as exc:
            self.facts = StreamFacts(self._total, f"read error after {self._total} uncompressed bytes: {exc}")
            return
        if self._total < self.expected:
            self.facts = StreamFacts(self._total, f"data shorter than the header says: {self._total} of "
                                                  f"{self.expected} bytes")
        else:
            self.facts = StreamFacts(self._total)

    def _read(self) -> bytes:
        data = self.reader.read_at(self._offset, READ_STEP)
        self._offset += len(data)
        return data

    def _members(self) -> Iterator[bytes]:
        pending = self._read()
        while True:
            pending = self._skip_header(pending)
            pending = yield from self._inflate_member(pending)
            if not pending:
                pending = self._read()
            if not pending:
                return
            if pending[:2] != GZIP_MAGIC[: len(pending)]:
                raise _Broken(f"{self.reader.size - self._offset + len(pending)} bytes after the end of the gzip "
                              f"stream ({self._total} uncompressed bytes) that are not another gzip member")

    def _skip_header(self, pending: bytes) -> bytes:
        """The bytes after a member's header (RFC 1952), reading more as its optional fields need."""
        while len(pending) < MAX_GZIP_HEADER:
            more = self._read()
            if not more:
                break
            pending += more
        if len(pending) < 10 or pending[:2] != GZIP_MAGIC or pending[2] != 8:
            raise _Broken(f"gzip header broken after {self._total} uncompressed bytes: not a deflate gzip member")
        flags, start = pending[3], 10
        if flags & 4:
            start += 2 + int.from_bytes(pending[start : start + 2], "little")
        for flag in (8, 16):
            if flags & flag:
                end = pending.find(b"\0", start)
                if end < 0:
                    raise _Broken(f"gzip header broken: a name or comment longer than {MAX_GZIP_HEADER} bytes")
                start = end + 1
        if flags & 2:
            start += 2
        if start > len(pending):
            raise _Broken("gzip header broken: it runs past the end of the file")
        return pending[start:]

    def _inflate_member(self, pending: bytes) -> Iterator[bytes]:
        """Yields one member's data; returns the bytes after its trailer that were already read."""
        inflater = zlib.decompressobj(wbits=-15)
        crc = size = 0
        while not inflater.eof:
            if not pending:
                pending = self._read()
                if not pending:
                    raise _Broken(f"truncated: the gzip stream stops after {self._total} uncompressed bytes, "
                                  "without its end")
            try:
                out = inflater.decompress(pending, INFLATE_STEP)
            except zlib.error as exc:
                reason = str(exc).split(": ", 1)[-1]
                raise _Broken(f"deflate data broken after {self._total} uncompressed bytes: {reason}") from exc
            pending = inflater.unconsumed_tail
            crc, size, self._total = zlib.crc32(out, crc), size + len(out), self._total + len(out)
            if self._total > self.expected:
                raise _Broken(f"data longer than the header says: more than {self.expected} bytes")
            if out:
                yield out
        trailer = inflater.unused_data  # all the input past the deflate data (unconsumed_tail may repeat it)
        while len(trailer) < 8:
            more = self._read()
            if not more:
                raise _Broken(f"truncated: the gzip trailer is missing after {self._total} uncompressed bytes")
            trailer += more
        stored_crc, stored_size = struct.unpack("<II", trailer[:8])
        if stored_crc != crc:
            raise _Broken(f"CRC32 mismatch over all {size} uncompressed bytes: the trailer says {stored_crc:08x}, "
                          f"the data gives {crc:08x}")
        if stored_size != size % ISIZE_MODULUS:
            raise _Broken(f"length mismatch: the trailer says {stored_size} bytes, the data has {size}")
        return trailer[8:]


def voxel_slabs(stream: GzipStream, header: HeaderFacts, voxels: int = SLAB_VOXELS) -> Iterator[tuple[int, np.ndarray]]:
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
