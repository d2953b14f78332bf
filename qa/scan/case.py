"""Scanning one case folder into facts: its entries, every NIfTI's header facts and, in deep mode, its voxel facts."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np

from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts, DeepFacts, FileFacts, MaskValues, Problem, StreamFacts
from qa.scan.members import inflate
from qa.scan.nifti import read_file_facts
from qa.scan.pieces import with_pieces
from qa.scan.voxels import OverlapTracker, image_values, mask_values, measurable, voxel_array
from qa.source.base import ReleaseSource, SourceError

NIFTI_SUFFIXES = (".nii.gz", ".nii")

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
    # masks (paths relative to the case folder) whose connected components are counted: the spec's few-piece classes
    pieces: frozenset[str] = frozenset()

    @classmethod
    def of(cls, spec: ReleaseSpec) -> Layout:
        return cls(meta_file=spec.meta.file, case_pattern=spec.case_pattern, image=spec.image, mask_dir=spec.mask_dir,
                   max_voxels=spec.geometry.max_voxels, max_bytes=spec.geometry.max_bytes,
                   pieces=frozenset(spec.mask_file(name) for name in spec.labels.pieces.limits))


def is_nifti_name(name: str) -> bool:
    return name.endswith(NIFTI_SUFFIXES) and not name.startswith("._")


def scan_case(source: ReleaseSource, case: str, layout: Layout = Layout(), mode: ScanMode = "quick") -> CaseFacts:
    """Entries of a case folder and its first-level subfolders, header facts of every NIfTI among them, and in deep
    mode the voxel facts of every file."""
    facts = CaseFacts(case=case, entries=source.entries(case))
    for entry in list(facts.entries):
        if entry.kind == "dir":
            facts.entries.extend(source.entries(entry.path))
    for entry in facts.entries:
        if entry.kind != "dir" and is_nifti_name(entry.path.rsplit("/", 1)[-1]):
            with failure_of(facts, entry.path):
                facts.files[entry.path] = read_file_facts(source, entry.path, layout.max_bytes)
    if mode == "deep":
        facts.deep = measure_case(source, facts, layout)
    return facts


@contextmanager
def failure_of(facts: CaseFacts, path: str) -> Iterator[None]:
    """Record an exception raised while reading or measuring one file as that file's failure, so that the case's
    other files are still checked."""
    try:
        yield
    except Exception as exc:  # an unforeseen input or a bug must cost one file, not its case
        facts.failures[path] = Problem("error", f"{type(exc).__name__}: {exc}")


def scan_case_guarded(source: ReleaseSource, layout: Layout, mode: ScanMode, case: str) -> CaseFacts:
    """scan_case where an exception becomes a fact about the case instead of ending the run."""
    try:
        return scan_case(source, case, layout, mode)
    except Exception as exc:  # any bug or unforeseen input must cost one case, not the release
        return CaseFacts(case=case, internal_error=Problem("error", f"{type(exc).__name__}: {exc}"))


def _readable_stream(facts: FileFacts | None, layout: Layout) -> bool:
    """Whether decompressing the whole file is safe and useful: a gzip file whose sane header its trailer confirms."""
    return facts is not None and facts.isize is not None and facts.problem(layout.max_voxels, layout.max_bytes) is None


def _read_raw(source: ReleaseSource, facts: FileFacts | None, layout: Layout, deep: DeepFacts) -> bytes | None:
    """A file's compressed bytes when decompressing it is safe and useful; a read error is recorded as a stream fact."""
    if not _readable_stream(facts, layout):
        return None
    try:
        return source.read(facts.path, facts.size)
    except SourceError as exc:
        deep.streams[facts.path] = StreamFacts(0, str(exc))
        return None


def _inflate_raw(raw: bytes, facts: FileFacts, deep: DeepFacts) -> np.ndarray | None:
    buffer, deep.streams[facts.path] = inflate(raw, facts.header.stream_bytes)
    return buffer


def measure_case(source: ReleaseSource, facts: CaseFacts, layout: Layout) -> DeepFacts:
    """Decompress every NIfTI of a case once, verifying it, and measure the image and every mask on the way. A file
    whose reading or measuring raises is recorded in facts.failures and the others are still measured."""
    deep = DeepFacts()
    image_path = f"{facts.case}/{layout.image}"
    image_facts = facts.files.get(image_path)
    image = None
    with failure_of(facts, image_path):
        image = _measure_image(source, image_facts, layout, deep)
    mask_prefix = f"{facts.case}/{layout.mask_dir}/"
    masks = sorted(p for p in facts.files if p.startswith(mask_prefix))
    measure = _MaskMeasure(source, layout, deep, image, image_facts, len(masks))
    for path in masks:
        with failure_of(facts, path):
            measure.add(facts.files[path])
    for path in sorted(set(facts.files) - set(masks) - {image_path}):
        with failure_of(facts, path):
            raw = _read_raw(source, facts.files[path], layout, deep)
            if raw is not None:
                _inflate_raw(raw, facts.files[path], deep)
    return deep


def _measure_image(source: ReleaseSource, image_facts: FileFacts | None, layout: Layout,
                   deep: DeepFacts) -> np.ndarray | None:
    """The image's stored voxels, verified and measured into deep.image, or None when there are none to measure."""
    raw = _read_raw(source, image_facts, layout, deep)
    buffer = None if raw is None else _inflate_raw(raw, image_facts, deep)
    del raw
    if buffer is None or not measurable(image_facts.header):
        return None
    image = voxel_array(buffer, image_facts.header)
    deep.image = image_values(image, image_facts.header)
    return image


_NO_VOXELS = np.empty(0, dtype=np.intp)


class _MaskMeasure:
    """Measures a case's masks one at a time against its image, keeping one mask in memory."""

    def __init__(self, source: ReleaseSource, layout: Layout, deep: DeepFacts, image: np.ndarray | None,
                 image_facts: FileFacts | None, masks: int) -> None:
        self.source, self.layout, self.deep = source, layout, deep
        self.image = image
        self.image_shape = None if image is None else image_facts.header.shape[:3]
        self.tracker = None if image is None else OverlapTracker(image.size, masks)
        # Most masks of a case are empty and byte-identical: each distinct empty blob is decoded once.
        self.empty_blobs: dict[bytes, tuple[StreamFacts, MaskValues]] = {}

    def _on_grid(self, facts: FileFacts) -> bool:
        header = facts.header
        return (self.image is not None and header.shape[:3] == self.image_shape
                and math.prod(header.shape) == self.image.size)

    def add(self, facts: FileFacts) -> None:
        index = self._measure(facts)
        if self.tracker is not None:
            self.deep.overlaps += self.tracker.add(facts.path, index)

    def _measure(self, facts: FileFacts) -> np.ndarray:
        raw = _read_raw(self.source, facts, self.layout, self.deep)
        if raw is None:
            return _NO_VOXELS
        key = hashlib.blake2b(raw, digest_size=16).digest()
        if key in self.empty_blobs:
            self.deep.streams[facts.path], self.deep.masks[facts.path] = self.empty_blobs[key]
            return _NO_VOXELS
        buffer = _inflate_raw(raw, facts, self.deep)
        if buffer is None or not measurable(facts.header):
            return _NO_VOXELS
        on_grid = self._on_grid(facts)
        padding = None if self.deep.image is None else self.deep.image.padding_value
        mask = voxel_array(buffer, facts.header)
        values, index = mask_values(mask, facts.header.shape, self.image if on_grid else None,
                                    padding if on_grid else None)
        if facts.path.split("/", 1)[-1] in self.layout.pieces:
            values = with_pieces(values, mask, facts.header.shape)
        self.deep.masks[facts.path] = values
        if values.voxels == 0 and values.other_values is None:
            self.empty_blobs[key] = (self.deep.streams[facts.path], values)
        return index if on_grid else _NO_VOXELS
