"""Scanning one case folder into facts: its entries, every NIfTI's header facts and, in deep mode, its voxel facts."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from qa.scan.facts import CaseFacts, DeepFacts, FileFacts, MaskValues, Problem, Skipped, StreamFacts
from qa.scan.members import MemberStream, inflate
from qa.scan.memory import (
    DEFAULT_BUDGET,
    INDEX_MIN,
    SLAB_BYTES,
    STREAM_BYTES,
    WORKER_BASE,
    CaseSize,
    Plan,
    cost,
    mib,
    plan,
)
from qa.scan.nifti import read_file_facts
from qa.scan.pieces import PIECE_BYTES, box_voxels, index_crop, mask_crop, with_pieces
from qa.scan.stream import blob_key, voxel_slabs
from qa.scan.voxels import ImageStats, MaskStats, OverlapTracker, image_values, measurable, measure_mask, voxel_array
from qa.source.base import Entry, ReleaseSource, SourceError

if TYPE_CHECKING:  # a worker scans without the spec module's pydantic models being needed here
    from qa.rules.spec import ReleaseSpec

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
    masks: int = 117  # the spec's classes: how wide the overlap tracker of a case is taken to be before its scan

    @classmethod
    def of(cls, spec: ReleaseSpec) -> Layout:
        return cls(meta_file=spec.meta.file, case_pattern=spec.case_pattern, image=spec.image, mask_dir=spec.mask_dir,
                   max_voxels=spec.geometry.max_voxels, max_bytes=spec.geometry.max_bytes,
                   pieces=frozenset(spec.mask_file(name) for name in spec.labels.pieces.limits),
                   masks=len(spec.classes))


def is_nifti_name(name: str) -> bool:
    return name.endswith(NIFTI_SUFFIXES) and not name.startswith("._")


@dataclass(frozen=True)
class CaseTask:
    """A case to scan and the most memory its scan may hold, in bytes, its worker's base and what the source keeps
    included: what an executor admits it by, and what the scan keeps to."""

    case: str
    cost: int


def case_task(source: ReleaseSource, case: str, layout: Layout, mode: ScanMode, budget: int) -> CaseTask:
    """The case with the cost of the most complete plan that fits the budget, estimated from its image's header alone
    (one small read; its masks taken to be uint8 on its grid). The quick pass never inflates: a worker's base. An
    image that cannot be read here is read (and reported) by the scan: the case gets the leanest plan."""
    base = WORKER_BASE + source.resident_bytes()
    if mode == "quick":
        return CaseTask(case, base)
    try:
        image = read_file_facts(source, f"{case}/{layout.image}", layout.max_bytes)
    except Exception:  # the case's own scan meets it again and makes it that file's finding
        image = None
    size = CaseSize.guessed(image, layout.masks, bool(layout.pieces)) if _usable_image(image, layout) else None
    return CaseTask(case, plan(size, budget, base).cost)


def case_entries(source: ReleaseSource, case: str) -> list[Entry]:
    """The entries of a case folder, then those of each of its first-level subfolders."""
    entries = source.entries(case)
    for entry in list(entries):
        if entry.kind == "dir":
            entries.extend(source.entries(entry.path))
    return entries


def scan_case(source: ReleaseSource, case: str, layout: Layout = Layout(), mode: ScanMode = "quick",
              allowance: int = DEFAULT_BUDGET, entries: list[Entry] | None = None) -> CaseFacts:
    """Entries of a case folder and its first-level subfolders (listed now unless given: case_entries), header facts
    of every NIfTI among them, and in deep mode the voxel facts of every file, holding at most `allowance` bytes (the
    worker's base included)."""
    facts = CaseFacts(case=case, entries=case_entries(source, case) if entries is None else list(entries))
    for entry in facts.entries:
        if entry.kind != "dir" and is_nifti_name(entry.path.rsplit("/", 1)[-1]):
            with failure_of(facts, entry.path):
                facts.files[entry.path] = read_file_facts(source, entry.path, layout.max_bytes)
    if mode == "deep":
        facts.deep = measure_case(source, facts, layout, allowance)
    return facts


@contextmanager
def failure_of(facts: CaseFacts, path: str) -> Iterator[None]:
    """Record an exception raised while reading or measuring one file as that file's failure, so that the case's
    other files are still checked."""
    try:
        yield
    except Exception as exc:  # an unforeseen input or a bug must cost one file, not its case
        facts.failures[path] = Problem("error", f"{type(exc).__name__}: {exc}")


def scan_case_guarded(source: ReleaseSource, layout: Layout, mode: ScanMode, task: CaseTask,
                      entries: list[Entry] | None = None) -> CaseFacts:
    """scan_case where an exception becomes a fact about the case instead of ending the run."""
    try:
        return scan_case(source, task.case, layout, mode, task.cost, entries)
    except Exception as exc:  # any bug or unforeseen input must cost one case, not the release
        return CaseFacts(case=task.case, internal_error=Problem("error", f"{type(exc).__name__}: {exc}"))


def _readable_stream(facts: FileFacts | None, layout: Layout) -> bool:
    """Whether decompressing the whole file is safe and useful: a gzip file whose sane header its trailer confirms."""
    return facts is not None and facts.isize is not None and facts.problem(layout.max_voxels, layout.max_bytes) is None


def _usable_image(facts: FileFacts | None, layout: Layout) -> bool:
    """Whether the image is decompressed and its voxels measured: a readable stream of numbers (not RGB)."""
    return _readable_stream(facts, layout) and measurable(facts.header)


def _on_grid(facts: FileFacts, image: FileFacts | None) -> bool:
    """Whether a mask's voxels line up with its image's, one for one: only then are they measured against it."""
    if image is None:
        return False
    mask, grid = facts.header, image.header
    return mask.shape[:3] == grid.shape[:3] and math.prod(mask.shape) == math.prod(grid.shape)


class _Volumes:
    """Reads a case's files within its allowance: a file whose compressed and inflated bytes fit the room left is
    inflated whole (libdeflate, fast); a larger one is streamed in bounded steps (zlib). Both read every gzip member
    under the same rules and word what broke alike (qa.scan.members); a read error or a broken stream is recorded as
    the file's stream fact."""

    def __init__(self, source: ReleaseSource, deep: DeepFacts, allowance: int) -> None:
        self.source, self.deep, self.allowance = source, deep, allowance
        self.base = WORKER_BASE + source.resident_bytes()
        self.held = 0  # bytes kept for the case: the image, the overlap tracker

    def room(self) -> int:
        return self.allowance - self.base - SLAB_BYTES - self.held

    def fits(self, facts: FileFacts, reserve: int = 0) -> bool:
        return facts.size + facts.header.stream_bytes + reserve <= self.room()

    def raw(self, facts: FileFacts) -> bytes | None:
        """The file's compressed bytes; None when they cannot be read."""
        try:
            return self.source.read(facts.path, facts.size)
        except SourceError as exc:
            self.deep.streams[facts.path] = StreamFacts(0, str(exc))
            return None

    def inflated(self, facts: FileFacts, raw: bytes) -> np.ndarray | None:
        """The file's stored voxels (flat, file order) inflated whole from its compressed bytes; None when broken or
        not numbers (verified all the same)."""
        buffer, self.deep.streams[facts.path] = inflate(raw, facts.header.stream_bytes)
        return None if buffer is None or not measurable(facts.header) else voxel_array(buffer, facts.header)

    def whole(self, facts: FileFacts) -> np.ndarray | None:
        raw = self.raw(facts)
        return None if raw is None else self.inflated(facts, raw)

    def slabs(self, facts: FileFacts) -> Iterator[tuple[int, np.ndarray]]:
        """The file's stored voxels slab by slab (one buffer, reused); its stream fact is recorded at the end. A
        consumer discards what it measured unless the stream fact has no error."""
        try:
            with self.source.open(facts.path) as reader:
                stream = MemberStream(reader, facts.header.stream_bytes)
                yield from voxel_slabs(stream, facts.header)
                self.deep.streams[facts.path] = stream.facts
        except SourceError as exc:
            self.deep.streams[facts.path] = StreamFacts(0, str(exc))

    def verify(self, facts: FileFacts) -> None:
        """Inflates the file only to verify it."""
        if self.fits(facts):
            self.whole(facts)
        else:
            for _ in self.slabs(facts):
                pass

    def broken(self, facts: FileFacts) -> bool:
        return self.deep.streams[facts.path].error is not None


def _size(image: FileFacts | None, masks: list[FileFacts], layout: Layout) -> CaseSize | None:
    if image is None:
        return None
    on_grid = [m for m in masks if _on_grid(m, image)]
    pieces = any(m.path.split("/", 1)[-1] in layout.pieces for m in on_grid)
    return CaseSize(image.size, image.header.stream_bytes, math.prod(image.header.shape), len(masks),
                    max((m.size for m in on_grid), default=0), max((m.header.stream_bytes for m in on_grid), default=0),
                    pieces)


def measure_case(source: ReleaseSource, facts: CaseFacts, layout: Layout, allowance: int = DEFAULT_BUDGET) -> DeepFacts:
    """Decompress every NIfTI of a case once, verifying it, and measure the image and every mask on the way, holding
    at most `allowance` bytes: what does not fit is streamed, and what cannot be measured so is left out and said. A
    file whose reading or measuring raises is recorded in facts.failures and the others are still measured."""
    deep = DeepFacts()
    image_path = f"{facts.case}/{layout.image}"
    image_facts = facts.files.get(image_path)
    mask_prefix = f"{facts.case}/{layout.mask_dir}/"
    masks = sorted(p for p in facts.files if p.startswith(mask_prefix))
    readable = [facts.files[p] for p in masks if _readable_stream(facts.files[p], layout)]
    measured_image = image_facts if _usable_image(image_facts, layout) else None
    chosen = plan(_size(measured_image, readable, layout), allowance, WORKER_BASE + source.resident_bytes())
    volumes = _Volumes(source, deep, allowance)
    image = None
    with failure_of(facts, image_path):
        if measured_image is not None:
            image = _measure_image(volumes, measured_image, chosen.hold_image)
            if volumes.broken(measured_image):
                measured_image = None  # masks are measured on their own, as without an image
        elif _readable_stream(image_facts, layout):
            volumes.verify(image_facts)  # an RGB image: verified, not measured
    if measured_image is not None and image_path in facts.failures:
        image, measured_image = None, None
    if measured_image is not None and any(_on_grid(m, measured_image) for m in readable):
        _say_skipped(deep, facts.case, chosen, _size(measured_image, readable, layout), allowance)
    measure = _MaskMeasure(volumes, layout, image, measured_image, len(masks), chosen.overlaps)
    for path in masks:
        with failure_of(facts, path):
            measure.add(facts.files[path])
    del image, measure
    volumes.held = 0
    for path in sorted(set(facts.files) - set(masks) - {image_path}):
        with failure_of(facts, path):
            if _readable_stream(facts.files[path], layout):
                volumes.verify(facts.files[path])
    return deep


def _measure_image(volumes: _Volumes, facts: FileFacts, hold: bool) -> np.ndarray | None:
    """The image's statistics; its voxels when the plan holds them (and it is not broken)."""
    if hold:
        image = volumes.whole(facts)
        if image is not None:
            volumes.deep.image = image_values(image, facts.header)
            volumes.held += image.nbytes
        return image
    stats = ImageStats(math.prod(facts.header.shape), np.dtype(facts.header.dtype))
    for start, slab in volumes.slabs(facts):
        stats.add(start, slab)
    if not volumes.broken(facts):
        volumes.deep.image = stats.result(facts.header)
    return None


def _say_skipped(deep: DeepFacts, case: str, chosen: Plan, size: CaseSize, allowance: int) -> None:
    full = cost(size, True, True, False)
    need = f"measuring it in full needs {mib(full)}, more than the {mib(allowance)} its share of --max-memory allows"
    if not chosen.overlaps:
        deep.skipped.append(Skipped("overlaps", case, f"no overlap tracker ({mib(size.tracker)}): {need}"))
    if not chosen.hold_image:
        deep.skipped.append(Skipped("padding", case, f"the image ({mib(size.image_stream)}) streamed, not held: "
                                                     f"{need}"))


_NO_VOXELS = np.empty(0, dtype=np.intp)


class _MaskMeasure:
    """Measures a case's masks one at a time against its image, holding one mask (or a slab of it) at a time, and
    counts the pieces of the spec's few-piece classes."""

    def __init__(self, volumes: _Volumes, layout: Layout, image: np.ndarray | None, image_facts: FileFacts | None,
                 masks: int, overlaps: bool) -> None:
        self.volumes, self.layout, self.deep = volumes, layout, volumes.deep
        self.image, self.image_facts = image, image_facts
        self.tracker = None
        if image_facts is not None and overlaps:
            self.tracker = OverlapTracker(math.prod(image_facts.header.shape), masks)
            volumes.held += self.tracker.owner.nbytes
        # Most masks of a case are empty and byte-identical: each distinct empty blob is decoded once. A blob held
        # whole is known by its bytes, kept by their size and compared at memory speed (a tenth of the cost of hashing
        # them) and counted as held; a streamed one by its digest.
        self.empty_held: dict[int, list[tuple[bytes, tuple[StreamFacts, MaskValues]]]] = {}
        self.empty_streamed: dict[bytes, tuple[StreamFacts, MaskValues]] = {}

    def add(self, facts: FileFacts) -> None:
        measured = self._measure(facts)
        if measured is None:
            if self.tracker is not None:
                self.tracker.add(facts.path, _NO_VOXELS)
            return
        stats, mask = measured
        del measured
        on_grid = _on_grid(facts, self.image_facts)
        if self.tracker is not None:
            index = stats.index if on_grid else None
            self.deep.overlaps += self.tracker.add(facts.path, _NO_VOXELS if index is None else index)
            del index
            if stats.overflow and on_grid:
                voxels = self.deep.masks[facts.path].voxels
                self.deep.skipped.append(Skipped("overlaps", facts.path, f"{voxels} voxels: their index "
                                                                         f"({mib(8 * voxels)}) does not fit in what "
                                                                         "its share of --max-memory leaves"))
        if facts.path.split("/", 1)[-1] not in self.layout.pieces:
            return
        if mask is not None:
            stats.drop_index()  # the tracker has them: the mask itself makes the crop
        crop = self._crop(facts, stats, mask)
        del mask
        stats.drop_index()
        if crop is not None:
            self._count_pieces(facts, crop)

    def _measure(self, facts: FileFacts) -> tuple[MaskStats, np.ndarray | None] | None:
        """The mask's facts into deep.masks; its stats and, when it was held whole, its voxels. None when it was not
        measured (unreadable, broken, not numbers, or an empty blob met before)."""
        if not _readable_stream(facts, self.layout):
            return None
        whole = self.volumes.fits(facts, INDEX_MIN if self.tracker is not None else 0)
        raw = self.volumes.raw(facts) if whole else None
        if whole and raw is None:
            return None
        key = None
        if whole:
            known = next((found for blob, found in self.empty_held.get(facts.size, ()) if blob == raw), None)
        else:
            try:
                key = blob_key(self.volumes.source, facts.path, facts.size)
            except SourceError as exc:
                self.deep.streams[facts.path] = StreamFacts(0, str(exc))
                return None
            known = self.empty_streamed.get(key)
        if known is not None:
            self.deep.streams[facts.path], self.deep.masks[facts.path] = known
            return None
        stats = self._stats(facts, whole)
        mask = None
        if whole:
            mask = self.volumes.inflated(facts, raw)
            if mask is None:
                return None
            measure_mask(mask, stats)
        else:
            if not measurable(facts.header):
                self.volumes.verify(facts)
                return None
            for start, slab in self.volumes.slabs(facts):
                stats.add(start, slab)
            if self.volumes.broken(facts):
                return None
        values = self.deep.masks[facts.path] = stats.result()
        if values.voxels == 0 and values.other_values is None:
            found = (self.deep.streams[facts.path], values)
            if key is None:
                self.empty_held.setdefault(facts.size, []).append((raw, found))
                self.volumes.held += len(raw)
            else:
                self.empty_streamed[key] = found
        return stats, mask

    def _stats(self, facts: FileFacts, whole: bool) -> MaskStats:
        on_grid = _on_grid(facts, self.image_facts)
        image = self.image if on_grid else None
        padding = None if image is None or self.deep.image is None else self.deep.image.padding_value
        limit = None
        streamed_pieces = not whole and facts.path.split("/", 1)[-1] in self.layout.pieces
        if (on_grid and self.tracker is not None) or streamed_pieces:
            buffers = facts.size + facts.header.stream_bytes if whole else STREAM_BYTES
            limit = max(0, self.volumes.room() - buffers)
        return MaskStats(facts.header.shape, image, padding, limit)

    def _crop(self, facts: FileFacts, stats: MaskStats, mask: np.ndarray | None) -> np.ndarray | None:
        """The mask's bounding box as 0 and 1, made from its voxels when it was held whole, else from its voxels'
        indices when they were kept; None when there are no pieces to count, or when counting them does not fit in
        what its allowance leaves (then said: QA_PARTIAL:pieces)."""
        values = self.deep.masks[facts.path]
        shape = facts.header.shape
        if values.bbox is None or len(shape) < 3 or any(n > 1 for n in shape[3:]):
            return None
        box = box_voxels(values.bbox)
        held = facts.header.stream_bytes if mask is not None else stats.index_bytes
        room = self.volumes.room()
        if mask is None and stats.index is None:
            why = f"it was streamed, and its voxels' indices ({mib(8 * values.voxels)}) did not fit"
        elif box + held > room or PIECE_BYTES * box > room:
            why = f"counting them on its bounding box ({box} voxels) needs {mib(PIECE_BYTES * box)}"
        elif mask is not None:
            return mask_crop(mask, shape, values.bbox)
        else:
            return index_crop(stats.index, shape, values.bbox)
        self._say_no_pieces(facts, why)
        return None

    def _count_pieces(self, facts: FileFacts, crop: np.ndarray) -> None:
        found = with_pieces(self.deep.masks[facts.path], crop, self.volumes.room())
        if found is None:
            self._say_no_pieces(facts, "it has too many pieces to list")
        else:
            self.deep.masks[facts.path] = found

    def _say_no_pieces(self, facts: FileFacts, why: str) -> None:
        self.deep.skipped.append(Skipped("pieces", facts.path, f"{why}, more than what its share of --max-memory "
                                                               "leaves"))
