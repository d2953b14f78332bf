"""The MD5 of a release archive, streamed over every byte: what its published checksum is compared with."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

MD5_STEP = 4 << 20  # bytes hashed between progress reports: a few milliseconds of work


class ChecksumFailed(Exception):
    """The archive could not be read through; the message says why."""


def file_md5(path: str, size: int, advance: Callable[[int], None] | None = None) -> str:
    """The MD5 of a file's first `size` bytes (its size when the check began), read in steps; `advance` is told the
    bytes hashed so far after each step."""
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    try:
        with open(path, "rb", buffering=0) as fh:
            while done < size:
                chunk = fh.read(min(MD5_STEP, size - done))
                if not chunk:
                    raise ChecksumFailed(f"the archive ended after {done:,} of its {size:,} bytes while it was hashed")
                digest.update(chunk)
                done += len(chunk)
                if advance is not None:
                    advance(done)
    except OSError as exc:
        raise ChecksumFailed(f"cannot read the archive: {exc.strerror or exc}") from exc
    return digest.hexdigest()
