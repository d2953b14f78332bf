"""gzip members: every member of a stream is inflated and verified, as gzip and nibabel read them; a broken later
member or bytes that are no member are errors, zero padding and a valid concatenation are not. Python's gzip module
is the independent reader the outcomes are compared with."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import numpy as np
import pytest

from qa.scan.members import Walk, inflate, walk

DATA = np.random.default_rng(0).integers(0, 40, 300_000, dtype=np.uint8).tobytes()


def members(*parts: bytes) -> bytes:
    return b"".join(gzip.compress(part, compresslevel=1, mtime=0) for part in parts)


def corrupt(member: bytes) -> bytes:
    broken = bytearray(member)
    broken[len(broken) // 2] ^= 0xFF
    return bytes(broken)


def walked(raw: bytes, limit: int = len(DATA)):
    return walk(lambda offset, length: raw[offset : offset + length], len(raw), limit)


def test_one_member_is_inflated_whole() -> None:
    out, stream = inflate(members(DATA), len(DATA))
    assert (out.tobytes(), stream.inflated_bytes, stream.error) == (DATA, len(DATA), None)


def test_a_valid_concatenation_of_members_is_one_stream() -> None:
    raw = members(DATA[:1000], DATA[1000:250_001], DATA[250_001:])
    assert gzip.decompress(raw) == DATA
    out, stream = inflate(raw, len(DATA))
    assert (out.tobytes(), stream.error) == (DATA, None)
    assert walked(raw) == Walk(len(DATA), 3)


def test_zero_padding_after_the_last_member_is_skipped_as_gzip_does() -> None:
    raw = members(DATA) + bytes(4096)
    assert gzip.decompress(raw) == DATA
    assert inflate(raw, len(DATA))[1].error is None
    assert walked(raw).error is None


def test_a_corrupt_copy_after_a_valid_member_is_found() -> None:
    first = members(DATA)
    raw = first + corrupt(first)
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress(raw)
    out, stream = inflate(raw, 2 * len(DATA))
    assert out is None
    assert stream.error.startswith("gzip member 2: ")


def test_bytes_after_the_last_member_that_are_no_member_are_found() -> None:
    raw = members(DATA) + b"not a gzip member"
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(raw)
    out, stream = inflate(raw, len(DATA))
    assert out is None
    assert stream.error == f"17 bytes after the last gzip member (from byte {len(raw) - 17}) are not a gzip member"


def test_members_holding_more_than_the_header_says_are_found() -> None:
    raw = members(DATA, DATA[:10])
    out, stream = inflate(raw, len(DATA))
    assert out is None
    assert stream.error == "gzip member 2: the stream holds more data than the header says"


@pytest.mark.parametrize(("raw", "error"), [
    (members(DATA)[:-5], "truncated: the gzip trailer is missing after 300000 uncompressed bytes"),
    (members(DATA)[:5000], "truncated: the gzip stream stops after"),
    (members(DATA[:100], DATA[100:])[:-100], "gzip member 2: truncated: the gzip stream stops after"),
])
def test_a_truncated_member_says_where_it_stops(raw: bytes, error: str) -> None:
    out, stream = inflate(raw, len(DATA))
    assert out is None and stream.error.startswith(error)


def test_a_crc_mismatch_names_both_checksums() -> None:
    raw = bytearray(members(DATA))
    raw[-8] ^= 0xFF
    assert inflate(bytes(raw), len(DATA))[1].error.startswith("CRC32 mismatch over all 300000 uncompressed bytes")


def test_walking_a_large_stream_keeps_memory_bounded() -> None:
    raw = members(bytes(200 << 20))  # 200 MB of zeros in about 200 KB
    tracemalloc.start()
    try:
        found = walked(raw, limit=200 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (found.inflated, found.error) == (200 << 20, None)
    assert peak < 24 << 20
