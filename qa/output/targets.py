"""Output paths checked before a scan: why a path cannot take the file or the folder tsqa is to write there.

A file named on its own (--junit, --sarif, a baseline) goes into a folder that must exist, or be the report folder of
the run: tsqa makes no other folder for it. A report folder may be made, but only as the last part of its path unless
told otherwise. Nothing is written in /proc, /sys or /dev (but /dev/shm, a memory file system for files), through a
loop of links, under a file, or over a folder, a fifo or a device."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from qa.output.files import Folder

SYSTEM = (Path("/proc"), Path("/sys"), Path("/dev"))
SHARED_MEMORY = Path("/dev/shm")


def file_problem(path: Path, made: Path | None = None) -> str | None:
    """Why `path` cannot be written as a file (the words after the path in a message), or None. A file in `made`,
    the report folder the run makes (checked on its own), waits for it."""
    problem = _unreachable(path)
    if problem is not None:
        return problem
    mode = _mode(path)
    if mode is not None and stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if mode is not None and not stat.S_ISREG(mode):
        return "exists and is not a regular file (a fifo, a device or a socket)"
    parent = path.absolute().parent
    if made is not None and parent == made.absolute():
        return None
    if _mode(parent) is None:
        return f"cannot be written: its folder {parent} does not exist (tsqa makes no folder for a file)"
    try:
        with Folder.open(parent, make="nothing") as folder:
            folder.check_writable()
    except OSError as exc:
        return f"cannot be written into {parent}: {exc.strerror or exc}"
    return None


def folder_problem(path: Path, parents: bool = False) -> str | None:
    """Why `path` cannot be a folder tsqa writes into, made if absent (with its missing parents when `parents`,
    else only its last part), or None. Whether it can be written is for opening it to find out."""
    problem = _unreachable(path)
    if problem is not None:
        return problem
    mode = _mode(path)
    if mode is not None:
        return None if stat.S_ISDIR(mode) else "exists and is not a folder"
    parent = path.absolute().parent
    if not parents and _mode(parent) is None:
        return f"cannot be made: its folder {parent} does not exist (tsqa makes only the last folder of the path)"
    return None


def _unreachable(path: Path) -> str | None:
    """Why nothing can be put at `path` whatever it is: a system folder, a loop of links, a file on the way."""
    real = Path(os.path.realpath(path))
    system = next((s for s in SYSTEM if real.is_relative_to(s) and not real.is_relative_to(SHARED_MEMORY)), None)
    if system is not None:
        return f"is in {system}, where tsqa writes nothing"
    try:
        os.stat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return f"is under {_file_above(path)}, which is not a folder"
    except OSError as exc:
        return "is a loop of symbolic links" if exc.errno == errno.ELOOP else f"cannot be reached: {exc.strerror}"
    return None


def _mode(path: Path) -> int | None:
    """The mode of what is at `path`, links followed; None when there is nothing (or a link to nothing)."""
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def _file_above(path: Path) -> Path:
    """The first part of `path` that is there but no folder."""
    for above in reversed(path.absolute().parents):
        mode = _mode(above)
        if mode is not None and not stat.S_ISDIR(mode):
            return above
    return path
