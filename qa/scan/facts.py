"""Plain facts a scan extracts from a release: per file, per case, per release. Checks judge only these.

Facts serialise to JSON-compatible data and back (`to_data`, `from_data`): what a cache stores and a cluster sends.
FACTS_VERSION changes whenever a fact's meaning or shape does, so that facts of another version are never reused."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import ConfigDict, TypeAdapter

from qa.scan.itk import Placement
from qa.source.base import Entry
from qa.source.zip import ArchiveLayout

FACTS_VERSION = 7
# gzip's trailer keeps the uncompressed size modulo 2^32.
ISIZE_MODULUS = 1 << 32
# Deflate turns at most 1032 bytes into one (a 258-byte match in two bits): a gzip file cannot hold more than this.
MAX_DEFLATE_RATIO = 1032
# NaN and infinity (a hostile header's) and raw bytes (meta.csv's) survive a trip through JSON.
FACTS_JSON = ConfigDict(ser_json_inf_nan="constants", ser_json_bytes="base64", val_json_bytes="base64")
# What makes a file unusable; each kind is a subcode of FILE_CORRUPT.
CorruptKind = Literal["unreadable", "empty", "not_gzip", "truncated", "bad_header", "absurd_size", "size_mismatch"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a file or table cannot be used: its kind, which the finding carries as its subcode, and the reason."""

    __pydantic_config__ = FACTS_JSON

    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class HeaderFacts:
    """What a NIfTI header says about a file's grid and voxels."""

    __pydantic_config__ = FACTS_JSON

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
    itk: Placement | None = None  # where ITK 5.4 puts the grid (None: not known); `affine` is where nibabel does

    def loaded(self, stored: float) -> float:
        """The value a reader gets for a stored value once scl_slope and scl_inter are applied (none: 1 and 0)."""
        slope = 1.0 if self.slope is None else self.slope
        inter = 0.0 if self.inter is None else self.inter
        return stored * slope + inter

    @property
    def stream_bytes(self) -> int:
        """The uncompressed size a well-formed single-file NIfTI of this header has."""
        return self.data_offset + self.data_bytes


@dataclass(frozen=True, slots=True)
class FileFacts:
    """One file: its size on disk, its header, its gzip stream's size (modulo 2^32: the trailer's, or the total of
    its members when the trailer disagreed and reading the stream through confirmed the header), or why it could not
    be read. `stream_error` is what reading the stream through found when it did not confirm the header. `trailer` is
    the gzip trailer as read (CRC32 and ISIZE, 8 bytes): what --verify-cache compares a cached file's with."""

    __pydantic_config__ = FACTS_JSON

    path: str
    size: int
    header: HeaderFacts | None = None
    isize: int | None = None
    corrupt: Problem | None = None
    stream_error: str | None = None
    trailer: bytes | None = None

    def problem(self, max_voxels: int, max_bytes: int) -> Problem | None:
        """Why the header cannot be used, or None: what the scan found, absurd sizes, a disagreeing gzip trailer.
        The deep pass inflates only files without a problem, so these bounds are also its allocation bounds."""
        if self.corrupt is not None:
            return self.corrupt
        header = self.header
        if header is None:
            return Problem("bad_header", "no NIfTI header was read")
        voxels = math.prod(header.shape)
        if voxels > max_voxels:
            return Problem("absurd_size",
                           f"absurd dimensions {header.shape}: {voxels} voxels, more than the {max_voxels} allowed")
        if header.data_bytes > max_bytes:
            return Problem("absurd_size", f"absurd size: {header.shape} of {header.dtype} is {header.data_bytes} "
                                          f"bytes, more than the {max_bytes} allowed")
        if header.data_offset > max_bytes:
            # ISIZE is modulo 2^32: vox_offset 2^32 + 512 over a stream of 512 + data bytes would match the trailer
            return Problem("absurd_size", f"absurd vox_offset {header.data_offset}: the data would start past the "
                                          f"{max_bytes} bytes allowed for a whole file")
        if self.isize is None:
            return None
        if header.stream_bytes > MAX_DEFLATE_RATIO * self.size:
            return Problem("size_mismatch", f"header declares {header.stream_bytes} bytes (offset {header.data_offset} "
                                            f"+ data {header.data_bytes}), more than a {self.size}-byte gzip file can "
                                            f"hold (deflate packs at most {MAX_DEFLATE_RATIO} bytes into one)")
        if self.isize != header.stream_bytes % ISIZE_MODULUS:
            found = f"; read through, {self.stream_error}" if self.stream_error else ""
            return Problem("size_mismatch",
                           f"header declares {header.stream_bytes} bytes (offset {header.data_offset} + data "
                           f"{header.data_bytes}) but the gzip trailer says {self.isize} (mod 2^32): truncated, padded "
                           f"or wrong header{found}")
        return None


@dataclass(frozen=True, slots=True)
class StreamFacts:
    """What decompressing a whole file found: how many bytes came out, and what broke, if anything."""

    __pydantic_config__ = FACTS_JSON

    inflated_bytes: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ImageValues:
    """Voxel statistics of an image in loaded units (after scl_slope/scl_inter)."""

    __pydantic_config__ = FACTS_JSON

    voxels: int
    min: float | None
    max: float | None
    mean: float | None
    percentiles: dict[str, float]
    nan_count: int
    inf_count: int
    padding_value: float | None = None


Box = tuple[tuple[int, int, int], tuple[int, int, int]]  # inclusive voxel bounds: (i0, j0, k0), (i1, j1, k1)


@dataclass(frozen=True, slots=True)
class Piece:
    """One 26-connected component of a mask: its voxels and its bounding box on the mask's grid."""

    __pydantic_config__ = FACTS_JSON

    voxels: int
    bbox: Box


@dataclass(frozen=True, slots=True)
class Pieces:
    """A mask's connected components: how many there are, and the largest of them, largest first."""

    __pydantic_config__ = FACTS_JSON

    count: int
    largest: tuple[Piece, ...]


@dataclass(frozen=True, slots=True)
class MaskValues:
    """What a mask holds: its non-zero voxels, any value other than 0/1, where it is, and the image inside it.
    `image_sum` and `image_sq_sum` are the sum and the sum of squares of the stored image values inside the mask;
    `pieces` is measured only for classes the spec expects in few pieces, and only on non-empty masks."""

    __pydantic_config__ = FACTS_JSON

    voxels: int
    other_values: dict[str, int] | None
    bbox: Box | None
    centroid_voxel: tuple[float, float, float] | None
    image_sum: float | None
    padding_voxels: int | None = None
    image_sq_sum: float | None = None
    pieces: Pieces | None = None


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two mask files of a case that share voxels; `first` precedes `second` in file-name order."""

    __pydantic_config__ = FACTS_JSON

    first: str
    second: str
    voxels: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """A measurement the deep pass left out to stay within its memory budget: what ("overlaps": shared voxels not
    counted; "padding": no image inside the masks; "pieces": a mask's connected components not counted), where (the
    case folder, or the one mask), and why."""

    __pydantic_config__ = FACTS_JSON

    what: Literal["overlaps", "padding", "pieces"]
    path: str
    reason: str


@dataclass(slots=True)
class DeepFacts:
    """What the deep pass measured in a case, keyed by relative path, and what it had to leave out."""

    __pydantic_config__ = FACTS_JSON

    streams: dict[str, StreamFacts] = field(default_factory=dict)
    image: ImageValues | None = None
    masks: dict[str, MaskValues] = field(default_factory=dict)
    overlaps: list[Overlap] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(slots=True)
class CaseFacts:
    """One case folder: what it contains and the facts of its NIfTI files, keyed by relative path."""

    __pydantic_config__ = FACTS_JSON

    case: str
    entries: list[Entry] = field(default_factory=list)
    files: dict[str, FileFacts] = field(default_factory=dict)
    deep: DeepFacts | None = None
    internal_error: Problem | None = None  # kind "crash" or "error": the case could not be scanned
    # Files whose reading or measuring raised an unforeseen error (kind "error"); the case's other files were checked.
    failures: dict[str, Problem] = field(default_factory=dict)


@dataclass(slots=True)
class MetaFacts:
    """The metadata table as found: raw bytes are kept so that any spec can parse them again."""

    __pydantic_config__ = FACTS_JSON

    path: str
    present: bool
    raw: bytes = b""
    error: Problem | None = None


Checksum = Literal["computed", "skipped", "unreadable"]


@dataclass(slots=True)
class ArchiveFacts:
    """A release read from a zip archive: the archive as a whole (how its members were found, what is wrong with it)
    and the MD5 of all its bytes, or why there is none."""

    __pydantic_config__ = FACTS_JSON

    layout: ArchiveLayout
    checksum: Checksum
    md5: str | None = None
    checksum_error: str | None = None


@dataclass(slots=True)
class ReleaseFacts:
    """Everything a scan learned about a release; the only input of the checks."""

    __pydantic_config__ = FACTS_JSON

    root: str
    meta: MetaFacts
    root_entries: list[Entry]
    cases: list[CaseFacts]
    archive: ArchiveFacts | None = None  # the release was read from this archive


@functools.cache
def _adapter(kind: type) -> TypeAdapter:
    return TypeAdapter(kind)


def to_data(facts: object) -> Any:
    """Facts as JSON-compatible data (dicts, lists, strings, numbers; NaN and infinity as floats)."""
    return _adapter(type(facts)).dump_python(facts, mode="json")


def from_data(kind: type[T], data: Any) -> T:
    """Facts of `kind` back from what to_data made."""
    return _adapter(kind).validate_python(data)
