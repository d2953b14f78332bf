"""Plain facts a scan extracts from a release: per file, per case, per release. Checks judge only these."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

EntryKind = Literal["file", "dir", "symlink", "other"]
# gzip's trailer keeps the uncompressed size modulo 2^32.
ISIZE_MODULUS = 1 << 32


@dataclass(frozen=True)
class HeaderFacts:
    """What a NIfTI header says about a file's grid and voxels."""

    version: int
    shape: tuple[int, ...]
    dtype: str
    byteorder: str
    zooms: tuple[float, ...]
    affine: list[list[float]]
    sform_code: int
    qform_code: int
    sform: list[list[float]] | None
    qform: list[list[float]] | None
    slope: float | None
    inter: float | None
    data_offset: int
    data_bytes: int
    qform_error: str | None = None

    def loaded(self, stored: float) -> float:
        """The value a reader gets for a stored value once scl_slope and scl_inter are applied (none: 1 and 0)."""
        slope = 1.0 if self.slope is None else self.slope
        inter = 0.0 if self.inter is None else self.inter
        return stored * slope + inter

    @property
    def stream_bytes(self) -> int:
        """The uncompressed size a well-formed single-file NIfTI of this header has."""
        return self.data_offset + self.data_bytes


@dataclass(frozen=True)
class FileFacts:
    """One file: its size on disk, its header, its gzip trailer size, or why it could not be read."""

    path: str
    size: int
    header: HeaderFacts | None = None
    isize: int | None = None
    corrupt: str | None = None

    def problem(self, max_voxels: int, max_bytes: int) -> str | None:
        """Why the header cannot be used, or None: what the scan found, absurd sizes, a disagreeing gzip trailer.
        The deep pass inflates only files without a problem, so these bounds are also its allocation bounds."""
        if self.corrupt is not None:
            return self.corrupt
        header = self.header
        if header is None:
            return "no NIfTI header was read"
        voxels = math.prod(header.shape)
        if voxels > max_voxels:
            return f"absurd dimensions {header.shape}: {voxels} voxels, more than the {max_voxels} allowed"
        if header.data_bytes > max_bytes:
            return f"absurd size: {header.shape} of {header.dtype} is {header.data_bytes} bytes, more than the {max_bytes} allowed"
        if self.isize is not None and self.isize != header.stream_bytes % ISIZE_MODULUS:
            return (f"header declares {header.stream_bytes} bytes (offset {header.data_offset} + data {header.data_bytes}) "
                    f"but the gzip trailer says {self.isize} (mod 2^32): truncated, padded or wrong header")
        return None


@dataclass(frozen=True)
class Entry:
    """A name found in a folder of the release, relative to the release root."""

    path: str
    kind: EntryKind


@dataclass(frozen=True)
class StreamFacts:
    """What decompressing a whole file found: how many bytes came out, and what broke, if anything."""

    inflated_bytes: int
    error: str | None = None


@dataclass(frozen=True)
class ImageValues:
    """Voxel statistics of an image in loaded units (after scl_slope/scl_inter)."""

    voxels: int
    min: float | None
    max: float | None
    mean: float | None
    percentiles: dict[str, float]
    nan_count: int
    inf_count: int
    padding_value: float | None = None


@dataclass(frozen=True)
class MaskValues:
    """What a mask holds: its non-zero voxels, any value other than 0/1, where it is, and the image inside it."""

    voxels: int
    other_values: dict[str, int] | None
    bbox: tuple[tuple[int, int, int], tuple[int, int, int]] | None
    centroid_voxel: tuple[float, float, float] | None
    image_sum: float | None
    padding_voxels: int | None = None


@dataclass(frozen=True)
class Overlap:
    """Two mask files of a case that share voxels; `first` precedes `second` in file-name order."""

    first: str
    second: str
    voxels: int


@dataclass
class DeepFacts:
    """What the deep pass measured in a case, keyed by relative path."""

    streams: dict[str, StreamFacts] = field(default_factory=dict)
    image: ImageValues | None = None
    masks: dict[str, MaskValues] = field(default_factory=dict)
    overlaps: list[Overlap] = field(default_factory=list)


@dataclass
class CaseFacts:
    """One case folder: what it contains and the facts of its NIfTI files, keyed by relative path."""

    case: str
    entries: list[Entry] = field(default_factory=list)
    files: dict[str, FileFacts] = field(default_factory=dict)
    deep: DeepFacts | None = None
    internal_error: str | None = None


@dataclass
class MetaFacts:
    """The metadata table as found: raw bytes are kept so that any spec can parse them again."""

    path: str
    present: bool
    raw: bytes = b""
    error: str | None = None


@dataclass
class ReleaseFacts:
    """Everything a scan learned about a release; the only input of the checks."""

    root: str
    meta: MetaFacts
    root_entries: list[Entry]
    cases: list[CaseFacts]
