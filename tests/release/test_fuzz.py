"""Fuzzing the header reader and the quick checks with mutated copies of the real example files.

Every mutated file must be read without an exception, quickly and in little memory, and judged the way an independent
reading of the same bytes says it should be: a broken file is FILE_CORRUPT, a readable edited header gets the
geometry or data type finding that its new values call for, and damage the quick pass cannot see leaves the findings
unchanged."""

from __future__ import annotations

import gzip
import itertools
import math
import random
import shutil
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nibabel.nifti1 import Nifti1Header, data_type_codes

from qa.app.pipeline import run_check
from qa.checks.geometry import UNUSABLE_AFFINE
from qa.checks.registry import judge
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec, load_spec
from qa.scan.case import scan_case
from qa.scan.facts import FileFacts, MetaFacts, ReleaseFacts
from qa.scan.nifti import read_file_facts
from qa.source.fs import FolderSource

CASE = "s0000"
CT = f"{CASE}/ct.nii.gz"
LIVER = f"{CASE}/segmentations/liver.nii.gz"  # a non-empty mask
SKULL = f"{CASE}/segmentations/skull.nii.gz"  # an empty mask: the CT has no head
FILES = [CT, LIVER, SKULL]
HEADER_BYTES = 348
GZIP_HEADER = bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF])
# The quick pass decodes at most a NIfTI-2 header's worth of the stream; the oracle decodes the same window.
DECODED_WINDOW = 540
ISIZE_MODULUS = 1 << 32
PEAK_LIMIT = 64 << 20
FUZZ = settings(max_examples=40, deadline=timedelta(seconds=1), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
float32s = st.floats(width=32)


@dataclass
class Outcome:
    """What tsqa made of one mutated file: its facts, every finding of the case, and the reader's peak allocation."""

    facts: FileFacts
    findings: list[Finding]
    peak_bytes: int

    def codes_at(self, path: str) -> set[str]:
        return {f.code for f in self.findings if f.path == path}

    def subcodes_at(self, path: str, code: str) -> set[str | None]:
        return {f.subcode for f in self.findings if f.path == path and f.code == code}

    def paths_with(self, code: str) -> set[str]:
        return {f.path for f in self.findings if f.code == code}


def finding_keys(findings: list[Finding]) -> list[tuple[str, str | None, str | None]]:
    return sorted((f.code, f.path, str(f.subcode)) for f in findings)


@dataclass(frozen=True)
class Body:
    """What follows a NIfTI-1 header (extension flag and voxels), raw and as a deflate stream of its own."""

    data: bytes
    deflated: bytes

    @classmethod
    def of(cls, data: bytes) -> Body:
        compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
        return cls(data, compressor.compress(data) + compressor.flush())


def gzip_nifti(header: bytes, body: Body) -> bytes:
    """A single-member gzip of header + body. A full flush after the header makes the body's deflate stream
    independent of it, so the body is compressed once for all header edits."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(body.data, zlib.crc32(header))
    size = (len(header) + len(body.data)) % ISIZE_MODULUS
    return GZIP_HEADER + head + body.deflated + struct.pack("<II", crc, size)


class Workspace:
    """The example case's facts as scanned, and a way to judge the case with one file replaced by mutated bytes."""

    def __init__(self, source: Path, scratch: Path) -> None:
        self.scratch = scratch
        self.spec: ReleaseSpec = load_spec("totalsegmentator-v2")
        self.case = scan_case(FolderSource(source), CASE)
        # meta.csv is left out: no file check depends on it, and parsing it would cost most of each judgement
        self.release = ReleaseFacts(root=str(source), meta=MetaFacts(path="meta.csv", present=False),
                                    root_entries=FolderSource(source).entries(""), cases=[self.case])
        self.originals = {rel: (source / rel).read_bytes() for rel in FILES}
        self.inflated = {rel: gzip.decompress(data) for rel, data in self.originals.items()}
        self.bodies = {rel: Body.of(nii[HEADER_BYTES:]) for rel, nii in self.inflated.items()}
        self.baseline_findings = judge(self.release, self.spec, subset=True).findings
        self.masks = {f"{CASE}/{self.spec.mask_file(name)}" for name in self.spec.classes}
        (scratch / CASE / "segmentations").mkdir(parents=True)

    def judge(self, rel: str, data: bytes) -> Outcome:
        """Read `data` as the file at `rel` (written in a scratch copy) and judge the case with it in place."""
        path = self.scratch / rel
        path.write_bytes(data)
        tracemalloc.start()
        try:
            facts = read_file_facts(FolderSource(self.scratch), rel)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        case = replace(self.case, files={**self.case.files, rel: facts})
        findings = judge(replace(self.release, cases=[case]), self.spec, subset=True).findings
        assert peak < PEAK_LIMIT, f"reading {rel} allocated {peak} bytes"
        return Outcome(facts, findings, peak)

    def with_header(self, rel: str, edit: Callable[[Nifti1Header], None]) -> bytes:
        """The file as gzip after `edit` changed fields of its header; the unchanged voxels are compressed only once."""
        nii = self.inflated[rel]
        header = Nifti1Header(nii[:HEADER_BYTES], endianness="<", check=False)
        edit(header)
        return gzip_nifti(header.binaryblock, self.bodies[rel])

    def original_facts(self, rel: str) -> FileFacts:
        return self.case.files[rel]


@pytest.fixture(scope="module")
def ws(example_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(example_root, tmp_path_factory.mktemp("mutated"))


def assert_corrupt(outcome: Outcome, rel: str) -> None:
    """The file is FILE_CORRUPT, and nothing is judged from its unusable header."""
    assert outcome.codes_at(rel) == {"FILE_CORRUPT"}, outcome.findings
    if rel == CT:
        assert not outcome.paths_with("GEOM_SHAPE_MISMATCH") | outcome.paths_with("GEOM_AFFINE_MISMATCH")


def assert_unchanged(outcome: Outcome, ws: Workspace) -> None:
    assert finding_keys(outcome.findings) == finding_keys(ws.baseline_findings)


def corner_deviation(a: np.ndarray, b: np.ndarray, shape: tuple[int, ...]) -> float:
    """Largest distance between where two affines put the corners of a grid (infinite when not a number)."""
    corners = np.array([[*c, 1.0] for c in itertools.product(*[(0, n - 1) for n in shape[:3]])]).T
    with np.errstate(all="ignore"):
        distance = float(np.max(np.linalg.norm(((a - b) @ corners)[:3], axis=0)))
    return distance if math.isfinite(distance) else math.inf


def decoded_header(data: bytes) -> bytes | None:
    """The start of the stream as Python's zlib decodes it in one call, or None when no whole NIfTI-1 header comes
    out."""
    try:
        out = zlib.decompressobj(wbits=31).decompress(data, DECODED_WINDOW)
    except zlib.error:
        return None
    return out if len(out) >= HEADER_BYTES else None


def test_a_regzipped_header_edit_is_a_valid_gzip_of_the_edited_file(ws: Workspace) -> None:
    data = ws.with_header(LIVER, _set("descrip", b"edited"))
    nii = gzip.decompress(data)
    assert nii[HEADER_BYTES:] == ws.inflated[LIVER][HEADER_BYTES:]
    assert Nifti1Header(nii[:HEADER_BYTES], check=False)["descrip"] == b"edited"
    assert ws.judge(LIVER, data).facts.header == ws.original_facts(LIVER).header


def test_the_unmutated_case_only_has_the_example_cts_known_spacing_finding(ws: Workspace) -> None:
    # the example CT is 3 mm, the v2 release 1.5 mm (tests/data/README.md); meta.csv is left out on purpose
    expected = [("GEOM_SPACING", CT, "mismatch"), ("META_MISSING", "meta.csv", "None")]
    assert finding_keys(ws.baseline_findings) == expected
    assert all(facts.corrupt is None for facts in ws.case.files.values())


@FUZZ
@given(rel=st.sampled_from(FILES), data=st.data())
def test_a_truncated_file_is_corrupt(ws: Workspace, rel: str, data: st.DataObject) -> None:
    original = ws.originals[rel]
    cut = data.draw(st.one_of(st.integers(0, 400), st.integers(0, len(original) - 1)), label="cut")
    assert_corrupt(ws.judge(rel, original[:cut]), rel)


REGIONS = {"gzip header": (0, 10), "deflate stream": (10, -8), "gzip trailer": (-8, 0)}


@FUZZ
@given(rel=st.sampled_from(FILES), region=st.sampled_from(sorted(REGIONS)), data=st.data())
def test_a_flipped_byte_is_corrupt_unless_the_bytes_the_quick_pass_reads_are_intact(
    ws: Workspace, rel: str, region: str, data: st.DataObject
) -> None:
    original = ws.originals[rel]
    start, end = (i % len(original) if i < 0 else i for i in REGIONS[region])
    end = end or len(original)
    # the header is encoded in the first few hundred compressed bytes: aim there often
    position = data.draw(st.one_of(st.integers(start, min(end, start + 400) - 1), st.integers(start, end - 1)),
                         label="at")
    mutated = bytearray(original)
    mutated[position] ^= data.draw(st.integers(1, 255), label="xor")
    outcome = ws.judge(rel, bytes(mutated))
    header, isize = decoded_header(bytes(mutated)), struct.unpack("<I", mutated[-4:])[0]
    if header is None:
        event("stream cannot give a header")
        assert_corrupt(outcome, rel)
    elif header[:HEADER_BYTES] == ws.inflated[rel][:HEADER_BYTES]:
        event(f"header intact, trailer size {'intact' if isize == ws.original_facts(rel).isize else 'changed'}")
        if isize == ws.original_facts(rel).isize:
            # e.g. the gzip MTIME or the CRC: invisible to headers and trailer sizes, left to a full decompression
            # (the trailer is kept as read, for --verify-cache: a changed CRC shows there only)
            assert replace(outcome.facts, trailer=None) == replace(ws.original_facts(rel), trailer=None)
            assert_unchanged(outcome, ws)
        else:
            assert_corrupt(outcome, rel)
    elif "FILE_CORRUPT" not in outcome.codes_at(rel):
        event("header changed, still readable")
        dims = struct.unpack("<8h", header[40:56])
        assert outcome.facts.header.shape == dims[1 : dims[0] + 1]
        assert outcome.facts.header.stream_bytes % ISIZE_MODULUS == isize


def _set(field: str, value: object) -> Callable[[Nifti1Header], None]:
    def edit(header: Nifti1Header) -> None:
        header[field] = value

    return edit


def _original_shape(ws: Workspace) -> tuple[int, ...]:
    return ws.original_facts(CT).header.shape


PRIME_FACTORS = [2, 61, 101, 2, 3, 5]  # 122 x 101 x 30: shapes with the same voxel count keep the trailer size right


@st.composite
def same_size_dims(draw: st.DrawFn) -> list[int]:
    ndim = draw(st.integers(1, 5))
    buckets = draw(st.lists(st.integers(0, ndim - 1), min_size=len(PRIME_FACTORS), max_size=len(PRIME_FACTORS)))
    shape = [math.prod(f for f, b in zip(PRIME_FACTORS, buckets, strict=True) if b == axis) for axis in range(ndim)]
    return [ndim, *shape, *[1] * (7 - ndim)]


dims_strategy = st.one_of(
    same_size_dims().filter(lambda dims: max(dims) < 2**15),
    st.lists(st.integers(-(2**15), 2**15 - 1), min_size=8, max_size=8),
    st.just([3, 2**15 - 1, 2**15 - 1, 2**15 - 1, 1, 1, 1, 1]),
)


@FUZZ
@given(rel=st.sampled_from(FILES), dims=dims_strategy)
def test_edited_dims_are_corrupt_unless_the_trailer_agrees_and_then_judged_as_a_grid(
    ws: Workspace, rel: str, dims: list[int]
) -> None:
    outcome = ws.judge(rel, ws.with_header(rel, _set("dim", dims)))
    ndim, itemsize = dims[0], (2 if rel == CT else 1)
    shape = tuple(dims[1 : ndim + 1]) if 1 <= ndim <= 7 else ()
    voxels = math.prod(shape) if shape and min(shape) >= 1 else 0
    trailer_agrees = (352 + voxels * itemsize) % ISIZE_MODULUS == ws.original_facts(rel).isize
    if not voxels or voxels > ws.spec.geometry.max_voxels or not trailer_agrees:
        assert_corrupt(outcome, rel)
        return
    event("same voxel count: readable")
    assert "FILE_CORRUPT" not in outcome.codes_at(rel)
    if shape[:3] == _original_shape(ws) and all(n == 1 for n in shape[3:]):
        assert_unchanged(outcome, ws)
    elif rel == CT:
        assert outcome.paths_with("GEOM_SHAPE_MISMATCH") == ws.masks
    else:
        assert outcome.paths_with("GEOM_SHAPE_MISMATCH") == {rel}


@FUZZ
@given(rel=st.sampled_from(FILES),
       code=st.one_of(st.sampled_from([2, 4, 256, 512]),  # the types of the same item sizes as uint8 and int16
                      st.sampled_from(sorted(data_type_codes.value_set())), st.integers(-(2**15), 2**15 - 1)))
def test_an_edited_datatype_is_corrupt_unless_the_trailer_agrees_and_then_judged_by_its_type(
    ws: Workspace, rel: str, code: int
) -> None:
    outcome = ws.judge(rel, ws.with_header(rel, _set("datatype", code)))
    facts = ws.original_facts(rel)
    if code not in data_type_codes.value_set():
        assert_corrupt(outcome, rel)
        return
    dtype = data_type_codes.dtype[code]
    if (352 + math.prod(facts.header.shape) * dtype.itemsize) % ISIZE_MODULUS != facts.isize:
        assert_corrupt(outcome, rel)
        return
    event(f"readable as {dtype.name}")
    allowed, dtype_code = (ws.spec.image_dtypes, "IMAGE_DTYPE") if rel == CT else (ws.spec.mask_dtypes, "LABEL_DTYPE")
    assert (dtype_code in outcome.codes_at(rel)) == (dtype.name not in allowed)
    assert "FILE_CORRUPT" not in outcome.codes_at(rel)


@FUZZ
@given(rel=st.sampled_from(FILES), bitpix=st.integers(-(2**15), 2**15 - 1))
def test_an_edited_bitpix_changes_nothing_because_readers_go_by_datatype(ws: Workspace, rel: str, bitpix: int) -> None:
    outcome = ws.judge(rel, ws.with_header(rel, _set("bitpix", bitpix)))
    assert outcome.facts.header == ws.original_facts(rel).header
    assert_unchanged(outcome, ws)


near_release_spacing = st.lists(st.sampled_from([1.5, 1.505, 1.495, 1.52, 3.0]), min_size=3, max_size=3).map(
    lambda zooms: [1.0, *zooms, 1.0, 1.0, 1.0, 1.0])


def itk_affine_with_pixdim(affine: np.ndarray, pixdim: list[float]) -> np.ndarray:
    """Where ITK puts a grid whose sform is `affine`: the sform's unit columns times pixdim as ITK reads it (float32;
    0 or not a number is 1; a negative size flips its axis)."""
    sizes = [float(np.float32(z)) for z in pixdim[1:4]]
    sizes = [1.0 if z == 0 or not math.isfinite(z) else z for z in sizes]
    placed = affine.copy()
    placed[:3, :3] = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0) * sizes
    return placed


@FUZZ
@given(pixdim=st.one_of(near_release_spacing, st.lists(float32s, min_size=8, max_size=8)))
def test_edited_voxel_sizes_of_the_image_are_judged_as_its_spacing_and_by_where_itk_puts_it(
    ws: Workspace, pixdim: list[float]
) -> None:
    outcome = ws.judge(CT, ws.with_header(CT, _set("pixdim", pixdim)))
    spacing = [round(float(np.float32(z)), 6) for z in pixdim[1:4]]
    off_spacing = not all(abs(z - 1.5) <= ws.spec.geometry.spacing_tolerance for z in spacing)
    affine = np.array(ws.original_facts(CT).header.affine)
    itk_apart = corner_deviation(itk_affine_with_pixdim(affine, pixdim), affine, _original_shape(ws)) > 1e-3
    event(f"spacing {'off' if off_spacing else 'right'}, ITK {'apart' if itk_apart else 'with nibabel'}")
    assert ("GEOM_SPACING" in outcome.codes_at(CT)) == off_spacing
    assert outcome.subcodes_at(CT, "GEOM_AFFINE_INVALID") == ({"readers_disagree"} if itk_apart else set())
    assert outcome.codes_at(CT) - {"GEOM_SPACING", "GEOM_AFFINE_INVALID"} == set()
    # the masks follow the sform, as nibabel reads the image: compared under nibabel, none is off
    assert outcome.paths_with("GEOM_AFFINE_MISMATCH") == set()


@pytest.mark.parametrize("zoom", [1.5, float("nan"), -3.0])
def test_edited_voxel_sizes_of_a_mask_misplace_it_for_itk_alone(ws: Workspace, zoom: float) -> None:
    # ITK sizes voxels by pixdim, nibabel by the sform's columns (3 mm in the example): only ITK moves the mask
    outcome = ws.judge(LIVER, ws.with_header(LIVER, _set("pixdim", [1.0, zoom, zoom, zoom, 1.0, 1.0, 1.0, 1.0])))
    assert outcome.facts.header.zooms[0] == pytest.approx(zoom, nan_ok=True)
    assert outcome.codes_at(LIVER) == {"GEOM_AFFINE_MISMATCH"}
    assert outcome.subcodes_at(LIVER, "GEOM_AFFINE_MISMATCH") == {"itk"}


def test_a_mask_pixdim_equal_to_its_sform_columns_changes_nothing(ws: Workspace) -> None:
    outcome = ws.judge(LIVER, ws.with_header(LIVER, _set("pixdim", [1.0, 3.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0])))
    assert_unchanged(outcome, ws)


@FUZZ
@given(rel=st.sampled_from(FILES), offset=st.one_of(float32s, st.floats(340, 400, width=32), st.just(352.0)))
def test_an_edited_vox_offset_is_corrupt_unless_it_is_where_the_data_starts(
    ws: Workspace, rel: str, offset: float
) -> None:
    outcome = ws.judge(rel, ws.with_header(rel, _set("vox_offset", offset)))
    if math.isfinite(offset) and 352 <= offset < 353:
        event("data offset unchanged")
        assert_unchanged(outcome, ws)
    else:
        # inside the header (nibabel refuses it, or reads the header as voxels at 0), past the data, or not a number
        assert_corrupt(outcome, rel)


@st.composite
def srows(draw: st.DrawFn, original: np.ndarray) -> np.ndarray:
    """Three sform rows: anything, or the original moved by amounts around the affine tolerance."""
    if draw(st.integers(0, 2)) == 0:
        return np.array(draw(st.lists(float32s, min_size=12, max_size=12)), dtype=np.float32).reshape(3, 4)
    noise = draw(st.lists(st.floats(-0.5, 0.5, width=32), min_size=12, max_size=12))
    scale = draw(st.sampled_from([1e-7, 1e-6, 1e-5, 1e-4, 1e-2, 1.0]))
    return (original[:3] + np.array(noise).reshape(3, 4) * scale).astype(np.float32)


@FUZZ
@given(rel=st.sampled_from(FILES), code=st.one_of(st.integers(0, 4), st.integers(-(2**15), 2**15 - 1)), data=st.data())
def test_an_edited_sform_is_judged_against_the_image_grid(
    ws: Workspace, rel: str, code: int, data: st.DataObject
) -> None:
    ct_affine = np.array(ws.original_facts(CT).header.affine)
    rows = data.draw(srows(ct_affine), label="srows")

    def edit(header: Nifti1Header) -> None:
        header["sform_code"] = code
        header["srow_x"], header["srow_y"], header["srow_z"] = rows

    outcome = ws.judge(rel, ws.with_header(rel, edit))
    assert outcome.paths_with("FILE_CORRUPT") == set()
    header = Nifti1Header(ws.inflated[rel][:HEADER_BYTES], check=False)
    # nibabel sets a code outside NIfTI's 1 to 5 to 0 before it chooses (qform_code is 0 in these files)
    affine = np.vstack([rows.astype(np.float64), [0, 0, 0, 1]]) if 1 <= code <= 5 else header.get_base_affine()
    deviation = corner_deviation(affine, ct_affine, _original_shape(ws))
    if abs(deviation - ws.spec.geometry.affine_tolerance_mm) < 1e-9:
        return  # on the tolerance itself, rounding decides
    moved = deviation > ws.spec.geometry.affine_tolerance_mm
    event(f"{'moved' if moved else 'within tolerance'}")
    if rel == CT:
        problems = outcome.subcodes_at(CT, "GEOM_AFFINE_INVALID")
        if code == 0:  # and qform_code is 0 in these files
            assert "no_transform" in problems
        elif code > 0 and not np.all(np.isfinite(rows)):
            assert problems == {"non_finite"}
        elif code > 0 and np.linalg.det(rows[:, :3].astype(np.float64)) == 0:
            assert problems == {"singular"}
        # an image affine that means nothing is one finding: the masks are not compared with it
        compared = not problems & set(UNUSABLE_AFFINE)
        assert outcome.paths_with("GEOM_AFFINE_MISMATCH") == (ws.masks if moved and compared else set())
    else:
        assert outcome.paths_with("GEOM_AFFINE_MISMATCH") == ({rel} if moved else set())
        assert (code == 0 and moved) == ("no_transform" in outcome.subcodes_at(rel, "GEOM_AFFINE_INVALID"))


def quaternion_affine(b: float, c: float, d: float, offset: np.ndarray, zooms: np.ndarray) -> np.ndarray:
    """The NIfTI-1 qform from its quaternion (standard's formula, qfac 1)."""
    a = math.sqrt(max(0.0, 1.0 - (b * b + c * c + d * d)))
    rotation = np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ])
    affine = np.eye(4)
    affine[:3, :3] = rotation * zooms
    affine[:3, 3] = offset
    return affine


def _set_qform(code: int, bcd: list[float], offset: np.ndarray) -> Callable[[Nifti1Header], None]:
    def edit(header: Nifti1Header) -> None:
        header["qform_code"] = code
        header["quatern_b"], header["quatern_c"], header["quatern_d"] = bcd
        header["qoffset_x"], header["qoffset_y"], header["qoffset_z"] = offset

    return edit


quaternion_parts = st.one_of(st.floats(-0.5, 0.5, width=32), st.floats(-1, 1, width=32), st.just(0.0))


@FUZZ
@given(code=st.integers(1, 4), bcd=st.lists(quaternion_parts, min_size=3, max_size=3),
       shift=st.lists(st.one_of(st.floats(-(2**-13), 2**-13, width=32), float32s), min_size=3, max_size=3))
def test_an_edited_qform_of_the_image_is_checked_against_its_sform(
    ws: Workspace, code: int, bcd: list[float], shift: list[float]
) -> None:
    ct_affine = np.array(ws.original_facts(CT).header.affine)
    with np.errstate(over="ignore"):
        offset = (ct_affine[:3, 3] + np.array(shift)).astype(np.float32)
    outcome = ws.judge(CT, ws.with_header(CT, _set_qform(code, bcd, offset)))
    assert outcome.paths_with("FILE_CORRUPT") == set()
    squared = sum(float(np.float32(v)) ** 2 for v in bcd)
    if abs(squared - 1.0) < 1e-5:
        return  # nibabel's threshold for w = 0 decides
    if squared > 1.0:
        event("no rotation")
        assert "sform_qform" not in outcome.subcodes_at(CT, "GEOM_AFFINE_INVALID")  # no qform to compare
        return
    b, c, d = (float(np.float32(v)) for v in bcd)
    qform = quaternion_affine(b, c, d, offset.astype(np.float64), np.array(ws.original_facts(CT).header.zooms))
    deviation = corner_deviation(qform, ct_affine, _original_shape(ws))
    if abs(deviation - ws.spec.geometry.affine_tolerance_mm) < 1e-6:
        return
    disagree = deviation > ws.spec.geometry.affine_tolerance_mm
    event(f"qform {'disagrees' if disagree else 'agrees'}")
    assert ("sform_qform" in outcome.subcodes_at(CT, "GEOM_AFFINE_INVALID")) == disagree


def test_a_mask_qform_that_itk_reads_misplaces_the_mask_for_itk_alone(ws: Workspace) -> None:
    # sform_code 2 with a differing qform (code 1): ITK reads the qform, nibabel the sform that matches the image
    offset = np.array([10.0, 20.0, 30.0], dtype=np.float32)
    outcome = ws.judge(LIVER, ws.with_header(LIVER, _set_qform(1, [0.5, 0.5, 0.5], offset)))
    assert outcome.facts.header.qform is not None
    assert outcome.subcodes_at(LIVER, "GEOM_AFFINE_MISMATCH") == {"itk"}
    assert outcome.subcodes_at(LIVER, "GEOM_AFFINE_INVALID") == {"sform_qform"}


@FUZZ
@given(rel=st.sampled_from(FILES), slope=st.one_of(float32s, st.sampled_from([1.0, 0.0])),
       inter=st.one_of(float32s, st.just(0.0)))
def test_edited_scaling_makes_a_mask_load_other_values_or_is_refused(
    ws: Workspace, rel: str, slope: float, inter: float
) -> None:
    def edit(header: Nifti1Header) -> None:
        header["scl_slope"], header["scl_inter"] = slope, inter

    outcome = ws.judge(rel, ws.with_header(rel, edit))
    slope, inter = float(np.float32(slope)), float(np.float32(inter))
    if slope == 0 or not math.isfinite(slope):
        assert_unchanged(outcome, ws)  # the NIfTI rule: no scaling
    elif not math.isfinite(inter):
        assert_corrupt(outcome, rel)  # nibabel refuses to load it: "valid slope but invalid intercept"
    elif rel == CT:
        assert_unchanged(outcome, ws)
    else:
        rescaled = (inter, slope + inter) != (0.0, 1.0)
        event(f"mask {'rescaled' if rescaled else 'loads 0 and 1'}")
        assert ("scaling" in outcome.subcodes_at(rel, "LABEL_DTYPE")) == rescaled


@FUZZ
@given(rel=st.sampled_from(FILES),
       magic=st.one_of(st.sampled_from([b"n+1\0", b"ni1\0", b"n+2\0", b"ni2\0", b"n+1 ", b"\0n+1"]),
                       st.binary(min_size=4, max_size=4)))
def test_an_edited_magic_is_corrupt_unless_it_names_nifti1(ws: Workspace, rel: str, magic: bytes) -> None:
    outcome = ws.judge(rel, ws.with_header(rel, _set("magic", magic)))
    if magic.rstrip(b"\0") in (b"n+1", b"ni1"):
        assert_unchanged(outcome, ws)  # nibabel reads 'ni1' in a .nii as 'n+1'
    else:
        assert_corrupt(outcome, rel)  # including NIfTI-2 magic on a 348-byte header, which nibabel cannot open


@FUZZ
@given(rel=st.sampled_from(FILES),
       size=st.one_of(st.sampled_from([540, 0, -HEADER_BYTES,
                                       int.from_bytes(struct.pack(">i", HEADER_BYTES), "little")]),
                      st.integers(-(2**31), 2**31 - 1).filter(lambda n: n != HEADER_BYTES)))
def test_an_edited_sizeof_hdr_is_corrupt(ws: Workspace, rel: str, size: int) -> None:
    assert_corrupt(ws.judge(rel, ws.with_header(rel, _set("sizeof_hdr", size))), rel)


def test_a_header_declaring_a_gigantic_volume_is_judged_without_allocating_it(ws: Workspace) -> None:
    def edit(header: Nifti1Header) -> None:
        header["dim"] = [7, *[2**15 - 1] * 7]
        header["datatype"] = 1792  # complex128: 16 bytes a voxel
        header["vox_offset"] = 3e38

    outcome = ws.judge(CT, ws.with_header(CT, edit))
    assert outcome.peak_bytes < 1 << 20
    assert_corrupt(outcome, CT)


@pytest.mark.parametrize("seed", range(6))
def test_a_release_with_one_damaged_file_fails_on_that_file_only(example_root: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / "release"
    shutil.copytree(example_root, root, copy_function=shutil.copyfile)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    rel = rng.choice([CT, LIVER, SKULL, f"{CASE}/segmentations/heart.nii.gz"])
    data = bytearray((root / rel).read_bytes())
    damage = ["truncate", "garbage after the gzip header", "trailer size"][seed % 3]
    if damage == "truncate":
        data = data[: rng.randrange(len(data))]
    elif damage == "garbage after the gzip header":
        data[10:] = rng.randbytes(len(data) - 10)
    else:
        data[-1 - rng.randrange(4)] ^= 1 << rng.randrange(8)
    (root / rel).write_bytes(bytes(data))
    report = run_check(root, load_spec("totalsegmentator-v2"), "fuzz", mode="quick", jobs=1, subset=True)
    assert not report.summary.passed
    corrupt = [f for f in report.findings if f.code == "FILE_CORRUPT"]
    assert [(f.path, f.case) for f in corrupt] == [(rel, CASE)], damage
    others = {(f.code, f.path) for f in report.findings} - {("FILE_CORRUPT", rel)}
    assert others == ({("GEOM_SPACING", CT)} if rel != CT else set())
