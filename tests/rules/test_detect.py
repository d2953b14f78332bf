"""Spec detection: it picks the release that fits and says why, and it reads only what the scan's rules allow."""

from __future__ import annotations

import os
from pathlib import Path

from support import class_list

from qa.rules.detect import detect_spec
from qa.source.fs import FolderSource

V2_COLUMNS = ("image_id;age;gender;institute;study_type;split;manufacturer;scanner_model;kvp;pathology;"
              "pathology_location")


def layout_with(tmp_path: Path, columns: str, masks: list[str]) -> Path:
    (tmp_path / "s0000" / "segmentations").mkdir(parents=True)
    (tmp_path / "meta.csv").write_text(f"\ufeff{columns}\n", encoding="utf-8")
    for name in masks:
        (tmp_path / "s0000" / "segmentations" / f"{name}.nii.gz").touch()
    return tmp_path


def test_detection_picks_v2_for_the_real_example_and_says_why(example_root: Path) -> None:
    choice = detect_spec(FolderSource(example_root))
    assert choice.spec.id == "totalsegmentator-v2"
    assert "117 of 117 mask names" in choice.reason


def test_detection_picks_v1_from_six_columns_and_v1_mask_names(tmp_path: Path) -> None:
    root = layout_with(tmp_path, "image_id;age;gender;institute;study_type;split", class_list("total_v1"))
    assert detect_spec(FolderSource(root)).spec.id == "totalsegmentator-v1"


def test_detection_picks_v3_from_vertebrae_l6(tmp_path: Path) -> None:
    root = layout_with(tmp_path, V2_COLUMNS, class_list("total_v3"))
    assert detect_spec(FolderSource(root)).spec.id == "totalsegmentator-v3"


def test_a_fifo_named_meta_csv_is_not_opened(tmp_path: Path, deadline: None) -> None:
    root = layout_with(tmp_path, V2_COLUMNS, class_list("total"))
    (root / "meta.csv").unlink()
    os.mkfifo(root / "meta.csv")
    choice = detect_spec(FolderSource(root))
    assert choice.spec.id == "totalsegmentator-v2"
    assert "not the 11 meta.csv columns" in choice.reason


def test_a_meta_csv_link_leaving_the_release_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("image_id;age;gender;institute;study_type;split\n")
    root = layout_with(tmp_path / "release", V2_COLUMNS, class_list("total"))
    (root / "meta.csv").unlink()
    (root / "meta.csv").symlink_to(outside)
    assert "not the 11 meta.csv columns" in detect_spec(FolderSource(root)).reason


def test_masks_behind_a_mask_folder_link_leaving_the_release_are_not_counted(tmp_path: Path) -> None:
    outside = layout_with(tmp_path / "outside", V2_COLUMNS, class_list("total_v1"))
    root = layout_with(tmp_path / "release", V2_COLUMNS, [])
    (root / "s0000" / "segmentations").rmdir()
    (root / "s0000" / "segmentations").symlink_to(outside / "s0000" / "segmentations")
    assert "0 of 0 mask names" in detect_spec(FolderSource(root)).reason
