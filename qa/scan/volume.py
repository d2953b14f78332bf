"""Reading one whole volume through the source, within the scan's bounds: for pictures of findings, not for checks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qa.scan.case import Layout
from qa.scan.members import inflate
from qa.scan.nifti import read_file_facts
from qa.scan.voxels import measurable, voxel_array
from qa.source.base import ReleaseSource, SourceError


@dataclass(frozen=True)
class Volume:
    """A 3-D voxel array in loaded units (the first volume of a 4-D file) and its voxel-to-world affine."""

    data: np.ndarray
    affine: np.ndarray


def read_volume(source: ReleaseSource, path: str, layout: Layout, limit: int) -> Volume | None:
    """The file's voxels, or None when its header is unusable, it is larger than the scan allows, reading it would
    hold more than `limit` bytes (its file, its stream and a float copy when scaled), or it is broken."""
    facts = read_file_facts(source, path, layout.max_bytes)
    if facts.problem(layout.max_voxels, layout.max_bytes) is not None or not measurable(facts.header):
        return None
    header = facts.header
    scaled = 0 if header.slope is None and header.inter is None else 4 * math.prod(header.shape)
    if facts.size + header.stream_bytes + scaled > limit:
        return None
    try:
        raw = source.read(path, facts.size)
    except SourceError:
        return None
    stream = raw if facts.isize is None else inflate(raw, header.stream_bytes)[0]
    if stream is None or len(stream) < header.stream_bytes:
        return None
    shape = header.shape + (1,) * (3 - len(header.shape))
    stored = voxel_array(stream, header).reshape(shape, order="F")
    while stored.ndim > 3:
        stored = stored[..., 0]
    affine = np.asarray(header.affine, dtype=np.float64)
    if header.slope is None and header.inter is None:
        return Volume(stored, affine)
    return Volume(header.loaded(stored.astype(np.float32)), affine)
