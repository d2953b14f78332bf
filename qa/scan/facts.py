"""Plain facts a scan extracts from a release: per file, per case, per release. Checks judge only these.

Facts serialise to JSON-compatible data and back (`to_data`, `from_data`): what a cache stores and a cluster sends.
FACTS_VERSION changes whenever a fact's meaning or shape does, so that facts of another version are never reused."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import ConfigDict, TypeAdapter

from qa.source.base import Entry

FACTS_VERSION = 2
# gzip's trailer keeps the uncompressed size modulo 2^32.
ISIZE_MODULUS = 1 << 32
# NaN and infinity (a hostile header's) and raw bytes (meta.csv's) survive a trip through JSON.
_JSON = ConfigDict(ser_json_inf_nan="constants", ser_json_bytes="base64", val_json_bytes="base64")
# What makes a file unusable; each kind is a subcode of FILE_CORRUPT.
CorruptKind = Literal["unreadable", "empty", "not_gzip", "truncated", "bad_header", "absurd_size", "size_mismatch"]
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """Why a file or table cannot be used: its kind, which the finding carries as its subcode, and the reason."""

    __pydantic_config__ = _JSON

    kind: str
    reason: str


@dataclass(frozen=True)
class HeaderFacts:
    """What a NIfTI header says about a file's grid and voxels."""

    __pydantic_config__ = _JSON

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

    __pydantic_config__ = _JSON

    path: str
    size: int
    header: HeaderFacts | None = None
    isize: int | None = None
    corrupt: Problem | None = None

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
        if self.isize is not None and self.isize != header.stream_bytes % ISIZE_MODULUS:
            return Problem("size_mismatch",
                           f"header declares {header.stream_bytes} bytes (offset {header.data_offset} + data "
                           f"{header.data_bytes}) but the gzip trailer says {self.isize} (mod 2^32): truncated, padded "
                           "or wrong header")
        return None


@dataclass(frozen=True)
class StreamFacts:
    """What decompressing a whole file found: how many bytes came out, and what broke, if anything."""

    __pydantic_config__ = _JSON

    inflated_bytes: int
    error: str | None = None


@dataclass(frozen=True)
class ImageValues:
    """Voxel statistics of an image in loaded units (after scl_slope/scl_inter)."""

    __pydantic_config__ = _JSON

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

    __pydantic_config__ = _JSON

    voxels: int
    other_values: dict[str, int] | None
    bbox: tuple[tuple[int, int, int], tuple[int, int, int]] | None
    centroid_voxel: tuple[float, float, float] | None
    image_sum: float | None
    padding_voxels: int | None = None


@dataclass(frozen=True)
class Overlap:
    """Two mask files of a case that share voxels; `first` precedes `second` in file-name order."""

    __pydantic_config__ = _JSON

    first: str
    second: str
    voxels: int


@dataclass(frozen=True)
class Skipped:
    """A measurement the deep pass left out to stay within its memory budget: what ("overlaps": shared voxels not
    counted; "padding": no image inside the masks), where (the case folder, or the one mask), and why."""

    __pydantic_config__ = _JSON

    what: Literal["overlaps", "padding"]
    path: str
    reason: str


@dataclass
class DeepFacts:
    """What the deep pass measured in a case, keyed by relative path, and what it had to leave out."""

    __pydantic_config__ = _JSON

    streams: dict[str, StreamFacts] = field(default_factory=dict)
    image: ImageValues | None = None
    masks: dict[str, MaskValues] = field(default_factory=dict)
    overlaps: list[Overlap] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class CaseFacts:
    """One case folder: what it contains and the facts of its NIfTI files, keyed by relative path."""

    __pydantic_config__ = _JSON

    case: str
    entries: list[Entry] = field(default_factory=list)
    files: dict[str, FileFacts] = field(default_factory=dict)
    deep: DeepFacts | None = None
    internal_error: Problem | None = None  # kind "crash" or "error": the case could not be scanned


@dataclass
class MetaFacts:
    """The metadata table as found: raw bytes are kept so that any spec can parse them again."""

    __pydantic_config__ = _JSON

    path: str
    present: bool
    raw: bytes = b""
    error: Problem | None = None


@dataclass
class ReleaseFacts:
    """Everything a scan learned about a release; the only input of the checks."""

    __pydantic_config__ = _JSON

    root: str
    meta: MetaFacts
    root_entries: list[Entry]
    cases: list[CaseFacts]


@functools.cache
def _adapter(kind: type) -> TypeAdapter:
    return TypeAdapter(kind)


def to_data(facts: object) -> Any:
    """Facts as JSON-compatible data (dicts, lists, strings, numbers; NaN and infinity as floats)."""
    return _adapter(type(facts)).dump_python(facts, mode="json")


def from_data(kind: type[T], data: Any) -> T:
    """Facts of `kind` back from what to_data made."""
    return _adapter(kind).validate_python(data)
