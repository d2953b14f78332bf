"""Reading NIfTI facts from headers and gzip trailers: real files from the example release and files nibabel writes."""

from __future__ import annotations

import gzip
import shutil
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from qa.scan.facts import Problem
from qa.scan.nifti import read_file_facts
from qa.source.fs import FolderSource


def _example_ct(example_root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ct.nii.gz"
    shutil.copyfile(example_root / "s0000" / "ct.nii.gz", copy)
    return copy


def _facts(path: Path):
    return read_file_facts(FolderSource(path.parent), path.name)


def _write(image: nib.Nifti1Image, path: Path) -> Path:
    nib.save(image, path)
    return path


def _grid(dtype: type = np.int16) -> tuple[np.ndarray, np.ndarray]:
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    affine[:3, 3] = [-90.0, -120.0, 33.0]
    return np.arange(7 * 6 * 5, dtype=dtype).reshape(7, 6, 5), affine


def test_example_ct_header_facts_are_those_nibabel_reads(example_root: Path, tmp_path: Path) -> None:
    path = _example_ct(example_root, tmp_path)
    facts = _facts(path)
    reference = nib.load(path)
    assert facts.corrupt is None
    header = facts.header
    assert header.version == 1
    assert header.shape == (122, 101, 30) == reference.shape
    assert header.dtype == "int16"
    assert header.zooms == (3.0, 3.0, 3.0)
    assert (header.sform_code, header.qform_code) == (2, 0)
    assert header.qform is None
    np.testing.assert_allclose(header.affine, reference.affine)
    assert header.data_offset == 352
    assert header.data_bytes == 122 * 101 * 30 * 2


def test_example_ct_trailer_size_equals_what_its_header_declares(example_root: Path, tmp_path: Path) -> None:
    path = _example_ct(example_root, tmp_path)
    facts = _facts(path)
    assert facts.size == path.stat().st_size
    assert facts.isize == len(gzip.decompress(path.read_bytes()))
    assert facts.isize == facts.header.stream_bytes


def test_example_mask_is_uint8_on_the_ct_grid(example_root: Path) -> None:
    mask = read_file_facts(FolderSource(example_root), "s0000/segmentations/liver.nii.gz")
    ct = read_file_facts(FolderSource(example_root), "s0000/ct.nii.gz")
    assert mask.corrupt is None
    assert mask.path == "s0000/segmentations/liver.nii.gz"
    assert mask.header.dtype == "uint8"
    assert mask.header.shape == ct.header.shape
    assert mask.header.affine == ct.header.affine
    assert mask.isize == mask.header.stream_bytes


def test_nifti2_file_is_read_as_version_2(tmp_path: Path) -> None:
    data, affine = _grid()
    path = _write(nib.Nifti2Image(data, affine), tmp_path / "two.nii.gz")
    facts = _facts(path)
    assert facts.corrupt is None
    assert facts.header.version == 2
    assert facts.header.shape == (7, 6, 5)
    assert facts.header.data_offset == 544
    assert facts.isize == len(gzip.decompress(path.read_bytes())) == facts.header.stream_bytes
    np.testing.assert_allclose(facts.header.affine, affine)


def test_big_endian_file_keeps_its_byte_order_and_values(tmp_path: Path) -> None:
    data, affine = _grid()
    image = nib.Nifti1Image(data, affine, nib.Nifti1Header(endianness=">"))
    image.set_data_dtype(np.int16)
    path = _write(image, tmp_path / "big.nii.gz")
    assert nib.load(path).header.endianness == ">"
    facts = _facts(path)
    assert facts.corrupt is None
    assert facts.header.byteorder == ">"
    assert facts.header.dtype == "int16"
    assert facts.header.shape == (7, 6, 5)
    assert facts.header.zooms == (1.5, 1.5, 1.5)
    np.testing.assert_allclose(facts.header.affine, affine)
    assert facts.isize == facts.header.stream_bytes


def test_uncompressed_nii_has_a_header_and_no_trailer(tmp_path: Path) -> None:
    data, affine = _grid(np.uint8)
    path = _write(nib.Nifti1Image(data, affine), tmp_path / "plain.nii")
    facts = _facts(path)
    assert facts.corrupt is None
    assert facts.isize is None
    assert facts.header.dtype == "uint8"
    assert facts.header.shape == (7, 6, 5)
    assert facts.size == path.stat().st_size == facts.header.stream_bytes


def test_empty_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(b"")
    facts = _facts(path)
    assert facts.header is None
    assert facts.corrupt == Problem("empty", "empty file")


def test_file_named_nii_gz_without_gzip_magic_is_corrupt(example_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "not-gzip.nii.gz"
    path.write_bytes(gzip.decompress((example_root / "s0000" / "ct.nii.gz").read_bytes()))
    facts = _facts(path)
    assert facts.header is None
    assert "not gzip" in facts.corrupt.reason


def test_gzip_shorter_than_its_own_framing_is_corrupt(example_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "short.nii.gz"
    path.write_bytes((example_root / "s0000" / "ct.nii.gz").read_bytes()[:12])
    facts = _facts(path)
    assert facts.header is None
    assert "truncated gzip" in facts.corrupt.reason


def test_compressed_file_cut_inside_the_header_is_truncated(example_root: Path, tmp_path: Path) -> None:
    raw = (example_root / "s0000" / "ct.nii.gz").read_bytes()
    path = tmp_path / "cut.nii.gz"
    # 40 compressed bytes hold the gzip header and the start of the first block's code tables: no full NIfTI header.
    path.write_bytes(raw[:40])
    facts = _facts(path)
    assert facts.header is None
    assert "truncated" in facts.corrupt.reason


def test_uncompressed_file_cut_inside_the_header_is_corrupt(example_root: Path, tmp_path: Path) -> None:
    nii = gzip.decompress((example_root / "s0000" / "ct.nii.gz").read_bytes())
    path = tmp_path / "cut.nii"
    path.write_bytes(nii[:200])
    facts = _facts(path)
    assert facts.header is None
    assert "200 bytes" in facts.corrupt.reason
    assert "348-byte header" in facts.corrupt.reason


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(bytes(range(8)) + b"\xff" * 4000, id="gzip-header-fields-wrong"),
        pytest.param(bytes([8, 0, 0, 0, 0, 0, 0, 3]) + b"\xff" * 4000, id="deflate-block-type-invalid"),
    ],
)
def test_gzip_whose_stream_is_garbage_after_the_magic_is_corrupt(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "garbage.nii.gz"
    path.write_bytes(b"\x1f\x8b" + garbage)
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress(path.read_bytes())
    facts = _facts(path)
    assert facts.header is None
    assert "gzip stream broken" in facts.corrupt.reason


def test_gzip_of_something_that_is_not_nifti_is_a_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "text.nii.gz"
    path.write_bytes(gzip.compress(b"image_id;age\n" * 100))
    facts = _facts(path)
    assert facts.header is None
    assert "bad NIfTI header" in facts.corrupt.reason
    assert "sizeof_hdr" in facts.corrupt.reason


def test_header_declaring_a_gigantic_volume_is_read_without_reading_the_volume(tmp_path: Path) -> None:
    data, affine = _grid(np.uint8)
    header = nib.Nifti1Header()
    header.set_data_dtype(np.float64)
    header.set_data_shape((30000, 30000, 30000))
    header["vox_offset"] = 352
    nii = header.binaryblock + b"\0" * 4 + data.tobytes()
    path = tmp_path / "huge.nii.gz"
    path.write_bytes(gzip.compress(nii))
    facts = _facts(path)
    assert facts.header.shape == (30000, 30000, 30000)
    assert facts.header.data_bytes == 30000**3 * 8
    assert facts.isize == len(nii) != facts.header.stream_bytes


@pytest.mark.parametrize("offset", [0.0, 100.0, -352.0, float("nan"), float("inf")])
def test_vox_offset_inside_the_header_or_not_a_number_is_corrupt(
    example_root: Path, tmp_path: Path, offset: float
) -> None:
    nii = bytearray(gzip.decompress((example_root / "s0000" / "ct.nii.gz").read_bytes()))
    header = nib.Nifti1Header(bytes(nii[:348]), check=False)
    header["vox_offset"] = offset
    nii[:348] = header.binaryblock
    path = tmp_path / "offset.nii.gz"
    path.write_bytes(gzip.compress(bytes(nii), compresslevel=1))
    facts = _facts(path)
    assert facts.header is None
    assert "vox_offset" in facts.corrupt.reason


def test_vox_offset_past_the_header_moves_where_the_data_starts(example_root: Path, tmp_path: Path) -> None:
    data, affine = _grid()
    image = nib.Nifti1Image(data, affine)
    image.header.set_data_offset(1024)
    path = _write(image, tmp_path / "far.nii.gz")
    assert nib.load(path).dataobj.offset == 1024
    facts = _facts(path)
    assert facts.header.data_offset == 1024
    assert facts.isize == facts.header.stream_bytes == 1024 + data.nbytes


@pytest.mark.parametrize("magic", [b"n+2", b"ni2"])
def test_nifti2_magic_on_a_nifti1_header_is_corrupt(example_root: Path, tmp_path: Path, magic: bytes) -> None:
    nii = bytearray(gzip.decompress((example_root / "s0000" / "ct.nii.gz").read_bytes()))
    nii[344:348] = magic + b"\0"
    path = tmp_path / "mixed.nii"
    path.write_bytes(bytes(nii))
    with pytest.raises(nib.filebasedimages.ImageFileError):
        nib.load(path)
    facts = _facts(path)
    assert facts.header is None
    assert "magic" in facts.corrupt.reason


def test_symbolic_link_leaving_the_release_is_not_followed(example_root: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.mkdir()
    link = release / "ct.nii.gz"
    link.symlink_to(example_root / "s0000" / "ct.nii.gz")
    facts = read_file_facts(FolderSource(release), "ct.nii.gz")
    assert facts.header is None
    assert "leaving the release root" in facts.corrupt.reason


def test_reading_facts_does_not_write_or_touch_the_file(example_root: Path, tmp_path: Path) -> None:
    path = _example_ct(example_root, tmp_path)
    before = path.stat()
    content = path.read_bytes()
    _facts(path)
    after = path.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert path.read_bytes() == content


def test_a_wrong_dim0_is_reported_with_the_headers_own_numbers(example_root: Path, tmp_path: Path) -> None:
    """A wrong dim[0] must not make the header be read in the other byte order (and report dim[0] as 2048)."""
    image = nib.load(example_root / "s0000" / "ct.nii.gz")
    header = image.header.copy()
    header["dim"][0] = 8
    path = tmp_path / "ct.nii.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(header.binaryblock + b"\0" * 4 + np.asarray(image.dataobj).tobytes(order="F"))
    facts = _facts(path)
    assert facts.corrupt.kind == "bad_header"
    assert "dim[0] is 8," in facts.corrupt.reason


def _nifti_stream(path: Path) -> bytes:
    data, affine = _grid()
    _write(nib.Nifti1Image(data, affine), path)
    return gzip.decompress(path.read_bytes())


def test_a_valid_multi_member_file_is_read_through_and_confirmed(tmp_path: Path) -> None:
    """The last trailer holds only the last member's size; reading the members confirms the header's size."""
    path = tmp_path / "members.nii.gz"
    nii = _nifti_stream(path)
    path.write_bytes(gzip.compress(nii[:400]) + gzip.compress(nii[400:]))
    assert nib.load(path).get_fdata().shape == (7, 6, 5)
    facts = _facts(path)
    assert (facts.isize, facts.stream_error) == (len(nii), None)
    assert facts.problem(1 << 30, 1 << 30) is None


def test_a_truncated_file_says_where_its_stream_stops(tmp_path: Path) -> None:
    path = tmp_path / "cut.nii.gz"
    nii = _nifti_stream(path)
    raw = gzip.compress(nii, compresslevel=0)  # stored: the cut falls in the voxels, past the header
    path.write_bytes(raw[: len(raw) // 2 + 200])
    problem = _facts(path).problem(1 << 30, 1 << 30)
    assert problem.kind == "size_mismatch"
    assert "read through, truncated: the gzip stream stops after" in problem.reason


def test_a_header_declaring_more_than_the_file_can_hold_is_a_size_mismatch(tmp_path: Path) -> None:
    """A trailer agrees with a size modulo 2^32 only: 2^32 bytes more than the stream holds look right to it."""
    header = nib.Nifti1Header()
    header.set_data_dtype(np.float64)
    header.set_data_shape((1024, 1024, 512))  # 2^32 data bytes, within the default max_bytes
    header["vox_offset"] = 352
    path = tmp_path / "alias.nii.gz"
    path.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4))
    facts = _facts(path)
    assert facts.isize == facts.header.stream_bytes % (1 << 32)
    problem = facts.problem(1 << 30, 4 << 30)
    assert problem.kind == "size_mismatch" and "more than a" in problem.reason


def test_a_vox_offset_past_max_bytes_is_absurd_though_the_trailer_agrees(tmp_path: Path) -> None:
    path = tmp_path / "offset.nii.gz"
    nii = _nifti_stream(path)
    header = nib.Nifti1Header(nii[:348], check=False)
    header["vox_offset"] = 2**32 + 512  # over a stream whose data starts at 512: the same size modulo 2^32
    path.write_bytes(gzip.compress(header.binaryblock + nii[348:352].ljust(512 - 348, b"\0") + nii[352:]))
    with pytest.raises(Exception):  # noqa: B017 - nibabel fails in several ways on it
        np.asarray(nib.load(path).dataobj)
    facts = _facts(path)
    assert facts.isize == facts.header.stream_bytes % (1 << 32)
    problem = facts.problem(1 << 30, 4 << 30)
    assert problem.kind == "absurd_size" and "vox_offset 4294967808" in problem.reason


def test_a_header_split_over_gzip_members_is_read_across_them(tmp_path: Path) -> None:
    path = tmp_path / "split.nii.gz"
    nii = _nifti_stream(path)
    path.write_bytes(b"".join(gzip.compress(nii[i : i + 50]) for i in range(0, len(nii), 50)))
    assert _facts(path).header.shape == (7, 6, 5)


def test_empty_gzip_members_before_the_header_are_read_only_so_far(tmp_path: Path) -> None:
    path = tmp_path / "empty-members.nii.gz"
    nii = _nifti_stream(path)
    path.write_bytes(gzip.compress(b"") * 100_000 + gzip.compress(nii))
    facts = _facts(path)
    assert (facts.corrupt.kind, facts.corrupt.reason) == ("bad_header",
                                                          "no NIfTI header in the first 1048576 compressed bytes")
