"""Scanning a release folder into facts: the only part of tsqa that touches the data, read-only."""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import re
import signal
import stat
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from qa.facts import CaseFacts, DeepFacts, Entry, EntryKind, FileFacts, MaskValues, MetaFacts, ReleaseFacts, StreamFacts
from qa.nifti import inflate, read_file_facts
from qa.voxels import OverlapTracker, image_values, mask_values, voxel_array

NIFTI_SUFFIXES = (".nii.gz", ".nii")
MAX_META_BYTES = 64 << 20
# Cases queued per worker: enough to keep workers busy, few enough that a crash only puts these under suspicion.
QUEUE_PER_JOB = 4
# A test hook: a worker scanning this case kills itself, so that crash isolation can be shown on real files.
KILL_CASE_ENV = "TSQA_TEST_KILL_CASE"

Progress = Callable[[int, int, int], None]  # cases done, cases in all, files done
ScanMode = Literal["quick", "deep"]


@dataclass(frozen=True)
class Layout:
    """Where things are in a release, and how large a file may be before it is absurd: all a scan needs of a spec."""

    meta_file: str = "meta.csv"
    case_pattern: str = r"^s\d{4}$"
    image: str = "ct.nii.gz"
    mask_dir: str = "segmentations"
    max_voxels: int = 1_000_000_000
    max_bytes: int = 4 << 30


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


def scan_case(root: str, case: str, layout: Layout = Layout(), mode: ScanMode = "quick") -> CaseFacts:
    """Entries of a case folder and its first-level subfolders, header facts of every NIfTI among them, and in deep
    mode the voxel facts of every file."""
    root_path = Path(root)
    facts = CaseFacts(case=case, entries=list_entries(root_path / case, f"{case}/"))
    for entry in list(facts.entries):
        if entry.kind == "dir":
            facts.entries.extend(list_entries(root_path / entry.path, f"{entry.path}/"))
    for entry in facts.entries:
        if entry.kind != "dir" and is_nifti_name(entry.path.rsplit("/", 1)[-1]):
            facts.files[entry.path] = read_file_facts(root_path / entry.path, entry.path, root_path)
    if mode == "deep":
        facts.deep = measure_case(root_path, facts, layout)
    return facts


def _readable_stream(facts: FileFacts | None, layout: Layout) -> bool:
    """Whether decompressing the whole file is safe and useful: a gzip file whose sane header its trailer confirms."""
    return facts is not None and facts.isize is not None and facts.problem(layout.max_voxels, layout.max_bytes) is None


def _read_raw(root: Path, facts: FileFacts | None, layout: Layout, deep: DeepFacts) -> bytes | None:
    """A file's compressed bytes when decompressing it is safe and useful; a read error is recorded as a stream fact."""
    if not _readable_stream(facts, layout):
        return None
    try:
        return (root / facts.path).read_bytes()
    except OSError as exc:
        deep.streams[facts.path] = StreamFacts(0, f"read error: {exc.strerror}")
        return None


def _inflate_raw(raw: bytes, facts: FileFacts, deep: DeepFacts) -> bytearray | None:
    buffer, deep.streams[facts.path] = inflate(raw, facts.header.stream_bytes)
    return buffer


def measure_case(root: Path, facts: CaseFacts, layout: Layout) -> DeepFacts:
    """Decompress every NIfTI of a case once, verifying it, and measure the image and every mask on the way."""
    deep = DeepFacts()
    image_path = f"{facts.case}/{layout.image}"
    image_facts = facts.files.get(image_path)
    raw = _read_raw(root, image_facts, layout, deep)
    buffer = None if raw is None else _inflate_raw(raw, image_facts, deep)
    del raw
    image = None if buffer is None else voxel_array(buffer, image_facts.header)
    if image is not None:
        deep.image = image_values(image, image_facts.header)
    mask_prefix = f"{facts.case}/{layout.mask_dir}/"
    masks = sorted(p for p in facts.files if p.startswith(mask_prefix))
    measure = _MaskMeasure(root, layout, deep, image, image_facts, len(masks))
    for path in masks:
        measure.add(facts.files[path])
    for path in sorted(set(facts.files) - set(masks) - {image_path}):
        raw = _read_raw(root, facts.files[path], layout, deep)
        if raw is not None:
            _inflate_raw(raw, facts.files[path], deep)
    return deep


_NO_VOXELS = np.empty(0, dtype=np.intp)


class _MaskMeasure:
    """Measures a case's masks one at a time against its image, keeping one mask in memory."""

    def __init__(self, root: Path, layout: Layout, deep: DeepFacts, image: np.ndarray | None,
                 image_facts: FileFacts | None, masks: int) -> None:
        self.root, self.layout, self.deep = root, layout, deep
        self.image = image
        self.image_shape = None if image is None else image_facts.header.shape[:3]
        self.tracker = None if image is None else OverlapTracker(image.size, masks)
        # Most masks of a case are empty and byte-identical: each distinct empty blob is decoded once.
        self.empty_blobs: dict[bytes, tuple[StreamFacts, MaskValues]] = {}

    def _on_grid(self, facts: FileFacts) -> bool:
        header = facts.header
        return self.image is not None and header.shape[:3] == self.image_shape and math.prod(header.shape) == self.image.size

    def add(self, facts: FileFacts) -> None:
        index = self._measure(facts)
        if self.tracker is not None:
            self.deep.overlaps += self.tracker.add(facts.path, index)

    def _measure(self, facts: FileFacts) -> np.ndarray:
        raw = _read_raw(self.root, facts, self.layout, self.deep)
        if raw is None:
            return _NO_VOXELS
        key = hashlib.blake2b(raw, digest_size=16).digest()
        if key in self.empty_blobs:
            self.deep.streams[facts.path], self.deep.masks[facts.path] = self.empty_blobs[key]
            return _NO_VOXELS
        buffer = _inflate_raw(raw, facts, self.deep)
        if buffer is None:
            return _NO_VOXELS
        on_grid = self._on_grid(facts)
        padding = None if self.deep.image is None else self.deep.image.padding_value
        values, index = mask_values(voxel_array(buffer, facts.header), facts.header.shape,
                                    self.image if on_grid else None, padding if on_grid else None)
        self.deep.masks[facts.path] = values
        if values.voxels == 0 and values.other_values is None:
            self.empty_blobs[key] = (self.deep.streams[facts.path], values)
        return index if on_grid else _NO_VOXELS


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


def _scan_guarded(root: str, case: str, layout: Layout, mode: ScanMode) -> CaseFacts:
    """scan_case in a worker: an exception becomes a fact about the case instead of ending the run."""
    if os.environ.get(KILL_CASE_ENV) == case and multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    try:
        return scan_case(root, case, layout, mode)
    except Exception as exc:  # any bug or unforeseen input must cost one case, not the release
        return CaseFacts(case=case, internal_error=f"{type(exc).__name__}: {exc}")


def _isolated(root: str, case: str, layout: Layout, mode: ScanMode) -> CaseFacts:
    """Scan one case in a process of its own, so that a crash is pinned on it."""
    with ProcessPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(_scan_guarded, root, case, layout, mode).result()
        except BrokenProcessPool:
            return CaseFacts(case=case, internal_error="the worker process scanning this case died (crash or killed)")


def _scan_pool(root: str, cases: list[str], layout: Layout, mode: ScanMode, jobs: int) -> Iterator[CaseFacts]:
    """Cases scanned by `jobs` processes, in completion order. When a worker dies, the cases that were in flight are
    scanned again one process each, so that only the culprit is lost."""
    pending = deque(cases)
    while pending:
        inflight: dict[Future, str] = {}
        try:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                while pending or inflight:
                    while pending and len(inflight) < jobs * QUEUE_PER_JOB:
                        case = pending.popleft()
                        inflight[pool.submit(_scan_guarded, root, case, layout, mode)] = case
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()
                        del inflight[future]
                        yield result
        except BrokenProcessPool:
            for case in sorted(inflight.values()):
                yield _isolated(root, case, layout, mode)


def _scan_cases(root: Path, cases: list[str], layout: Layout, mode: ScanMode, jobs: int) -> Iterator[CaseFacts]:
    if jobs <= 1:
        return (_scan_guarded(str(root), case, layout, mode) for case in cases)
    return _scan_pool(str(root), cases, layout, mode, jobs)


def scan_release(root: Path, layout: Layout, mode: ScanMode = "quick", jobs: int = 1,
                 progress: Progress | None = None) -> ReleaseFacts:
    """Facts of a whole release: meta.csv bytes, the root's entries, and every case folder's facts, in folder order."""
    root_entries = list_entries(root, "")
    cases = case_folders(root_entries, layout.case_pattern)
    scanned: dict[str, CaseFacts] = {}
    files = 0
    for facts in _scan_cases(root, cases, layout, mode, jobs):
        scanned[facts.case] = facts
        files += len(facts.files)
        if progress is not None:
            progress(len(scanned), len(cases), files)
    return ReleaseFacts(root=str(root), meta=read_meta(root, layout.meta_file), root_entries=root_entries,
                        cases=[scanned[case] for case in cases])
