"""How much memory a case's deep scan holds, from its files' headers, and the most complete plan within a budget.

The deep pass holds the image inflated whole (for the image inside each mask and the padding check), an overlap
tracker of one owner per image voxel, one mask at a time and that mask's voxel indices, and, for a spec that counts
the pieces of some classes, room to label a mask's bounding box. Each can be given up: the pieces room first (a
mask's pieces are then counted only when its box fits what is left), then the image and the masks, which are then
streamed in bounded steps (still verified byte for byte and measured), then the tracker (overlaps not counted). A
plan says what is held and what that costs at most."""

from __future__ import annotations

import math
from dataclasses import dataclass

from qa.scan.facts import FileFacts
from qa.scan.pieces import PIECE_BYTES
from qa.scan.stream import STEP_BYTES
from qa.scan.voxels import SLAB_VOXELS

MIB = 1 << 20
# What --max-memory defaults to: the whole of what the cases in flight hold, and so the most any worker holds.
DEFAULT_BUDGET = 1 << 30
# A worker's own resident memory before any case and between cases: the interpreter, numpy, nibabel, pydantic and
# one case's facts (measured at 36-60 MiB for a worker forked from the fork server; rounded up).
WORKER_BASE = 64 * MIB
# Temporaries of measuring one slab: a few arrays of 8 bytes per voxel (flat indices, coordinates, the image inside,
# the non-zero words of a mask's block).
SLAB_BYTES = 8 * 8 * SLAB_VOXELS
# Streaming one file: the member walk's steps and a slab of voxels of up to 8 bytes.
STREAM_BYTES = STEP_BYTES + 8 * SLAB_VOXELS
# Room kept for a mask's voxel indices (8 bytes each) for the overlap tracker: at least this, and this per grid voxel
# (a mask of up to about 1/16 of the grid). A mask with more voxels than the room left has its overlaps skipped.
INDEX_MIN = 16 * MIB
INDEX_PER_VOXEL = 0.5
# Where only the image's header is known (the parent estimating a case), a mask on its grid is taken as uint8 stored
# at 1/16 of its size: real masks compress 50 to 1000 times; a larger one is streamed, which loses nothing.
GUESSED_MASK_RATIO = 16
LEANEST = WORKER_BASE + SLAB_BYTES + STREAM_BYTES


def mib(size: int) -> str:
    return f"{math.ceil(size / MIB)} MiB"


@dataclass(frozen=True)
class CaseSize:
    """What measuring a case holds, from headers: the image file and its inflated stream, its grid, the number of
    masks, the largest mask on that grid (file and stream), and whether the pieces of some of its masks are counted."""

    image_file: int
    image_stream: int
    voxels: int
    masks: int
    mask_file: int
    mask_stream: int
    pieces: bool = False

    @classmethod
    def guessed(cls, image: FileFacts, masks: int, pieces: bool = False) -> CaseSize:
        """From the image alone: `masks` masks of uint8 on its grid."""
        header = image.header
        voxels = math.prod(header.shape)
        mask_stream = header.data_offset + voxels
        return cls(image.size, header.stream_bytes, voxels, masks, mask_stream // GUESSED_MASK_RATIO, mask_stream,
                   pieces)

    @property
    def tracker(self) -> int:
        """The overlap tracker: one owner per voxel, uint8 up to 254 masks."""
        return self.voxels * (1 if self.masks < 255 else 2)

    @property
    def index(self) -> int:
        return max(INDEX_MIN, int(self.voxels * INDEX_PER_VOXEL))

    @property
    def labelling(self) -> int:
        """Room to count a mask's pieces whatever its bounding box: labelling the whole grid (a liver's box is a
        third of a median CT's, and a mask's box can be all of it)."""
        return PIECE_BYTES * self.voxels if self.pieces else 0


@dataclass(frozen=True)
class Plan:
    """What a case's measurement holds: the image whole (else streamed), the overlap tracker (else no overlaps),
    room to count any mask's pieces (else only those whose box fits what is left), and the most that costs in bytes,
    a worker's base included."""

    hold_image: bool
    overlaps: bool
    cost: int
    labelling: bool = False


# (hold the image, track overlaps), most complete first. The tracker (1 byte per voxel) is kept before the image (2 for
# int16): it serves LABEL_OVERLAP, the image serves LABEL_IN_PADDING and the mean HU inside masks.
_CHOICES = ((True, True), (False, True), (False, False))


def cost(size: CaseSize, hold_image: bool, overlaps: bool, masks_whole: bool, base: int = WORKER_BASE,
         labelling: bool = False) -> int:
    """The most a worker holds measuring the case so: the larger of the image's phase (its file and its stream at
    once, when inflated whole) and the masks' (what stays held, one mask, its indices, with `labelling` room to count
    its pieces), plus a slab's temporaries and the worker's `base` (its own memory and what its source keeps)."""
    image_phase = size.image_file + size.image_stream if hold_image else STREAM_BYTES
    held = (size.image_stream if hold_image else 0) + (size.tracker if overlaps else 0)
    # Whole masks also leave room to stream one, so that a mask larger than the estimate is streamed, not left out.
    mask = max(size.mask_file + size.mask_stream, STREAM_BYTES) if masks_whole else STREAM_BYTES
    mask_phase = held + mask + (size.index if overlaps else 0) + (size.labelling if labelling else 0)
    return base + SLAB_BYTES + max(image_phase, mask_phase)


def plan(size: CaseSize | None, budget: int, base: int = WORKER_BASE) -> Plan:
    """The most complete plan whose cost fits the budget; the leanest when none does (it then runs alone). Without a
    usable image there is nothing to hold or track: masks are measured on their own. `base` is the worker's own
    memory and what its source keeps."""
    if size is None:
        return Plan(False, False, LEANEST - WORKER_BASE + base)
    for hold_image, overlaps in _CHOICES:
        for labelling in (True, False) if size.pieces else (False,):
            for masks_whole in (True, False):
                need = cost(size, hold_image, overlaps, masks_whole, base, labelling)
                if need <= budget:
                    return Plan(hold_image, overlaps, need, labelling)
    return Plan(False, False, cost(size, False, False, False, base))
