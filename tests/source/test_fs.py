"""FolderSource: what a release folder shows and what it refuses to read (links out, special files, loops)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.source.base import MemberMissing, SourceError
from qa.source.fs import FolderSource


@pytest.fixture
def release(tmp_path: Path) -> Path:
    root = tmp_path / "release"
    (root / "s0000" / "segmentations").mkdir(parents=True)
    (root / "meta.csv").write_bytes(b"image_id;split\ns0000;train\n")
    (root / "s0000" / "ct.nii.gz").write_bytes(b"0123456789")
    (tmp_path / "outside.txt").write_bytes(b"secret")
    return root


def test_entries_are_sorted_with_kinds_and_links_not_followed(release: Path) -> None:
    (release / "link").symlink_to("meta.csv")
    os.mkfifo(release / "fifo")
    entries = FolderSource(release).entries("")
    assert [(e.path, e.kind) for e in entries] == [("fifo", "other"), ("link", "symlink"), ("meta.csv", "file"),
                                                    ("s0000", "dir")]


def test_entries_of_a_subfolder_carry_paths_relative_to_the_root(release: Path) -> None:
    assert [e.path for e in FolderSource(release).entries("s0000")] == ["s0000/ct.nii.gz", "s0000/segmentations"]


def test_a_folder_that_cannot_be_listed_has_no_entries(release: Path) -> None:
    assert FolderSource(release).entries("no_such_folder") == []


def test_a_folder_reached_through_a_link_leaving_the_release_is_not_listed(release: Path, tmp_path: Path) -> None:
    (release / "s0000" / "elsewhere").symlink_to(tmp_path)
    assert FolderSource(release).entries("s0000/elsewhere") == []


def test_stat_and_read_of_a_regular_file(release: Path) -> None:
    source = FolderSource(release)
    assert source.stat("s0000/ct.nii.gz").size == 10
    with source.open("s0000/ct.nii.gz") as reader:
        assert (reader.size, reader.read_at(6, 100)) == (10, b"6789")
    assert source.read("meta.csv", 100).startswith(b"image_id;split")


def test_a_link_inside_the_release_is_followed(release: Path) -> None:
    (release / "s0000" / "copy.nii.gz").symlink_to("ct.nii.gz")
    assert FolderSource(release).read("s0000/copy.nii.gz", 100) == b"0123456789"


@pytest.mark.parametrize(("make", "reason"), [
    (lambda root, out: (root / "m").symlink_to(out), "leaving the release root"),
    (lambda root, out: (root / "m").symlink_to(root / "gone"), "dangling symbolic link"),
    (lambda root, out: (root / "m").symlink_to(root / "m"), "cannot be resolved"),
    (lambda root, out: os.mkfifo(root / "m"), "not a regular file"),
    (lambda root, out: (root / "m").mkdir(), "not a regular file"),
])
def test_members_that_are_never_read(release: Path, tmp_path: Path, make, reason: str) -> None:
    make(release, tmp_path / "outside.txt")
    source = FolderSource(release)
    for attempt in (lambda: source.stat("m"), lambda: source.open("m"), lambda: source.read("m", 100)):
        with pytest.raises(SourceError, match=reason):
            attempt()


@pytest.mark.parametrize("path", ["../outside.txt", "s0000/../../outside.txt", "/etc/hostname"])
def test_a_path_with_dot_dot_or_an_absolute_path_is_never_opened(release: Path, path: str) -> None:
    source = FolderSource(release)
    for attempt in (lambda: source.stat(path), lambda: source.open(path), lambda: source.read(path, 100)):
        with pytest.raises(SourceError, match="leaving the release root"):
            attempt()
    assert source.entries("s0000/../..") == []


def test_a_missing_member_is_its_own_error(release: Path) -> None:
    with pytest.raises(MemberMissing):
        FolderSource(release).stat("no_such_file")


def test_read_refuses_a_member_larger_than_its_limit(release: Path) -> None:
    with pytest.raises(SourceError, match="10 bytes, more than the 4 allowed"):
        FolderSource(release).read("s0000/ct.nii.gz", 4)


def test_location_is_the_resolved_root(release: Path, tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(release)
    assert FolderSource(tmp_path / "alias").location == str(release.resolve())
