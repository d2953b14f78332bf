"""meta.csv as the real releases write it: BOM, CRLF, quirky free text, and pandera's failure cases as findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.app.pipeline import run_check
from qa.rules.finding import Finding
from qa.rules.spec import load_spec

V2 = load_spec("totalsegmentator-v2")
HEADER = "image_id;age;gender;institute;study_type;split;manufacturer;scanner_model;kvp;pathology;pathology_location"


def meta_findings(root: Path, rows: list[str], newline: str = "\n", bom: bool = True) -> list[Finding]:
    text = ("\ufeff" if bom else "") + newline.join([HEADER, *rows]) + newline
    (root / "meta.csv").write_bytes(text.encode("utf-8"))
    report = run_check(root, V2, "test", mode="quick", subset=True)
    return [f for f in report.findings if f.code.startswith("META_")]


ROW = "s0000;63;m;A;ct thorax-abdomen-pelvis;train;SIEMENS;SOMATOM Definition AS;120;no_pathology;"


def test_real_layout_with_bom_and_values_is_clean(example_copy) -> None:
    assert meta_findings(example_copy("s0000"), [ROW]) == []


def test_crlf_line_endings_are_read_like_lf(example_copy) -> None:
    assert meta_findings(example_copy("s0000"), [ROW], newline="\r\n") == []


def test_a_file_without_bom_is_still_read(example_copy) -> None:
    assert meta_findings(example_copy("s0000"), [ROW], bom=False) == []


def test_capitals_and_trailing_space_in_study_type_are_info_not_error(example_copy) -> None:
    [found] = meta_findings(example_copy("s0000"), [ROW.replace("ct thorax-abdomen-pelvis", "CT Polytrauma ")])
    assert (found.code, found.severity, found.case, found.path) == ("META_NORMALIZED", "info", "s0000", "meta.csv")
    got = (found.details["value"], found.details["normalized"], found.details["row"])
    assert got == ("CT Polytrauma ", "ct polytrauma", 2)


def test_double_space_in_study_type_is_normalized_not_rejected(example_copy) -> None:
    [found] = meta_findings(example_copy("s0000"), [ROW.replace("ct thorax-abdomen-pelvis", "ct  operation")])
    assert (found.code, found.details["normalized"]) == ("META_NORMALIZED", "ct operation")


def test_german_fragments_and_typos_in_free_text_pass(example_copy) -> None:
    row = ROW.replace("ct thorax-abdomen-pelvis", "ct heart-thorakale aorta")
    assert meta_findings(example_copy("s0000"), [row]) == []


@pytest.mark.parametrize(("column", "bad", "rule"), [
    ("age", "abc", "integer"),
    ("age", "130", "at most 120"),
    ("gender", "x", "one of m, f"),
    ("split", "training", "one of train, val, test"),
    ("split", "", "not empty"),
    ("kvp", "many", "number"),
    ("study_type", "mr brain", r"matches ^ct \S"),
])
def test_cell_breaking_its_rule_is_one_meta_value_with_line_column_value_rule(example_copy, column, bad, rule) -> None:
    cells = dict(zip(HEADER.split(";"), ROW.split(";")))
    cells[column] = bad
    [found] = meta_findings(example_copy("s0000"), [";".join(cells.values())])
    assert (found.code, found.case, found.path) == ("META_VALUE", "s0000", "meta.csv")
    assert found.details == {"row": 2, "column": column, "value": bad or None, "rule": rule}


def test_two_bad_cells_are_two_findings(example_copy) -> None:
    row = ROW.replace(";63;m;", ";abc;x;")
    assert sorted(f.details["column"] for f in meta_findings(example_copy("s0000"), [row])) == ["age", "gender"]


def test_latin1_file_is_unreadable_with_the_byte_position(example_copy) -> None:
    root = example_copy("s0000")
    (root / "meta.csv").write_bytes(f"{HEADER}\n{ROW.replace('A;', 'Zürich;')}\n".encode("latin-1"))
    [found] = [f for f in run_check(root, V2, "t", mode="quick", subset=True).findings if f.code.startswith("META_")]
    assert (found.code, found.path) == ("META_UNREADABLE", "meta.csv")
    assert "utf-8-sig" in found.message
