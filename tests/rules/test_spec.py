"""Release specs: the built-ins load and ship, bad specs are refused with one clear line."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml
from support import REPO, class_list

from qa.rules.codes import CODES
from qa.rules.spec import SpecError, builtin_spec_names, case_folders, load_spec
from qa.source.base import Entry


def test_builtin_specs_are_the_three_ct_releases() -> None:
    assert builtin_spec_names() == ["totalsegmentator-v1", "totalsegmentator-v2", "totalsegmentator-v3"]


def test_specs_ship_as_package_data_of_the_installed_package() -> None:
    names = {p.name for p in resources.files("qa.schemas").iterdir()}
    assert {"totalsegmentator-v2.yaml", "report.schema.json"} <= names


@pytest.mark.parametrize(("name", "key", "cases", "splits"), [
    ("totalsegmentator-v1", "total_v1", 1204, {"train": 1082, "val": 57, "test": 65}),
    ("totalsegmentator-v2", "total", 1228, {"train": 1082, "val": 57, "test": 89}),
    ("totalsegmentator-v3", "total_v3", 1939, None),
])
def test_builtin_spec_classes_and_counts_match_the_release(
    name: str, key: str, cases: int, splits: dict | None
) -> None:
    spec = load_spec(name)
    assert spec.classes == class_list(key)
    assert (spec.expected_cases, spec.splits) == (cases, splits)


def test_v2_archive_size_and_md5_are_the_published_ones() -> None:
    [archive] = load_spec("totalsegmentator-v2").archives
    assert (archive.name, archive.size, archive.md5) == (
        "Totalsegmentator_dataset_v201.zip", 23_581_218_285, "fe250e5718e0a3b5df4c4ea9d58a62fe")


def test_v3_has_no_val_split() -> None:
    assert load_spec("totalsegmentator-v3").meta.columns["split"].allowed == ["train", "test"]


def test_every_code_has_a_severity_in_every_builtin_spec_or_a_threshold() -> None:
    for name in builtin_spec_names():
        spec = load_spec(name)
        assert set(CODES) - {c.split(":")[0] for c in spec.severities} == {"LABEL_OVERLAP"}, name


def write_spec(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load((REPO / "schemas" / "totalsegmentator-v2.yaml").read_text())
    edit(data)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_key_is_refused_with_its_location(tmp_path: Path) -> None:
    path = write_spec(tmp_path, lambda d: d["geometry"].update(spaceing=[1, 1, 1]))
    with pytest.raises(SpecError, match=r"geometry\.spaceing: Extra inputs are not permitted"):
        load_spec(str(path))


def test_bad_severity_is_refused(tmp_path: Path) -> None:
    path = write_spec(tmp_path, lambda d: d["severities"].update(FILE_MISSING="fatal"))
    with pytest.raises(SpecError, match=r"severities\.FILE_MISSING"):
        load_spec(str(path))


def test_severity_for_an_unknown_code_is_refused(tmp_path: Path) -> None:
    path = write_spec(tmp_path, lambda d: d["severities"].update(NO_SUCH_CODE="error"))
    with pytest.raises(SpecError, match="unknown finding codes or subcodes: NO_SUCH_CODE"):
        load_spec(str(path))


def test_bad_regex_is_refused(tmp_path: Path) -> None:
    path = write_spec(tmp_path, lambda d: d["meta"]["columns"]["image_id"].update(pattern="^s(\\d{4}$"))
    with pytest.raises(SpecError, match="not a regular expression"):
        load_spec(str(path))


def test_unknown_spec_name_lists_the_known_ones() -> None:
    with pytest.raises(SpecError, match="known: totalsegmentator-v1, totalsegmentator-v2"):
        load_spec("totalsegmentator-v9")


def test_a_users_own_yaml_is_loaded_by_path() -> None:
    spec = load_spec(str(REPO / "examples" / "totalsegmentator-mri.yaml"))
    assert (spec.image, len(spec.classes), spec.classes == class_list("total_mr")) == ("mri.nii.gz", 50, True)


def test_anatomy_rule_naming_an_unknown_class_is_refused(tmp_path: Path) -> None:
    path = write_spec(tmp_path, lambda d: d["anatomy"]["above"].append(["heart", "tail"]))
    with pytest.raises(SpecError, match="anatomy names classes the spec does not list: tail"):
        load_spec(str(path))


def test_case_folders_are_names_the_whole_of_which_matches_with_ascii_digits() -> None:
    names = ["s0001", "s0001\n", "s0001x", "xs0001", "s\u0660\u0660\u0660\u0663", "s\uff10\uff10\uff10\uff16"]
    entries = [Entry(name, "dir") for name in names] + [Entry("s0002", "file")]
    assert case_folders(entries, r"^s\d{4}$") == ["s0001"]
    assert case_folders(entries, r"s\d{4}") == ["s0001"]  # anchors or not, the whole name must match


def test_a_case_pattern_that_is_no_regex_is_refused(tmp_path: Path) -> None:
    path = write_spec(tmp_path, lambda d: d.update(case_pattern="s(\\d"))
    with pytest.raises(SpecError, match="case_pattern: .*not a regular expression"):
        load_spec(str(path))


def test_label_rule_naming_an_unknown_class_is_refused(tmp_path: Path) -> None:
    path = write_spec(tmp_path, lambda d: d["labels"]["pieces"]["expected"][1].append("tail"))
    with pytest.raises(SpecError, match="labels names classes the spec does not list: tail"):
        load_spec(str(path))


def test_chain_with_a_reference_volume_missing_is_refused(tmp_path: Path) -> None:
    path = write_spec(tmp_path, lambda d: d["labels"]["chains"][0]["reference_ml"].pop())
    with pytest.raises(SpecError, match="labels.chains.0: .*reference_ml has 24 values for 25 members"):
        load_spec(str(path))


def test_reference_table_naming_an_unknown_class_is_refused(tmp_path: Path) -> None:
    path = write_spec(tmp_path, lambda d: d["reference"]["classes"].update({"tail": {"coverage": 0.5}}))
    with pytest.raises(SpecError, match="reference names classes the spec does not list: tail"):
        load_spec(str(path))


def test_v2_reference_table_is_the_dataset_cards_for_every_class() -> None:
    spec = load_spec("totalsegmentator-v2")
    assert set(spec.reference.classes) == set(spec.classes)
    # the card's rows "kidney cyst left" and "clavicle_left", mapped to the class names
    table = spec.reference.classes
    cyst, clavicle, rib = table["kidney_cyst_left"], table["clavicula_left"], table["rib_left_1"]
    assert (cyst.cases, cyst.coverage, cyst.volume_ml) == (30, 0.0244, 57.39)
    assert (clavicle.cases, rib.cases, rib.volume_ml) == (727, 742, 9.12)
    assert spec.reference.classes["vertebrae_C6"].volume_ml is None  # the card's 6.1 cm³ is anomalous


def test_every_v2_class_is_in_one_hu_group() -> None:
    spec = load_spec("totalsegmentator-v2")
    grouped = [name for group in spec.labels.hu.groups.values() for name in group.classes]
    assert sorted(grouped) == sorted(spec.classes)


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d["meta"].update(file="../secret.csv"), "meta.file"),
    (lambda d: d["meta"].update(file="/etc/passwd"), "meta.file"),
    (lambda d: d["meta"].update(file="docs//meta.csv"), "meta.file"),
    (lambda d: d["meta"].update(file="..\\secret.csv"), "meta.file"),
    (lambda d: d["meta"].update(file="meta.csv\x00"), "meta.file"),
    (lambda d: d.update(image="../ct.nii.gz"), "image"),
    (lambda d: d.update(image="./ct.nii.gz"), "image"),
    (lambda d: d.update(mask_dir="segmentations/.."), "mask_dir"),
    (lambda d: d.update(mask_dir=""), "mask_dir"),
    (lambda d: d.update(mask_suffix="/../../x.nii.gz"), "mask_suffix"),
    (lambda d: d["classes"].append(".."), "classes.117"),
    (lambda d: d["classes"].append("liver/../../spleen"), "classes.117"),
    (lambda d: d["classes"].append("liver\n"), "classes.117"),
])
def test_a_path_or_name_that_leaves_the_release_is_refused_with_its_file_line_and_field(
    tmp_path: Path, edit, field: str
) -> None:
    path = write_spec(tmp_path, edit)
    with pytest.raises(SpecError) as caught:
        load_spec(str(path))
    message = str(caught.value)
    assert message.startswith(f"spec {path}:") and f": {field}: " in message, message
    assert message.split(":")[1].isdigit() and "\n" not in message, message


def test_nested_paths_and_names_with_dots_inside_the_release_are_accepted(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["meta"]["file"] = "docs/meta.csv"
        data.update(image="image/ct..nii.gz", mask_dir="masks/v2.0", mask_suffix="")
        data["classes"].append(".hidden")

    spec = load_spec(str(write_spec(tmp_path, edit)))
    assert (spec.meta.file, spec.mask_file(".hidden")) == ("docs/meta.csv", "masks/v2.0/.hidden")

