"""Scanning a release folder into facts: the only part of tsqa that touches the data, read-only."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from qa.facts import CaseFacts, Entry, EntryKind, MetaFacts, ReleaseFacts
from qa.nifti import read_file_facts

NIFTI_SUFFIXES = (".nii.gz", ".nii")
MAX_META_BYTES = 64 << 20

Progress = Callable[[int, int], None]


def _kind(mode: int) -> EntryKind:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def list_entries(folder: Path, rel: str) -> list[Entry]:
    """The names in a folder with their kinds, links not followed, sorted for a deterministic report."""
    try:
        with os.scandir(folder) as it:
            found = [Entry(f"{rel}{e.name}", _kind(e.stat(follow_symlinks=False).st_mode)) for e in it]
    except OSError:
        return []
    return sorted(found, key=lambda e: e.path)


def is_nifti_name(name: str) -> bool:
    return name.endswith(NIFTI_SUFFIXES) and not name.startswith("._")


def scan_case(root: str, case: str) -> CaseFacts:
    """Entries of a case folder and its first-level subfolders, with header facts of every NIfTI among them."""
    root_path = Path(root)
    facts = CaseFacts(case=case, entries=list_entries(root_path / case, f"{case}/"))
    for entry in list(facts.entries):
        if entry.kind == "dir":
            facts.entries.extend(list_entries(root_path / entry.path, f"{entry.path}/"))
    for entry in facts.entries:
        if entry.kind != "dir" and is_nifti_name(entry.path.rsplit("/", 1)[-1]):
            facts.files[entry.path] = read_file_facts(root_path / entry.path, entry.path, root_path)
    return facts


def read_meta(root: Path, name: str) -> MetaFacts:
    """The metadata table's bytes, or why they cannot be had; a link leaving the release is not followed."""
    path = root / name
    if not os.path.lexists(path):
        return MetaFacts(path=name, present=False)
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
        return MetaFacts(path=name, present=True, error="not a regular file inside the release")
    size = resolved.stat().st_size
    if size > MAX_META_BYTES:
        return MetaFacts(path=name, present=True, error=f"{size} bytes, more than a metadata table may have ({MAX_META_BYTES})")
    try:
        return MetaFacts(path=name, present=True, raw=resolved.read_bytes())
    except OSError as exc:
        return MetaFacts(path=name, present=True, error=f"read error: {exc.strerror}")


def case_folders(root_entries: list[Entry], case_pattern: str) -> list[str]:
    pattern = re.compile(case_pattern)
    return [e.path for e in root_entries if e.kind == "dir" and pattern.search(e.path)]


def _scan_cases(root: Path, cases: list[str], jobs: int) -> Iterator[CaseFacts]:
    if jobs <= 1 or len(cases) < 2:
        yield from (scan_case(str(root), case) for case in cases)
        return
    chunk = max(1, min(16, len(cases) // (jobs * 8)))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(scan_case, [str(root)] * len(cases), cases, chunksize=chunk)


def scan_release(root: Path, meta_file: str, case_pattern: str, jobs: int = 1, progress: Progress | None = None) -> ReleaseFacts:
    """Facts of a whole release: meta.csv bytes, the root's entries, and every case folder's facts."""
    root_entries = list_entries(root, "")
    cases = case_folders(root_entries, case_pattern)
    scanned: list[CaseFacts] = []
    for facts in _scan_cases(root, cases, jobs):
        scanned.append(facts)
        if progress is not None:
            progress(len(scanned), len(cases))
    return ReleaseFacts(root=str(root), meta=read_meta(root, meta_file), root_entries=root_entries, cases=scanned)
