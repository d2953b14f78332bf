"""Output folders: opened once and written through the handle, atomically, under a lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.output.files import Folder, FolderBusy


def test_a_file_is_written_whole_with_no_temporary_left(tmp_path: Path) -> None:
    with Folder.open(tmp_path / "out") as folder:
        assert folder.write("report.json", "{}") == tmp_path / "out" / "report.json"
        folder.write("report.json", '{"again": 1}')
        folder.write("evidence/a.png", b"png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["evidence", "report.json"]
    assert (tmp_path / "out" / "report.json").read_text() == '{"again": 1}'
    assert (tmp_path / "out" / "evidence" / "a.png").read_bytes() == b"png"


def test_writes_go_through_the_handle_when_the_path_is_swapped_for_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "release"
    elsewhere.mkdir()
    with Folder.open(tmp_path / "out") as folder:
        (tmp_path / "out").rename(tmp_path / "moved")
        (tmp_path / "out").symlink_to(elsewhere)
        folder.write("report.json", "{}")
        folder.write("evidence/a.png", b"png")
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "moved").iterdir()) == ["evidence", "report.json"]


def test_a_second_holder_of_the_lock_is_refused(tmp_path: Path) -> None:
    with Folder.open(tmp_path) as first, Folder.open(tmp_path) as second:
        first.lock()
        with pytest.raises(FolderBusy):
            second.lock()
    with Folder.open(tmp_path) as third:
        third.lock()  # the first holder closed its handle, and with it the lock


def test_read_takes_regular_files_only_and_never_follows_a_link(tmp_path: Path) -> None:
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "a.png").write_bytes(b"png")
    (tmp_path / "secret").write_bytes(b"secret")
    (tmp_path / "evidence" / "link.png").symlink_to(tmp_path / "secret")
    os.mkfifo(tmp_path / "evidence" / "fifo.png")
    with Folder.open(tmp_path) as folder:
        assert folder.read("evidence/a.png", 100) == b"png"
        assert [folder.read(name, 100) for name in ("evidence/link.png", "evidence/fifo.png", "../secret",
                                                     "evidence/a.png/x", "evidence/missing.png")] == [None] * 5
        assert folder.read("evidence/a.png", 2) is None  # larger than asked for


def test_opening_a_file_as_a_folder_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        Folder.open(tmp_path / "file")
    with pytest.raises(NotADirectoryError):
        Folder.open(tmp_path / "file" / "sub")
