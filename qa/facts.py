"""Plain facts a scan extracts from a release: per file, per case, per release. Checks judge only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EntryKind = Literal["file", "dir", "symlink", "other"]


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


@dataclass(frozen=True)
class Entry:
    """A name found in a folder of the release, relative to the release root."""

    path: str
    kind: EntryKind


@dataclass
class CaseFacts:
    """One case folder: what it contains and the facts of its NIfTI files, keyed by relative path."""

    case: str
    entries: list[Entry] = field(default_factory=list)
    files: dict[str, FileFacts] = field(default_factory=dict)


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
