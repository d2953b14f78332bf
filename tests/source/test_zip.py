"""ZipSource: a release read inside a zip archive as the folder it extracts to, and what it refuses to read (names
leaving the release, repeats, links, bombs, overlaps), on archives written by zipfile and damaged on purpose."""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from support import read_meta_csv

from qa.source.base import MemberMissing, SourceError
from qa.source.fs import FolderSource
from qa.source.zip import BOMB_FLOOR, WHOLE_BYTES, NotAZip, ZipSource
from qa.synth.archive import zip_release

CENTRAL = b"PK\x01\x02"


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory, example_root: Path) -> dict[tuple, Path]:
    """The real example release zipped every way a release is published: top folder or none, stored or deflated,
    ZIP64 or not."""
    folder = tmp_path_factory.mktemp("zips")
    made = {}
    for top in (None, "Totalsegmentator_dataset_v300"):
        for method in ("stored", "deflated"):
            for zip64 in (False, True):
                path = folder / f"{top}-{method}-{zip64}.zip"
                zip_release(example_root, path, top, method, zip64)
                made[top, method, zip64] = path
    return made


def all_entries(source) -> list:
    found, folders = [], [""]
    while folders:
        entries = source.entries(folders.pop())
        found += entries
        folders += [e.path for e in entries if e.kind == "dir"]
    return sorted(found, key=lambda e: e.path)


@pytest.mark.parametrize("top", [None, "Totalsegmentator_dataset_v300"])
@pytest.mark.parametrize("method", ["stored", "deflated"])
@pytest.mark.parametrize("zip64", [False, True])
def test_the_archive_shows_the_entries_and_bytes_of_the_extracted_folder(
    zips: dict, example_root: Path, top: str | None, method: str, zip64: bool
) -> None:
    source, folder = ZipSource(zips[top, method, zip64]), FolderSource(example_root)
    assert all_entries(source) == all_entries(folder)
    for entry in all_entries(folder):
        if entry.kind == "file":
            assert source.read(entry.path, 1 << 30) == folder.read(entry.path, 1 << 30)
            assert source.stat(entry.path).size == folder.stat(entry.path).size


@pytest.mark.parametrize("method", ["stored", "deflated"])
def test_byte_ranges_of_a_member_are_the_files(zips: dict, example_root: Path, method: str) -> None:
    """A NIfTI header from the start, the gzip trailer from the end, and the ranges between, in any order."""
    path = "s0000/ct.nii.gz"
    data = (example_root / path).read_bytes()
    with ZipSource(zips[None, method, False]).open(path) as reader:
        assert reader.size == len(data)
        for offset, length in [(0, 348), (len(data) - 8, 8), (1000, 5000), (10, 10), (len(data) - 3, 100)]:
            assert reader.read_at(offset, length) == data[offset : offset + length]


def test_a_deflated_member_larger_than_what_is_inflated_whole_is_streamed(tmp_path: Path) -> None:
    data = os.urandom(WHOLE_BYTES // 4) * 5  # compressible, so the archive stays small
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", data)
    with ZipSource(path).open("big.bin") as reader:
        assert reader.read_at(len(data) - 8, 8) == data[-8:]
        assert reader.read_at(3, 5) == data[3:8]


def test_the_directory_agrees_with_zipfiles(zips: dict) -> None:
    for path in zips.values():
        source = ZipSource(path)
        with zipfile.ZipFile(path) as archive:
            files = {i.filename.split("/", 1)[1] if source.layout.top_folder else i.filename: i
                     for i in archive.infolist() if not i.is_dir()}
        assert {p: source.stat(p).size for p in files} == {p: i.file_size for p, i in files.items()}
        assert source.layout.members == len(zipfile.ZipFile(path).infolist())


def test_the_layout_says_how_the_archive_is_made(zips: dict) -> None:
    layout = ZipSource(zips["Totalsegmentator_dataset_v300", "stored", True]).layout
    assert (layout.top_folder, layout.zip64, layout.directory, layout.truncation, layout.refused) == (
        "Totalsegmentator_dataset_v300", True, "read", None, [])
    assert layout.stored == layout.members and layout.deflated == 0
    plain = ZipSource(zips[None, "deflated", False]).layout
    folders = sum(i.is_dir() for i in zipfile.ZipFile(zips[None, "deflated", False]).infolist())  # stored by zipfile
    assert (plain.top_folder, plain.zip64, plain.deflated, plain.stored) == (None, False, plain.members - folders,
                                                                             folders)


def test_a_source_pickles_as_its_path_and_reopens_in_a_fresh_process(zips: dict, example_root: Path) -> None:
    source = ZipSource(zips[None, "deflated", True])
    assert len(pickle.dumps(source)) < 500
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        read = pool.apply_async(read_meta_csv, (source,)).get(timeout=120)
    assert read == (example_root / "meta.csv").read_bytes()


def write(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_leftovers_beside_a_top_folder_stay_at_the_release_root(tmp_path: Path) -> None:
    path = write(tmp_path / "mac.zip", {"Top/meta.csv": b"x", "Top/s0000/ct.nii.gz": b"y",
                                        "__MACOSX/Top/._meta.csv": b"z", "Top/s0000/._ct.nii.gz": b"w"})
    source = ZipSource(path)
    assert source.layout.top_folder == "Top"
    assert [(e.path, e.kind) for e in source.entries("")] == [("__MACOSX", "dir"), ("meta.csv", "file"),
                                                              ("s0000", "dir")]
    assert [e.path for e in source.entries("s0000")] == ["s0000/._ct.nii.gz", "s0000/ct.nii.gz"]


def test_members_at_the_root_and_in_a_folder_keep_their_paths(tmp_path: Path) -> None:
    source = ZipSource(write(tmp_path / "one.zip", {"only/s0000/ct.nii.gz": b"y", "meta.csv": b"x"}))
    assert source.layout.top_folder is None
    assert [e.path for e in source.entries("only/s0000")] == ["only/s0000/ct.nii.gz"]


def test_members_that_all_lie_in_one_folder_are_read_from_inside_it_unless_it_is_a_case(tmp_path: Path) -> None:
    """An interrupted download whose first case alone arrived is not a release inside that case's folder."""
    path = write(tmp_path / "case.zip", {"s0000/ct.nii.gz": b"y", "s0000/segmentations/a.nii.gz": b"z"})
    inside = ZipSource(path)
    assert (inside.layout.top_folder, [e.path for e in inside.entries("")]) == ("s0000", ["ct.nii.gz", "segmentations"])
    case = ZipSource(path, case_pattern=r"^s\d{4}$")
    assert (case.layout.top_folder, [e.path for e in case.entries("")]) == (None, ["s0000"])


def test_missing_members_and_folders_are_told_apart(tmp_path: Path) -> None:
    source = ZipSource(write(tmp_path / "a.zip", {"meta.csv": b"x", "s0000/ct.nii.gz": b"y"}))
    with pytest.raises(MemberMissing):
        source.open("s0000/none.nii.gz")
    with pytest.raises(SourceError, match="not a regular file"):
        source.open("s0000")
    assert source.entries("nowhere") == [] and source.entries("s0000/ct.nii.gz") == []


def link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def test_hostile_names_are_refused_and_never_in_the_release(tmp_path: Path) -> None:
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.csv", b"x")
        archive.writestr("/etc/absolute.txt", b"a")
        archive.writestr("C:/windows/absolute.txt", b"a")
        archive.writestr("s0000/../../parent.txt", b"p")
        archive.writestr("s0000\\..\\..\\backslash.txt", b"p")
        archive.writestr(*link("s0000/link.nii.gz", "/etc/passwd"))
        archive.writestr("s0000/ct.nii.gz", b"first")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("s0000/ct.nii.gz", b"second")
        archive.writestr("s0000/segmentations", b"a file where a folder is")
        archive.writestr("s0000/segmentations/liver.nii.gz", b"m")
    source = ZipSource(path)
    refused = {(r.kind, r.name, r.path) for r in source.layout.refused}
    assert refused == {("absolute", "/etc/absolute.txt", None), ("absolute", "C:/windows/absolute.txt", None),
                       ("parent", "s0000/../../parent.txt", None), ("parent", "s0000\\..\\..\\backslash.txt", None),
                       ("duplicate", "s0000/ct.nii.gz", "s0000/ct.nii.gz"),
                       ("duplicate", "s0000/segmentations", "s0000/segmentations")}
    assert [(e.path, e.kind) for e in all_entries(source)] == [
        ("meta.csv", "file"), ("s0000", "dir"), ("s0000/ct.nii.gz", "file"), ("s0000/link.nii.gz", "symlink"),
        ("s0000/segmentations", "dir"), ("s0000/segmentations/liver.nii.gz", "file")]
    for path, reason in [("s0000/ct.nii.gz", "2 members of this name"),
                         ("s0000/link.nii.gz", "links in an archive are never followed")]:
        for attempt, args in ((source.open, (path,)), (source.read, (path, 100)), (source.stat, (path,))):
            with pytest.raises(SourceError, match=reason):
                attempt(*args)


def central_entry(data: bytes, name: str) -> int:
    """Where the central directory entry of a member starts."""
    at = data.rfind(CENTRAL + b"", 0, data.rfind(name.encode()))
    assert struct.unpack_from("<H", data, at + 28)[0] == len(name.encode())
    return at


def patch(path: Path, at: int, value: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[at : at + len(value)] = value
    path.write_bytes(bytes(data))


def test_a_member_declaring_an_absurd_size_is_a_bomb_never_inflated(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.zip", {"meta.csv": b"x", "s0000/ct.nii.gz": bytes(1 << 20)})
    at = central_entry(path.read_bytes(), "s0000/ct.nii.gz")
    patch(path, at + 24, struct.pack("<I", 4_000_000_000))  # the uncompressed size the directory declares
    source = ZipSource(path)
    (refused,) = source.layout.refused
    assert (refused.kind, refused.path) == ("bomb", "s0000/ct.nii.gz")
    assert "times as many" in refused.reason
    with pytest.raises(SourceError, match="bomb|times as many"):
        source.open("s0000/ct.nii.gz")


def test_a_member_inflating_past_its_declared_size_stops_there(tmp_path: Path) -> None:
    """A bomb that lies small: inflating is bounded by what the directory declares, never by what the stream makes."""
    path = write(tmp_path / "liar.zip", {"meta.csv": b"x", "s0000/ct.nii.gz": bytes(BOMB_FLOOR // 64)})
    at = central_entry(path.read_bytes(), "s0000/ct.nii.gz")
    patch(path, at + 24, struct.pack("<I", 1000))
    source = ZipSource(path)
    assert source.layout.refused == []
    with pytest.raises(SourceError, match="more than the 1,000 bytes it declares"):
        source.read("s0000/ct.nii.gz", 1 << 30)
    with source.open("s0000/ct.nii.gz") as reader, pytest.raises(SourceError, match="more than the 1,000 bytes"):
        reader.read_at(990, 10)


def test_members_sharing_one_stream_are_refused_as_overlapping(tmp_path: Path) -> None:
    path = tmp_path / "overlap.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", b"a" * 1000)
        archive.writestr("b.txt", b"b" * 1000)
        first = archive.getinfo("a.txt")
        twin = zipfile.ZipInfo("c.txt", first.date_time)
        for attribute in ("compress_type", "CRC", "compress_size", "file_size", "header_offset"):
            setattr(twin, attribute, getattr(first, attribute))
        archive.filelist.append(twin)
    source = ZipSource(path)
    assert sorted((r.kind, r.path) for r in source.layout.refused) == [("overlap", "a.txt"), ("overlap", "c.txt")]
    assert source.read("b.txt", 2000) == b"b" * 1000


def test_a_damaged_member_fails_its_zip_crc_when_read_whole(tmp_path: Path) -> None:
    path = write(tmp_path / "crc.zip", {"meta.csv": b"x", "s0000/ct.nii.gz": b"0123456789" * 100}, zipfile.ZIP_STORED)
    data = path.read_bytes()
    patch(path, data.index(b"0123456789") + 500, b"X")
    source = ZipSource(path)
    with source.open("s0000/ct.nii.gz") as reader:
        assert reader.read_at(500, 1) == b"X"  # byte ranges are what the archive holds
    with pytest.raises(SourceError, match="zip CRC32 mismatch"):
        source.read("s0000/ct.nii.gz", 1 << 20)


def test_members_it_cannot_read_say_why(tmp_path: Path) -> None:
    path = tmp_path / "methods.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("bzip2.nii.gz"), b"b" * 100, compress_type=zipfile.ZIP_BZIP2)
        archive.writestr("locked.nii.gz", b"secret")
    data = path.read_bytes()
    for at in (data.index(b"PK\x03\x04", 1), central_entry(data, "locked.nii.gz")):  # the encryption flag, both headers
        patch(path, at + (6 if data[at + 2] == 3 else 8), b"\x01")
    source = ZipSource(path)
    with pytest.raises(SourceError, match="compressed with bzip2"):
        source.open("bzip2.nii.gz")
    with pytest.raises(SourceError, match="an encrypted member"):
        source.open("locked.nii.gz")


def test_a_file_that_is_no_zip_is_refused(tmp_path: Path) -> None:
    (tmp_path / "text.zip").write_text("not a zip at all")
    (tmp_path / "empty.zip").write_bytes(b"")
    for name in ("text.zip", "empty.zip"):
        with pytest.raises(NotAZip, match="no zip signature"):
            ZipSource(tmp_path / name)


def test_bytes_after_the_end_record_leave_the_archive_readable(tmp_path: Path, example_root: Path) -> None:
    path = tmp_path / "padded.zip"
    zip_release(example_root, path)
    with path.open("ab") as fh:
        fh.write(b"<html>download error</html>" * 10)
    source = ZipSource(path)
    assert (source.layout.directory, source.layout.truncation) == ("read", None)
    assert source.read("meta.csv", 1 << 20) == (example_root / "meta.csv").read_bytes()


def test_a_damaged_central_directory_is_walked_instead(tmp_path: Path, example_root: Path) -> None:
    path = tmp_path / "damaged.zip"
    zip_release(example_root, path)
    patch(path, zipfile.ZipFile(path).start_dir, b"PK\x00\x00")
    source = ZipSource(path)
    layout = source.layout
    assert (layout.directory, layout.truncation, layout.corrupt_at) == ("walked", None, None)
    assert "no directory entry" in layout.directory_error
    assert all_entries(source) == all_entries(FolderSource(example_root))


def streamed(members: dict[str, bytes], method: int) -> bytes:
    """An archive written to a stream that cannot seek, as a web server's zip-on-the-fly: every member's sizes and CRC
    follow its data in a data descriptor."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:
            self.data += b
            return len(b)

    out = Unseekable()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            with archive.open(name, "w") as member:
                member.write(data)
    return bytes(out.data)


MEMBERS = {"meta.csv": b"image_id\ns0000\n", "s0000/ct.nii.gz": os.urandom(5000),
           "s0000/segmentations/liver.nii.gz": bytes(3000) + os.urandom(500),
           "s0000/segmentations/spleen.nii.gz": os.urandom(4000)}


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_cut_archive_is_walked_and_names_its_first_incomplete_member(tmp_path: Path, method: int) -> None:
    path = write(tmp_path / "cut.zip", MEMBERS, method)
    data = path.read_bytes()
    liver = data.index(b"s0000/segmentations/liver.nii.gz") + len("s0000/segmentations/liver.nii.gz")
    path.write_bytes(data[: liver + 100])
    source = ZipSource(path)
    cut = source.layout.truncation
    assert (cut.path, cut.present, cut.complete_members) == ("s0000/segmentations/liver.nii.gz", 100, 2)
    size = zipfile.ZipFile(io.BytesIO(data)).getinfo("s0000/segmentations/liver.nii.gz").compress_size
    assert cut.missing == size - 100
    assert source.read("s0000/ct.nii.gz", 1 << 20) == MEMBERS["s0000/ct.nii.gz"]
    assert [e.path for e in source.entries("s0000/segmentations")] == ["s0000/segmentations/liver.nii.gz"]
    with pytest.raises(SourceError, match=f"cut off: .* 100 bytes into its data, {size - 100:,} bytes short"):
        source.open("s0000/segmentations/liver.nii.gz")


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_cut_archive_of_members_with_data_descriptors_is_walked(tmp_path: Path, method: int) -> None:
    data = streamed(MEMBERS, method)
    cut_at = data.index(b"s0000/segmentations/spleen.nii.gz") + 200
    path = tmp_path / "cut.zip"
    path.write_bytes(data[:cut_at])
    source = ZipSource(path)
    cut = source.layout.truncation
    assert (cut.path, cut.missing, cut.complete_members) == ("s0000/segmentations/spleen.nii.gz", None, 3)
    for name in ("meta.csv", "s0000/ct.nii.gz", "s0000/segmentations/liver.nii.gz"):
        assert source.read(name, 1 << 20) == MEMBERS[name]  # sizes and CRC taken from each data descriptor


def test_deflated_members_whose_descriptors_lack_their_signature_are_found_by_inflating(tmp_path: Path) -> None:
    data = streamed(MEMBERS, zipfile.ZIP_DEFLATED).replace(b"PK\x07\x08", b"")
    path = tmp_path / "bare.zip"
    path.write_bytes(data[: data.index(CENTRAL)])
    source = ZipSource(path)
    assert source.layout.truncation.header_at is None  # cut between members: at the directory
    assert {name: source.read(name, 1 << 20) for name in MEMBERS} == MEMBERS


def test_an_archive_cut_inside_a_member_name_says_where_that_member_starts(tmp_path: Path) -> None:
    path = write(tmp_path / "name.zip", MEMBERS)
    data = path.read_bytes()
    header = data.index(b"PK\x03\x04s0000/segmentations/spleen"[:4], data.index(b"s0000/segmentations/liver"))
    path.write_bytes(data[: header + 35])
    cut = ZipSource(path).layout.truncation
    assert (cut.header_at, cut.name, cut.path, cut.complete_members) == (header, None, None, 3)


def test_an_archive_cut_where_its_directory_begins_has_every_member(tmp_path: Path) -> None:
    path = write(tmp_path / "nodir.zip", MEMBERS)
    data = path.read_bytes()
    path.write_bytes(data[: data.index(CENTRAL) + 10])
    source = ZipSource(path)
    cut = source.layout.truncation
    assert (cut.header_at, cut.complete_members) == (None, 4)
    assert {name: source.read(name, 1 << 20) for name in MEMBERS} == MEMBERS


def test_a_directory_claiming_more_members_than_a_release_holds_is_refused_unread(tmp_path: Path,
                                                                                   example_root: Path) -> None:
    path = tmp_path / "many.zip"
    zip_release(example_root, path, zip64=True)
    end64 = path.read_bytes().rindex(b"PK\x06\x06")
    patch(path, end64 + 32, struct.pack("<Q", 50_000_000))  # the ZIP64 end record's member count
    with pytest.raises(NotAZip, match="50,000,000 members"):
        ZipSource(path)


def test_a_cut_archive_whose_local_headers_carry_zip64_sizes_is_walked(tmp_path: Path) -> None:
    """zipfile's force_zip64 puts ZIP64 sizes in the local headers only, as a writer does that cannot know a member's
    size in advance: the walk reads them there."""
    path = tmp_path / "local64.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in MEMBERS.items():
            with archive.open(name, "w", force_zip64=True) as member:
                member.write(data)
    data = path.read_bytes()
    assert data.count(b"\xff\xff\xff\xff") >= 2 * len(MEMBERS)
    path.write_bytes(data[: data.index(b"s0000/segmentations/spleen.nii.gz") + 100])
    source = ZipSource(path)
    assert (source.layout.zip64, source.layout.truncation.path) == (True, "s0000/segmentations/spleen.nii.gz")
    assert source.read("s0000/segmentations/liver.nii.gz", 1 << 20) == MEMBERS["s0000/segmentations/liver.nii.gz"]
