"""gzip members: a .nii.gz may hold several gzip members one after another, which gzip, zlib and nibabel read as one
stream. Every member is inflated and verified (CRC32 and length); bytes after the last member that are neither a
member nor zero padding are an error, as `gzip -t` says.

Two paths read the members, with one set of rules and one wording, so that a file gets the same finding whichever
path read it. libdeflate inflates a whole stream held in memory, far faster than zlib; its gzip_decompress_ex says how
many input bytes a member took, which is what finds the next member. The `deflate` package wraps only
gzip_decompress, which stops after the first member and ignores the rest, so the _ex function is called through
ctypes from the libdeflate that the package's extension module links in and exports. The member walk (zlib, bounded
steps, reading through a byte-range callback) reads a stream too large to hold: it yields the uncompressed bytes
step by step to the deep pass's streaming measurement, discards them in the quick pass, and says precisely why
libdeflate refused a stream."""

from __future__ import annotations

import ctypes
import struct
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

import deflate
import numpy as np

from qa.scan.facts import ISIZE_MODULUS, StreamFacts
from qa.source.base import MemberReader, SourceError

GZIP_MAGIC = b"\x1f\x8b"
TRAILER_BYTES = 8
# A member's header is 10 bytes plus optional fields (an extra field of up to 64 KiB, a name, a comment): read this
# much first, and up to MAX_MEMBER_HEADER, past which it is not a header that a NIfTI writer makes.
HEADER_PEEK = 1 << 16
MAX_MEMBER_HEADER = 1 << 20
# Input per read and output per zlib step when walking: bounded, so a decompression bomb costs time, not memory.
READ_STEP = 1 << 20
OUTPUT_STEP = 1 << 22

ReadAt = Callable[[int, int], bytes]


class _Libdeflate:
    """libdeflate's gzip_decompress_ex, as linked into the `deflate` package's extension module."""

    SUCCESS, INSUFFICIENT_SPACE = 0, 3

    def __init__(self) -> None:
        lib = ctypes.CDLL(deflate._deflate.__file__)
        lib.libdeflate_alloc_decompressor.restype = ctypes.c_void_p
        lib.libdeflate_free_decompressor.argtypes = [ctypes.c_void_p]
        size_p = ctypes.POINTER(ctypes.c_size_t)
        self.gzip_ex = lib.libdeflate_gzip_decompress_ex
        self.gzip_ex.restype = ctypes.c_int
        self.gzip_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                                 size_p, size_p]
        self.lib = lib

    def member(self, data: np.ndarray, out: np.ndarray) -> tuple[int, int, int]:
        """Inflate the gzip member at the start of `data` into `out`: (result, input bytes used, bytes written)."""
        used, written = ctypes.c_size_t(), ctypes.c_size_t()
        decompressor = self.lib.libdeflate_alloc_decompressor()
        if not decompressor:
            raise MemoryError("libdeflate could not allocate a decompressor")
        try:
            result = self.gzip_ex(decompressor, data.ctypes.data, data.size, out.ctypes.data, out.size,
                                  ctypes.byref(used), ctypes.byref(written))
        finally:
            self.lib.libdeflate_free_decompressor(decompressor)
        return result, used.value, written.value


_LIBDEFLATE = _Libdeflate()


def inflate(raw: bytes, expected: int) -> tuple[np.ndarray | None, StreamFacts]:
    """The whole uncompressed stream of every member, each verified by its CRC32 and length, or None and what broke.
    `expected` is the size the header declares: the output is allocated once at that size, so callers pass only
    files whose declared size they checked."""
    data = np.frombuffer(raw, dtype=np.uint8)
    out = np.empty(expected, dtype=np.uint8)
    start = written = 0
    while True:
        result, used, produced = _LIBDEFLATE.member(data[start:], out[written:])
        if result != _Libdeflate.SUCCESS:
            return None, diagnose(raw, expected)
        start, written = start + used, written + produced
        rest = data[start:]
        if not rest.any():  # nothing left, or zero padding, which gzip and zlib skip
            break
        if rest[:2].tobytes() != GZIP_MAGIC:
            return None, StreamFacts(written, _garbage(len(raw) - start, start))
    if written < expected:
        return None, StreamFacts(written, _shorter(written, expected))
    return out, StreamFacts(written)


def diagnose(raw: bytes, expected: int) -> StreamFacts:
    """Why a stream that libdeflate refused is broken, found by walking its members with zlib."""
    facts = stream_facts(walk(lambda offset, length: raw[offset : offset + length], len(raw), expected), expected)
    if facts.error is None:
        return StreamFacts(facts.inflated_bytes, "libdeflate refused the stream, though zlib reads it whole")
    return facts


@dataclass(frozen=True)
class Walk:
    """What reading a gzip stream member by member found: the uncompressed bytes, the members, what broke."""

    inflated: int
    members: int
    error: str | None = None


def stream_facts(found: Walk, expected: int) -> StreamFacts:
    """What a walk found, as a stream fact: its error, or data shorter than the header's `expected` bytes."""
    if found.error is None and found.inflated < expected:
        return StreamFacts(found.inflated, _shorter(found.inflated, expected))
    return StreamFacts(found.inflated, found.error)


def walk(read_at: ReadAt, size: int, limit: int) -> Walk:
    """Read every member of a gzip stream of `size` bytes in bounded steps, output discarded, verifying each trailer;
    stop with an error once more than `limit` bytes came out."""
    steps = inflated_steps(read_at, size, limit)
    while True:
        try:
            next(steps)
        except StopIteration as end:
            return end.value


def inflated_steps(read_at: ReadAt, size: int, limit: int) -> Generator[bytes, None, Walk]:
    """The member walk: yields the uncompressed bytes of every member in steps of at most OUTPUT_STEP, verifying each
    member's trailer, and returns what it found. It stops with an error once more than `limit` bytes came out, at the
    first broken member, or at bytes after the last member that are neither a member nor zero padding."""
    start = inflated = members = 0
    while start < size:
        head = read_at(start, HEADER_PEEK)
        if members and head[:2] != GZIP_MAGIC:
            if _zero_from(read_at, start, size):
                break
            return Walk(inflated, members, _garbage(size - start, start))
        members += 1
        try:
            body = start + _header_bytes(read_at, start, head)
        except ValueError as exc:
            return Walk(inflated, members, f"{_member(members)}gzip header broken: {exc}")
        member = _Member(read_at, size, body, limit - inflated)
        error = yield from member.read()
        inflated += member.inflated
        if error is not None:
            return Walk(inflated, members, f"{_member(members)}{error}")
        start = member.end
    return Walk(inflated, members)


class MemberStream:
    """The uncompressed bytes of a gzip file read through its source in bounded steps (the member walk), then `facts`:
    how many came out and what broke, worded as `inflate` words it. After the walk the reader checks the file against
    the checksum its source records (a zip archive's CRC32), which, failing, is the reason, as when the file is read
    whole; a read error is the reason too. Nothing past `expected` bytes is produced."""

    def __init__(self, reader: MemberReader, expected: int) -> None:
        self.reader, self.expected = reader, expected
        self.facts: StreamFacts | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            found = yield from inflated_steps(self.reader.read_at, self.reader.size, self.expected)
            self.reader.verify()
        except SourceError as exc:
            self.facts = StreamFacts(0, str(exc))
            return
        self.facts = stream_facts(found, self.expected)


class _Member:
    """One member's deflate data and trailer, read from `body` on."""

    def __init__(self, read_at: ReadAt, size: int, body: int, room: int) -> None:
        self.read_at, self.size, self.position, self.room = read_at, size, body, room
        self.inflated, self.crc, self.end = 0, 0, body

    def read(self) -> Generator[bytes, None, str | None]:
        """Yields the member's uncompressed bytes step by step; returns what is wrong with it, or None."""
        inflater = zlib.decompressobj(wbits=-15)
        pending = b""
        try:
            while not inflater.eof:
                if not pending:
                    pending = self.read_at(self.position, READ_STEP)
                    self.position += len(pending)
                out = inflater.decompress(pending, OUTPUT_STEP)
                if not pending and not out:
                    return f"truncated: the gzip stream stops after {self.inflated} uncompressed bytes, without its end"
                pending = inflater.unconsumed_tail
                self.crc, self.inflated = deflate.crc32(out, self.crc), self.inflated + len(out)
                if self.inflated > self.room:
                    return "the stream holds more data than the header says"
                if out:
                    yield out
        except zlib.error as exc:
            return f"deflate data broken after {self.inflated} uncompressed bytes: {str(exc).split(': ', 1)[-1]}"
        trailer_at = self.position - len(inflater.unused_data)
        trailer = self.read_at(trailer_at, TRAILER_BYTES)
        if len(trailer) < TRAILER_BYTES:
            return f"truncated: the gzip trailer is missing after {self.inflated} uncompressed bytes"
        self.end = trailer_at + TRAILER_BYTES
        stored_crc, stored_size = struct.unpack("<II", trailer)
        if stored_crc != self.crc:
            return (f"CRC32 mismatch over all {self.inflated} uncompressed bytes: the trailer says {stored_crc:08x}, "
                    f"the data gives {self.crc:08x}")
        if stored_size != self.inflated % ISIZE_MODULUS:
            return f"length mismatch: the trailer says {stored_size} bytes, the data has {self.inflated}"
        return None


def _header_bytes(read_at: ReadAt, start: int, head: bytes) -> int:
    """The member header's length, reading up to MAX_MEMBER_HEADER bytes when its optional fields need them."""
    try:
        return member_header_bytes(head)
    except ValueError:
        if len(head) < HEADER_PEEK:
            raise
    return member_header_bytes(read_at(start, MAX_MEMBER_HEADER))


def member_header_bytes(head: bytes) -> int:
    """The length of the gzip member header (RFC 1952) at the start of `head`, with its optional fields."""
    if len(head) < 10 or head[:2] != GZIP_MAGIC or head[2] != 8:
        raise ValueError("not a deflate gzip header")
    flags, end = head[3], 10
    if flags & 4:
        end += 2 + int.from_bytes(head[end : end + 2], "little")
    for flag in (8, 16):
        if flags & flag:
            try:
                end = head.index(b"\0", end) + 1
            except ValueError:
                raise ValueError("a name or comment field without its end") from None
    if flags & 2:
        end += 2
    if end > len(head):
        raise ValueError("the header runs past the end of the file")
    return end


def _zero_from(read_at: ReadAt, start: int, size: int) -> bool:
    """Whether every byte from `start` on is zero: padding that some writers leave and gzip skips."""
    while start < size:
        chunk = read_at(start, READ_STEP)
        if not chunk:  # the file ended sooner than its size said
            return True
        if chunk.count(0) != len(chunk):
            return False
        start += len(chunk)
    return True


def _member(number: int) -> str:
    return "" if number == 1 else f"gzip member {number}: "


def _shorter(inflated: int, expected: int) -> str:
    return f"data shorter than the header says: {inflated} of {expected} bytes"


def _garbage(count: int, start: int) -> str:
    return f"{count} bytes after the last gzip member (from byte {start}) are not a gzip member"
