"""Writing output files into a folder opened once: through its handle, atomically, under a lock.

A Folder is resolved and opened before anything is written and is used only through that handle afterwards, so
replacing its path by a link while tsqa runs (into the release, say) changes nothing about where files go. Each file
is written to a temporary name and renamed over the old one: a reader sees the old file or the new one, never half.
The lock (flock on the folder itself, nothing left behind) keeps a second run from writing the same folder, so that
report.json and report.html always come from one run."""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal

OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
READ_FILE = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class FolderBusy(Exception):
    """Another process holds the folder's lock."""


class Folder:
    """A folder opened once; its files are written and read through its handle, never through its path again."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd
        self.locked = False

    @classmethod
    def open(cls, path: Path, make: Literal["parents", "last", "nothing"] = "parents") -> Folder:
        """The folder at `path`, created if absent with its missing parents, or only as its last part ('last'), or not
        at all. `path` is where the folder really is, as the handle found it (links resolved). OSError when it cannot
        be created or is not a folder."""
        if make != "nothing":
            try:
                path.mkdir(parents=make == "parents")
            except FileExistsError:
                if not path.is_dir():
                    raise
        fd = os.open(path.resolve(), OPEN_FOLDER)
        try:
            return cls(where(fd, path.resolve()), fd)
        except BaseException:
            os.close(fd)
            raise

    def lock(self, wait: bool = False) -> None:
        """Hold the folder until it is closed; FolderBusy when another process holds it and `wait` is false. On a file
        system without locks (some network ones) there is nothing to hold and nothing is held."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise FolderBusy(str(self.path)) from exc
        except OSError:
            return
        self.locked = True

    def unlock(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.locked = False

    def check_writable(self) -> None:
        """OSError (with its strerror) unless a file can be created in the folder."""
        name = f".tsqa-probe-{secrets.token_hex(4)}"
        os.close(os.open(name, NEW_FILE, 0o600, dir_fd=self.fd))
        os.unlink(name, dir_fd=self.fd)

    def write(self, name: str, content: str | bytes) -> Path:
        """Write the file `name` ('sub/file' puts it in a subfolder, created if absent) atomically; its path."""
        folder, sub, base = self._folder_of(name)
        tmp = f".{base}.{secrets.token_hex(4)}.tmp"
        try:
            # mode 0o666 less the umask, as any new file: mkstemp's 0600 would hide the report from the CI user
            fd = os.open(tmp, NEW_FILE, 0o666, dir_fd=folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(content.encode("utf-8") if isinstance(content, str) else content)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, base, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                _unlink(tmp, folder)
                raise
        finally:
            if folder != self.fd:
                os.close(folder)
        return self.path / sub / base if sub else self.path / base

    def read(self, name: str, limit: int) -> bytes | None:
        """A regular file of the folder (or of a subfolder: 'sub/file') of at most `limit` bytes, or None."""
        parts = name.split("/")
        if len(parts) > 2 or any(part in ("", ".", "..") for part in parts):
            return None
        try:
            folder = self.fd if len(parts) == 1 else os.open(parts[0], OPEN_FOLDER, dir_fd=self.fd)
        except OSError:
            return None
        try:
            fd = os.open(parts[-1], READ_FILE, dir_fd=folder)
        except OSError:
            return None
        finally:
            if folder != self.fd:
                os.close(folder)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            data = fh.read(limit + 1)
        return data if len(data) <= limit else None

    def mkdir(self, name: str) -> None:
        """Make the subfolder `name`; FileExistsError when there is one."""
        os.mkdir(name, dir_fd=self.fd)

    def child(self, name: str) -> Folder:
        """The subfolder `name`, opened through this folder's handle, never through a link."""
        fd = os.open(name, OPEN_FOLDER, dir_fd=self.fd)
        return Folder(self.path / name, fd)

    def parent(self) -> Folder:
        """The folder holding this one, as it is now."""
        fd = os.open("..", OPEN_FOLDER, dir_fd=self.fd)
        return Folder(where(fd, self.path.parent), fd)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _folder_of(self, name: str) -> tuple[int, str, str]:
        """The handle of the folder `name` goes into (this one, or a subfolder opened for it), the subfolder, the base
        name."""
        sub, _, base = name.rpartition("/")
        if "/" in sub or base in ("", ".", "..") or sub in (".", ".."):
            raise ValueError(f"{name!r} is not a file name or 'subfolder/file name'")
        if not sub:
            return self.fd, "", base
        try:
            os.mkdir(sub, dir_fd=self.fd)
        except FileExistsError:
            pass
        return os.open(sub, OPEN_FOLDER, dir_fd=self.fd), sub, base


@contextmanager
def opened(out: Folder | Path) -> Iterator[Folder]:
    """`out` as a Folder: itself, or the folder at that path, opened (and created) for as long as it is used."""
    if isinstance(out, Folder):
        yield out
        return
    with Folder.open(out) as folder:
        yield folder


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write one file atomically into the folder holding it, which must exist (tsqa makes no folder for a file named
    on its own: --junit, a baseline), not a report folder."""
    with Folder.open(path.parent, make="nothing") as folder:
        folder.write(path.name, content)


def where(fd: int, fallback: Path) -> Path:
    """Where an open folder is now: what the kernel says of its handle, where it can say."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return fallback


def _unlink(name: str, folder: int) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except FileNotFoundError:
        pass
