"""Spec detection: it picks the release that fits clearly and says why, refuses to guess when none does (an empty
folder, one case folder, another spec's masks), and it reads only what the scan's rules allow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import REPO, class_list

from qa.app.demo import DEMO_CASES, DEMO_FAULTS, DEMO_SPEC
from qa.rules.detect import NoSpecFits, detect_spec
from qa.rules.spec import load_spec
from qa.source.fs import FolderSource
from qa.synth.sample import make_sample

SHAPE = (16, 16, 48)
MRI = REPO / "examples" / "totalsegmentator-mri.yaml"

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
    with pytest.raises(NoSpecFits, match="0 of 0 mask names"):
        detect_spec(FolderSource(root))


@pytest.mark.parametrize("spec_id", ["totalsegmentator-v1", "totalsegmentator-v2", "totalsegmentator-v3"])
def test_a_sample_release_of_each_built_in_spec_is_detected_as_that_spec(tmp_path: Path, spec_id: str) -> None:
    sample = make_sample(tmp_path / "release", load_spec(spec_id), cases=2, shape=SHAPE)
    assert detect_spec(FolderSource(sample.root)).spec.id == spec_id


def test_the_demo_release_with_its_faults_is_detected_as_the_demo_spec(tmp_path: Path) -> None:
    sample = make_sample(tmp_path / "release", load_spec(DEMO_SPEC), cases=DEMO_CASES, faults=DEMO_FAULTS,
                         shape=SHAPE)
    assert detect_spec(FolderSource(sample.root)).spec.id == DEMO_SPEC


def test_an_empty_folder_is_no_release(tmp_path: Path) -> None:
    with pytest.raises(NoSpecFits, match=r"^no release here: no meta.csv and no case folders \(sXXXX/\) in /x$"):
        detect_spec(FolderSource(tmp_path), where="/x")


def test_a_case_folder_is_one_case_not_a_release(tmp_path: Path) -> None:
    sample = make_sample(tmp_path / "release", load_spec("totalsegmentator-v2"), cases=1, shape=SHAPE)
    with pytest.raises(NoSpecFits, match="^s0000 looks like one case folder, not a release: give its parent folder"):
        detect_spec(FolderSource(sample.root / "s0000"), where="s0000")


def test_a_release_of_mri_masks_fits_no_built_in_spec_and_names_the_best_with_their_scores(tmp_path: Path) -> None:
    sample = make_sample(tmp_path / "release", load_spec(MRI), cases=2, shape=SHAPE)
    with pytest.raises(NoSpecFits) as refused:
        detect_spec(FolderSource(sample.root), where="mri", hint="pass --spec")
    message = str(refused.value)
    assert message.startswith("no built-in spec fits mri clearly, best: totalsegmentator-v1 1.77 of 3 (the 6 meta.csv "
                              "columns; 43 of 50 mask names seen are among its 104 classes); totalsegmentator-v")
    assert message.endswith("; pass --spec") and "\n" not in message


def test_v2_and_v3_masks_without_the_names_that_tell_them_apart_are_no_clear_choice(tmp_path: Path) -> None:
    shared = sorted(set(class_list("total")) & set(class_list("total_v3")))
    with pytest.raises(NoSpecFits, match="best: totalsegmentator-v2 2.98 of 3 .*; totalsegmentator-v3 2.98 of 3"):
        detect_spec(FolderSource(layout_with(tmp_path, V2_COLUMNS, shared)))
