"""ReleaseSource: the one interface through which tsqa reads a release, whatever holds it (a folder, an archive)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

EntryKind = Literal["file", "dir", "symlink", "other"]


class SourceError(Exception):
    """A member that cannot be read under the source's rules; the message is the reason a person reads."""


class MemberMissing(SourceError):
    """No member of that name."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A name found in a folder of the release, its path relative to the release root, '/'-separated."""

    path: str
    kind: EntryKind


@dataclass(frozen=True, slots=True)
class MemberStat:
    """What identifies a regular file's content without reading it: what a fact cache keys on."""

    size: int
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0
    device: int = 0


class MemberReader(ABC):
    """An open member: reads byte ranges of it until closed."""

    size: int

    @abstractmethod
    def read_at(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset`; fewer only at the end of the member."""

    @abstractmethod
    def close(self) -> None: ...

    def verify(self) -> None:
        """Check the member against the checksum its source records for it (a zip archive's CRC32), reading what was
        not read from its start yet; SourceError when it fails. A folder records none: nothing to check."""
        return None

    def __enter__(self) -> MemberReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class ReleaseSource(ABC):
    """A release's members by relative path. Implementations carry the policy for what is never read (links leaving
    the release, special files) so that every reader of a release, scan and spec detection alike, obeys it.

    A source is pickled to worker processes: it holds a location, not open handles."""

    location: str

    @abstractmethod
    def entries(self, folder: str) -> list[Entry]:
        """The names in a folder ('' for the root) with their kinds, links not followed, sorted by path; [] when the
        folder cannot be listed."""

    @abstractmethod
    def stat(self, path: str) -> MemberStat:
        """A regular file's identity, following links that stay inside the release; SourceError otherwise."""

    @abstractmethod
    def open(self, path: str) -> MemberReader:
        """A regular file opened for reading under the same rules as stat; SourceError otherwise."""

    def resident_bytes(self) -> int:
        """The most memory the source itself keeps in a process that reads it (an index, a cache), besides the files
        read: what a worker counts on top of its own. A folder keeps nothing."""
        return 0

    def read(self, path: str, limit: int) -> bytes:
        """A whole regular file of at most `limit` bytes; SourceError when it is larger or cannot be read."""
        with self.open(path) as reader:
            if reader.size > limit:
                raise SourceError(f"{reader.size} bytes, more than the {limit} allowed")
            data = reader.read_at(0, reader.size)
        if len(data) != reader.size:
            raise SourceError(f"read {len(data)} of {reader.size} bytes: the file changed while it was read")
        return data
