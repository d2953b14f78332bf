"""Reading meta.csv's bytes: absent, too large, or not a regular file inside the release."""

from __future__ import annotations

from pathlib import Path

from qa.scan.facts import Problem
from qa.scan.meta import read_meta
from qa.source.fs import FolderSource


def test_an_absent_meta_csv_is_not_present(tmp_path: Path) -> None:
    facts = read_meta(FolderSource(tmp_path), "meta.csv")
    assert (facts.present, facts.error) == (False, None)


def test_meta_csv_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "meta.csv").write_bytes(b"image_id\ns0000\n")
    assert read_meta(FolderSource(tmp_path), "meta.csv").raw == b"image_id\ns0000\n"


def test_a_meta_csv_over_the_limit_is_too_large_and_not_read(tmp_path: Path) -> None:
    (tmp_path / "meta.csv").write_bytes(b"x" * 101)
    facts = read_meta(FolderSource(tmp_path), "meta.csv", limit=100)
    assert (facts.present, facts.raw, facts.error.kind) == (True, b"", "too_large")


def test_a_meta_csv_link_leaving_the_release_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "outside.csv").write_bytes(b"image_id\n")
    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "meta.csv").symlink_to(tmp_path / "outside.csv")
    facts = read_meta(FolderSource(tmp_path / "release"), "meta.csv")
    assert facts.error == Problem("unreadable", "symbolic link leaving the release root (not followed)")


def test_a_meta_csv_link_loop_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "meta.csv").symlink_to("meta.csv")
    assert read_meta(FolderSource(tmp_path), "meta.csv").error.kind == "unreadable"
