"""Reading NIfTI facts cheaply: the header from the start of the gzip stream and the gzip trailer, never the volume."""

from __future__ import annotations

import functools
import logging
import struct
import zlib
from dataclasses import dataclass, replace

import numpy as np
from nibabel.nifti1 import Nifti1Header
from nibabel.nifti2 import Nifti2Header

from qa.rules.spec import GeometrySpec
from qa.scan.facts import ISIZE_MODULUS, MAX_DEFLATE_RATIO, CorruptKind, FileFacts, HeaderFacts, Problem
from qa.scan.itk import NiftiFields, Placement, itk_placement
from qa.scan.members import GZIP_MAGIC, TRAILER_BYTES, walk
from qa.source.base import MemberReader, ReleaseSource, SourceError

NIFTI1_SIZE, NIFTI2_SIZE = 348, 540
MAGICS = {NIFTI1_SIZE: (b"n+1", b"ni1"), NIFTI2_SIZE: (b"n+2", b"ni2")}
# A header compresses to well under a kilobyte; a stream that has not produced one after this much
# input is not a NIfTI, and reading on would let a hostile file make us inflate a whole volume.
MAX_HEADER_INPUT = 1 << 20
READ_CHUNK = 1 << 14


class NotNifti(Exception):
    """The bytes are not a NIfTI header; the message is the reason a person reads."""


def _header_class(block: bytes) -> tuple[type[Nifti1Header], int, str]:
    for cls, size in ((Nifti1Header, NIFTI1_SIZE), (Nifti2Header, NIFTI2_SIZE)):
        for order in "<>":
            if len(block) >= 4 and struct.unpack(order + "i", block[:4])[0] == size:
                return cls, size, order
    raise NotNifti(f"sizeof_hdr is {int.from_bytes(block[:4], 'little')}, neither 348 (NIfTI-1) nor 540 (NIfTI-2)")


def parse_header(block: bytes) -> HeaderFacts:
    """Header facts from the first bytes of a NIfTI stream; NotNifti when they are not a usable header."""
    cls, size, order = _header_class(block)
    if len(block) < size:
        raise NotNifti(f"stream ends after {len(block)} bytes, inside the {size}-byte header")
    return _parse_exact(bytes(block[:size]))


# The masks of a case share one header byte for byte, so most files repeat a header seen just before; parsing it once
# is most of the quick pass's speed. Sharing the frozen facts between files is safe: nothing changes them.
@functools.lru_cache(maxsize=256)
def _parse_exact(block: bytes) -> HeaderFacts:
    cls, size, order = _header_class(block)
    # The byte order is sizeof_hdr's: nibabel would guess it from dim[0] and misread a header whose dim[0] is wrong.
    header = cls(block, endianness=order, check=False)
    magic = bytes(header["magic"]).rstrip(b"\x00")
    if magic not in MAGICS[size]:
        # nibabel cannot open a NIfTI-2 magic on a NIfTI-1 header, nor the reverse
        expected = " or ".join(map(repr, MAGICS[size]))
        raise NotNifti(f"magic is {magic!r}, not a magic of the {size}-byte header ({expected})")
    ndim = int(header["dim"][0])
    if not 1 <= ndim <= 7:
        raise NotNifti(f"dim[0] is {ndim}, must be 1 to 7")
    shape = tuple(int(d) for d in header["dim"][1 : ndim + 1])
    if min(shape) < 1:
        raise NotNifti(f"dimensions {shape} include a size below 1")
    try:
        dtype = header.get_data_dtype()
    except Exception as exc:  # nibabel raises several types for unknown datatype codes
        raise NotNifti(f"datatype code {int(header['datatype'])} is not a NIfTI type ({exc})") from exc
    slope, inter = header.get_slope_inter()
    sform_code, qform_code = int(header["sform_code"]), int(header["qform_code"])
    placed = _placed(header)
    single_file = magic in (b"n+1", b"n+2")
    min_offset = size + 4 if single_file else 0
    vox_offset = float(header["vox_offset"])
    if not (np.isfinite(vox_offset) and vox_offset >= min_offset):
        # readers refuse such a file, or (nibabel, for 0) silently read the header as voxels
        raise NotNifti(f"vox_offset is {vox_offset:g}, not a position at or after the end of the header "
                       f"({min_offset} bytes)")
    data_offset = int(vox_offset)
    voxels = int(np.prod(shape, dtype=object))
    return HeaderFacts(
        version=1 if cls is Nifti1Header else 2,
        shape=shape,
        dtype=dtype.name if dtype.isnative else dtype.newbyteorder("=").name,
        byteorder=dtype.byteorder if dtype.byteorder in "<>" else "=",
        zooms=tuple(float(z) for z in header["pixdim"][1 : ndim + 1]),
        affine=placed.affine,
        sform_code=sform_code,
        qform_code=qform_code,
        sform=placed.sform,
        qform=placed.qform,
        slope=None if slope is None else float(slope),
        inter=None if inter is None else float(inter),
        data_offset=data_offset,
        data_bytes=voxels * dtype.itemsize,
        qform_error=placed.qform_error,
        itk=placed.itk,
    )


@dataclass(frozen=True)
class _Placed:
    """What a header's geometry fields say: its transforms, and where nibabel and ITK put the grid."""

    affine: list[list[float]]
    sform: list[list[float]] | None
    qform: list[list[float]] | None
    qform_error: str | None
    itk: Placement


_PLACED: dict[NiftiFields, _Placed] = {}
PLACED_CACHE = 256


def _placed(header: Nifti1Header) -> _Placed:
    """The header's placements, computed once per distinct geometry: a case's CT and its masks share theirs."""
    fields = NiftiFields.of(header)
    if fields not in _PLACED:
        with np.errstate(all="ignore"):
            sform = header.get_sform() if fields.sform_code > 0 else None
            qform, qform_error = _qform(header) if fields.qform_code > 0 else (None, None)
            placed = _Placed(affine=_as_list(nibabel_affine(header)), sform=None if sform is None else _as_list(sform),
                             qform=None if qform is None else _as_list(qform), qform_error=qform_error,
                             itk=itk_placement(fields))
        if len(_PLACED) >= PLACED_CACHE:
            _PLACED.clear()
        _PLACED[fields] = placed
    return _PLACED[fields]


_QUIET = logging.getLogger("tsqa.nibabel_fixes")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def nibabel_affine(header: Nifti1Header) -> np.ndarray:
    """The affine nib.load gives: nibabel first 'fixes' the header (codes outside 0-5 become 0, negative pixdim its
    absolute value, a qfac other than 1 or -1 becomes 1), then takes the sform, else the qform, else a base affine.
    A qform whose quaternion is not a rotation, which nibabel refuses, falls back to the base affine here."""
    fixed = header.copy()
    fixed.check_fix(logger=_QUIET, error_level=100)
    if int(fixed["sform_code"]) > 0:
        return fixed.get_sform()
    if int(fixed["qform_code"]) > 0:
        qform, _ = _qform(fixed)
        if qform is not None:
            return qform
    return fixed.get_base_affine()


def _qform(header: Nifti1Header) -> tuple[np.ndarray | None, str | None]:
    """The qform, or None and why when its quaternion cannot make a rotation (nibabel raises on those)."""
    try:
        return header.get_qform(), None
    except Exception as exc:
        return None, f"its quaternion is not a rotation ({exc})"


def _as_list(matrix: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in np.asarray(matrix, dtype=np.float64)]


def _corrupt(rel: str, size: int, kind: CorruptKind, reason: str, isize: int | None = None) -> FileFacts:
    return FileFacts(path=rel, size=size, isize=isize, corrupt=Problem(kind, reason))


def read_file_facts(source: ReleaseSource, rel: str, max_bytes: int = GeometrySpec().max_bytes) -> FileFacts:
    """Facts of one file from its header and gzip trailer; a problem becomes `corrupt`, never an exception.
    `max_bytes` bounds how far a stream is ever read through (see _confirm_size)."""
    try:
        with source.open(rel) as reader:
            if reader.size == 0:
                return _corrupt(rel, 0, "empty", "empty file")
            return _read_member(reader, rel, max_bytes)
    except SourceError as exc:
        return _corrupt(rel, 0, "unreadable", str(exc))


def _read_member(reader: MemberReader, rel: str, max_bytes: int) -> FileFacts:
    size = reader.size
    head = reader.read_at(0, READ_CHUNK)
    if head[:2] != GZIP_MAGIC:
        if rel.endswith(".gz"):
            return _corrupt(rel, size, "not_gzip", "not gzip (no gzip magic bytes)")
        return _facts_from_block(rel, size, head, isize=None)
    if size < 18:
        return _corrupt(rel, size, "truncated", f"truncated gzip: {size} bytes, shorter than gzip's header and trailer")
    block, error = _inflate_header(reader, head)
    trailer = reader.read_at(size - TRAILER_BYTES, TRAILER_BYTES)
    if len(trailer) < TRAILER_BYTES:
        return _corrupt(rel, size, "unreadable", "the file got shorter while it was read")
    isize = struct.unpack("<I", trailer[4:])[0]
    if error is not None:
        return replace(_corrupt(rel, size, *error, isize=isize), trailer=trailer)
    return _confirm_size(reader, _facts_from_block(rel, size, block, isize, trailer), max_bytes)


def _confirm_size(reader: MemberReader, facts: FileFacts, max_bytes: int) -> FileFacts:
    """The trailer's ISIZE is the size of the stream's last gzip member (modulo 2^32): the whole stream's only when it
    has one member. When it disagrees with the header, the stream is read through once, output discarded, to tell a
    valid multi-member file (its members' total is taken as the stream's size) from a truncated or padded one (why is
    kept for the finding). Nothing is read for a header the checks refuse anyway (larger than max_bytes, or than the
    file can hold), so the cost is bounded by max_bytes of inflating, and paid only by files whose trailer disagrees."""
    header = facts.header
    if header is None or facts.isize == header.stream_bytes % ISIZE_MODULUS:
        return facts
    declared = header.stream_bytes
    if declared > max_bytes or declared > MAX_DEFLATE_RATIO * facts.size:
        return facts
    found = walk(reader.read_at, facts.size, declared)
    if found.error is None and found.inflated == declared:
        return replace(facts, isize=declared % ISIZE_MODULUS)
    members = f" in {found.members} gzip members" if found.members > 1 else ""
    return replace(facts, stream_error=found.error or f"the stream holds {found.inflated} bytes{members}")


def _inflate_header(reader: MemberReader, first: bytes) -> tuple[bytes, tuple[CorruptKind, str] | None]:
    """The first NIFTI2_SIZE bytes of the stream, read on into the next gzip member where one ends sooner."""
    inflater = zlib.decompressobj(wbits=31)
    out = bytearray()
    pending, read = first, len(first)
    try:
        while len(out) < NIFTI2_SIZE:
            out += inflater.decompress(pending, NIFTI2_SIZE - len(out))
            pending = inflater.unconsumed_tail
            boundary = inflater.eof
            if boundary:
                pending, inflater = inflater.unused_data, zlib.decompressobj(wbits=31)
            if len(out) >= NIFTI2_SIZE:
                break
            if len(pending) < 2:
                if read > MAX_HEADER_INPUT:
                    return bytes(out), ("bad_header",
                                        f"no NIfTI header in the first {MAX_HEADER_INPUT} compressed bytes")
                more = reader.read_at(read, READ_CHUNK)
                read += READ_CHUNK
                if not more and not pending:
                    break
                pending += more
            if boundary and pending[:2] != GZIP_MAGIC:  # no member follows: the stream ends here
                break
    except zlib.error as exc:
        return bytes(out), ("bad_header", f"gzip stream broken at its start: {exc}")
    if len(out) < NIFTI1_SIZE:
        return bytes(out), ("truncated",
                            f"truncated: the stream ends after {len(out)} bytes, before the end of the NIfTI header")
    return bytes(out), None


def _facts_from_block(rel: str, size: int, block: bytes, isize: int | None,
                      trailer: bytes | None = None) -> FileFacts:
    try:
        header = parse_header(block)
    except NotNifti as exc:
        return replace(_corrupt(rel, size, "bad_header", f"bad NIfTI header: {exc}", isize), trailer=trailer)
    except Exception as exc:  # a hostile header can trip any nibabel path; it is a finding, not a crash
        return replace(_corrupt(rel, size, "bad_header", f"bad NIfTI header: {type(exc).__name__}: {exc}", isize),
                       trailer=trailer)
    return FileFacts(path=rel, size=size, isize=isize, header=header, trailer=trailer)
