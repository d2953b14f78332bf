"""A release in a folder: links that stay inside the release are followed, links leaving it and special files never."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from qa.source.base import Entry, EntryKind, MemberMissing, MemberReader, MemberStat, ReleaseSource, SourceError

# O_NONBLOCK: opening a FIFO that replaced a file after it was checked must not wait for a writer.
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _leaves_root(path: str) -> bool:
    """Whether a release-relative path is absolute or has a '..' part: joined to the root, it would name a file
    outside the release without any link to resolve."""
    return path.startswith("/") or (".." in path and ".." in path.split("/"))


def _kind(entry: os.DirEntry) -> EntryKind:
    if entry.is_symlink():
        return "symlink"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    return "file" if entry.is_file(follow_symlinks=False) else "other"


class _FileReader(MemberReader):
    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def read_at(self, offset: int, length: int) -> bytes:
        try:
            return os.pread(self.fd, length, offset)
        except OSError as exc:
            raise SourceError(f"read error: {exc.strerror or exc}") from exc

    def close(self) -> None:
        os.close(self.fd)


class FolderSource(ReleaseSource):
    """The release rooted at a folder of the local file system."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._real_root = self.root.resolve()
        self.location = str(self._real_root)
        self._root_text = os.fspath(self.root)  # paths joined as text: pathlib's parsing is most of a stat's cost

    def entries(self, folder: str) -> list[Entry]:
        prefix = f"{folder}/" if folder else ""
        if _leaves_root(folder):
            return []
        try:
            if not (self.root / folder).resolve().is_relative_to(self._real_root):
                return []  # a folder reached through a link that leaves the release
            with os.scandir(self.root / folder) as it:
                found = [Entry(f"{prefix}{e.name}", _kind(e)) for e in it]
        except (OSError, RuntimeError):  # RuntimeError: a link loop
            return []
        return sorted(found, key=lambda e: e.path)

    def _target(self, path: str) -> tuple[str | Path, os.stat_result]:
        """The path to open and its stat: the file itself, or the file a link inside the release points at."""
        if _leaves_root(path):
            raise SourceError("a path leaving the release root (not opened)")
        full: str | Path = f"{self._root_text}/{path}"
        try:
            st = os.lstat(full)
        except FileNotFoundError as exc:
            raise MemberMissing("no such file") from exc
        except OSError as exc:
            raise SourceError(f"cannot stat: {exc.strerror}") from exc
        if stat.S_ISLNK(st.st_mode):
            try:
                target = Path(full).resolve()
            except RuntimeError as exc:  # pathlib's word for a loop; its message holds the absolute path
                raise SourceError("symbolic link that cannot be resolved (a loop)") from exc
            except OSError as exc:
                raise SourceError(f"symbolic link that cannot be resolved ({exc.strerror})") from exc
            if not target.is_relative_to(self._real_root):
                raise SourceError("symbolic link leaving the release root (not followed)")
            try:
                st = os.stat(target)
            except OSError as exc:
                raise SourceError("dangling symbolic link") from exc
            full = target
        if not stat.S_ISREG(st.st_mode):
            raise SourceError("not a regular file")
        return full, st

    def stat(self, path: str) -> MemberStat:
        _, st = self._target(path)
        return MemberStat(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, inode=st.st_ino,
                          device=st.st_dev)

    def open(self, path: str) -> MemberReader:
        full, _ = self._target(path)
        try:
            fd = os.open(full, OPEN_FLAGS)
        except OSError as exc:
            raise SourceError(f"read error: {exc.strerror or exc}") from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped for something else since it was checked
            os.close(fd)
            raise SourceError("not a regular file")
        return _FileReader(fd, st.st_size)
