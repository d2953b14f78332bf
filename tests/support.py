"""Test support shared by test modules: where the repository and its test data are, copies of the real example, and
a source that kills the worker reading one case."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
from pathlib import Path

from qa.source.base import MemberReader
from qa.source.fs import FolderSource

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"  # see tests/data/README.md for where each file came from
CLASS_MAPS = json.loads((DATA / "class-maps.json").read_text())


def class_list(key: str) -> list[str]:
    """A class map of tests/data/class-maps.json as a list in label order."""
    return [CLASS_MAPS[key][k] for k in sorted(CLASS_MAPS[key], key=int)]


def copy_example(example: Path, dest: Path, cases: list[str]) -> Path:
    """A writable release in `dest` whose cases are copies of the real example case, listed in meta.csv."""
    dest.mkdir(parents=True, exist_ok=True)
    header, row = (example / "meta.csv").read_bytes().split(b"\n")[:2]
    rows = [row.replace(b"s0000", case.encode()) for case in cases]
    (dest / "meta.csv").write_bytes(b"\n".join([header, *rows]) + b"\n")
    for case in cases:
        shutil.copytree(example / "s0000", dest / case, copy_function=shutil.copyfile)
    return dest


class KillingSource(FolderSource):
    """A folder whose files of one case kill the worker process that opens them: a crash injected through the source
    interface, as a segfault in a reader or the kernel's OOM killer would end a worker."""

    def __init__(self, root: Path, case: str) -> None:
        super().__init__(root)
        self.case = case

    def open(self, path: str) -> MemberReader:
        if path.startswith(f"{self.case}/") and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().open(path)
