"""A run's files written whole into a hidden staging folder, then put in place of its report folder's at once.

Every file of a run (evidence pictures, report.json, report.html, run.json) goes first into a fresh folder beside the
report folder (the same parent, so the same file system), through its handle, and is fsynced. Only then is the
staging folder exchanged with the report folder: renameat2(RENAME_EXCHANGE), one atomic step, after which the old
folder, now at the staging name, is removed. What the report folder holds that tsqa did not write is carried over
first: files as hard links, subfolders moved just before the exchange, so that the exchange drops nothing of the
user's. Where there is no exchange (not Linux, a file system without it, a report folder that is a mount point or
reached under another name), the folder is staged inside the report folder and its files are renamed into place one
after the other, report.json last. Whatever fails before that removes the staging folder and leaves the report
folder as it was. A staging folder is locked while its run lives: one left by a run killed outright (SIGKILL) is
removed by the next run that stages beside it."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from shutil import rmtree

from qa.output.files import OPEN_FOLDER, Folder, where

REPORT_JSON = "report.json"
OWN = frozenset({REPORT_JSON, "report.html", "run.json", "evidence"})  # what tsqa writes into a report folder
RENAME_EXCHANGE = 2  # linux/fs.h
STAGING = ".tsqa-staging-"
# A folder younger than this may be a live run's between its mkdir and its lock.
ABANDONED_AFTER_S = 60.0


def _renameat2() -> Callable[..., int] | None:
    try:
        found = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    found.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return found


RENAMEAT2 = _renameat2()


def exchange(folder: int, first: str, second: str) -> None:
    """Swap two entries of a folder at once (renameat2 RENAME_EXCHANGE); OSError where it cannot."""
    if RENAMEAT2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if RENAMEAT2(folder, os.fsencode(first), folder, os.fsencode(second), RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@contextmanager
def staged(out: Folder) -> Iterator[Folder]:
    """A fresh folder to write a run into, standing for `out` (its path is `out`'s): put in place of `out`'s run
    files whole when the block ends, removed with `out` unchanged when it raises. After an exchange `out` holds the
    new folder's handle (locked if `out` was)."""
    beside = _swappable(out)
    holder = out if beside is None else beside[0]
    name = f"{STAGING}{secrets.token_hex(4)}"
    try:
        _remove_abandoned(holder)
        os.mkdir(name, 0o700, dir_fd=holder.fd)
        try:
            with Folder(out.path, os.open(name, OPEN_FOLDER, dir_fd=holder.fd)) as staging:
                staging.lock()
                yield staging
                _sync(staging)
                if beside is None or not _swapped(out, staging, beside[0], beside[1], name):
                    _commit_files(staging, out)
        finally:
            rmtree(name, ignore_errors=True, dir_fd=holder.fd)  # after an exchange: the old folder
    finally:
        if beside is not None:
            beside[0].close()


def _remove_abandoned(holder: Folder) -> None:
    """Remove the staging folders in `holder` that no live run holds: their run was killed before it could."""
    for entry in os.scandir(holder.fd):
        if not entry.name.startswith(STAGING) or not entry.is_dir(follow_symlinks=False):
            continue
        with suppress(OSError):
            if time.time() - entry.stat(follow_symlinks=False).st_ctime < ABANDONED_AFTER_S:
                continue
            fd = os.open(entry.name, OPEN_FOLDER, dir_fd=holder.fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                rmtree(entry.name, ignore_errors=True, dir_fd=holder.fd)
            finally:
                os.close(fd)


def _swappable(out: Folder) -> tuple[Folder, str] | None:
    """`out`'s parent and its name there, when it can be exchanged in it: the name is still `out` (no link or other
    folder put there since it was opened) and the parent is on the same file system (`out` is no mount point)."""
    if RENAMEAT2 is None:
        return None
    parent = out.parent()
    name = where(out.fd, out.path).name
    mine = os.fstat(out.fd)
    try:
        there = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
    except OSError:
        there = None
    if there is None or (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino) or \
            os.fstat(parent.fd).st_dev != mine.st_dev:
        parent.close()
        return None
    return parent, name


def _swapped(out: Folder, staging: Folder, parent: Folder, name: str, staging_name: str) -> bool:
    """Exchange the staging folder, given what of `out` is not tsqa's, with `out`; False (all undone) where the
    exchange fails."""
    mine = os.fstat(out.fd)
    os.fchmod(staging.fd, stat.S_IMODE(mine.st_mode))
    if out.locked:
        staging.lock()
    foreign = [entry for entry in os.scandir(out.fd) if entry.name not in OWN]
    moved: list[str] = []
    try:
        for entry in foreign:
            if not entry.is_dir(follow_symlinks=False):
                os.link(entry.name, entry.name, src_dir_fd=out.fd, dst_dir_fd=staging.fd, follow_symlinks=False)
        for entry in foreign:
            if entry.is_dir(follow_symlinks=False):
                os.rename(entry.name, entry.name, src_dir_fd=out.fd, dst_dir_fd=staging.fd)
                moved.append(entry.name)
        exchange(parent.fd, staging_name, name)
    except OSError:
        for entry_name in moved:
            os.rename(entry_name, entry_name, src_dir_fd=staging.fd, dst_dir_fd=out.fd)
        return False
    out.fd, staging.fd = staging.fd, out.fd
    out.locked, staging.locked = staging.locked, out.locked
    os.fsync(parent.fd)
    return True


def _commit_files(staging: Folder, out: Folder) -> None:
    """Rename the staged files into `out` one by one: the subfolders' (evidence pictures) first, report.json last."""
    names = sorted(os.listdir(staging.fd), key=lambda n: (n == REPORT_JSON, n))
    for sub in (n for n in names if stat.S_ISDIR(os.stat(n, dir_fd=staging.fd, follow_symlinks=False).st_mode)):
        with suppress(FileExistsError):
            os.mkdir(sub, dir_fd=out.fd)
        with staging.child(sub) as source, out.child(sub) as target:
            for file in os.listdir(source.fd):
                os.rename(file, file, src_dir_fd=source.fd, dst_dir_fd=target.fd)
            os.fsync(target.fd)
    for file in names:
        if not stat.S_ISDIR(os.stat(file, dir_fd=staging.fd, follow_symlinks=False).st_mode):
            os.rename(file, file, src_dir_fd=staging.fd, dst_dir_fd=out.fd)
    os.fsync(out.fd)


def _sync(staging: Folder) -> None:
    """The staged files' folder entries on disk, as their contents already are (Folder.write fsyncs each file)."""
    for entry in os.scandir(staging.fd):
        if entry.is_dir(follow_symlinks=False):
            with staging.child(entry.name) as sub:
                os.fsync(sub.fd)
    os.fsync(staging.fd)
