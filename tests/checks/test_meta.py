"""meta: meta.csv's presence, parsing, columns, cells, duplicate ids and split counts, on literal bytes."""

from __future__ import annotations

import time

from literal import META_COLUMNS, V2, V3, context, essentials, meta_csv, release_facts, row

from qa.checks.meta import check_cells, check_columns, check_duplicate_ids, check_readable, check_split_counts
from qa.scan.facts import Problem

META_CHECKS = (check_readable, check_columns, check_cells, check_duplicate_ids, check_split_counts)


def meta(text, spec=V2, subset=True, error=None):
    """The meta.csv findings of a release of one case; a subset by default, so split counts stay out of the way."""
    ctx = context(release_facts(["s0001"], meta_csv_text=text, meta_error=error), spec, subset)
    return [f for check in META_CHECKS for f in check(ctx)]


def split_counts(*rows: str, spec=V2, subset=False):
    return check_split_counts(context(release_facts(["s0001"], meta_csv_text=meta_csv(*rows)), spec, subset))


def test_clean_meta_csv_has_no_finding() -> None:
    assert meta(meta_csv(row("s0001"), row("s0002", split="test", gender="f", age=""))) == []


def test_absent_meta_csv_is_meta_missing() -> None:
    assert essentials(meta(None)) == [("META_MISSING", None, None, "meta.csv", None, "error")]


def test_meta_csv_the_scan_could_not_read_is_meta_unreadable_with_its_kind() -> None:
    found = {kind: meta(b"", error=Problem(kind, "as the scan found it")) for kind in ("unreadable", "too_large")}
    assert {kind: essentials(f) for kind, f in found.items()} == {
        kind: [("META_UNREADABLE", kind, None, "meta.csv", None, "error")] for kind in found}
    assert found["too_large"][0].details == {"reason": "as the scan found it"}


UNPARSABLE = {
    "encoding": "image_id;split\ns0001;Zürich\n".encode("latin-1"),
    "no_header": b"\xef\xbb\xbf\n\n",
    "separator": meta_csv(row("s0001")).replace(";", ","),
    "parse": meta_csv(row("s0001"), row("s0002") + ";1;2"),
}


def test_meta_csv_that_cannot_be_a_table_is_meta_unreadable_saying_why() -> None:
    # every other meta.csv check needs the table, so this is the only finding
    assert {subcode: essentials(meta(raw)) for subcode, raw in UNPARSABLE.items()} == {
        subcode: [("META_UNREADABLE", subcode, None, "meta.csv", None, "error")] for subcode in UNPARSABLE}


def test_missing_required_column_is_meta_columns_missing() -> None:
    [found] = meta(meta_csv("s0001;train", columns=["image_id", "split"]))
    assert essentials([found]) == [("META_COLUMNS", "missing", None, "meta.csv", None, "error")]
    assert found.details["missing"] == ["age", "gender", "institute", "study_type", "manufacturer", "scanner_model",
                                        "kvp", "pathology", "pathology_location"]


def test_column_the_spec_does_not_know_is_meta_columns_unknown_as_a_warning() -> None:
    columns = [*V2.meta.columns, "site"]
    [found] = meta(meta_csv(row("s0001") + ";Basel", columns=columns))
    assert essentials([found]) == [("META_COLUMNS", "unknown", None, "meta.csv", None, "warning")]
    assert found.details == {"unknown": ["site"], "present": columns}


def test_cells_breaking_their_columns_rules_are_meta_value_on_that_case_by_rule() -> None:
    found = meta(meta_csv(row("s0001", age="sixty", gender="x", study_type="mr brain", split="", kvp="300")))
    assert {(f.code, f.case, f.path, f.class_name, f.severity) for f in found} == {
        ("META_VALUE", "s0001", "meta.csv", None, "error")}
    assert sorted((f.details["column"], f.details["value"], f.details["rule"], f.subcode) for f in found) == [
        ("age", "sixty", "integer", "type"),
        ("gender", "x", "one of m, f", "allowed"),
        ("kvp", "300", "at most 160", "range"),
        ("split", None, "not empty", "empty"),
        ("study_type", "mr brain", r"matches ^ct \S", "pattern"),
    ]
    assert [f.details["row"] for f in found] == [2] * 5


def test_cell_that_passes_only_after_normalising_is_meta_normalized_info() -> None:
    [found] = meta(meta_csv(row("s0001", study_type="CT  Polytrauma ")))
    assert essentials([found]) == [("META_NORMALIZED", None, "s0001", "meta.csv", None, "info")]
    assert found.details == {"row": 2, "column": "study_type", "value": "CT  Polytrauma ",
                             "normalized": "ct polytrauma"}


def test_two_normalised_cells_of_a_row_have_different_fingerprints() -> None:
    found = meta(meta_csv(row("s0001", gender="M", study_type="CT Thorax")))
    assert sorted(f.details["column"] for f in found) == ["gender", "study_type"]
    assert found[0].fingerprint != found[1].fingerprint


def test_id_listed_twice_is_meta_duplicate_id_with_its_lines() -> None:
    [found] = meta(meta_csv(row("s0001"), row("s0002"), row("s0001", split="test")))
    assert essentials([found]) == [("META_DUPLICATE_ID", None, "s0001", "meta.csv", None, "error")]
    assert found.details == {"id": "s0001", "lines": [2, 4]}


def test_release_with_other_split_sizes_is_meta_split_counts_total_and_splits() -> None:
    found = split_counts(row("s0001"), row("s0002", split="val"))
    assert [(f.code, f.subcode, f.severity) for f in found] == [("META_SPLIT_COUNTS", "total", "error"),
                                                                ("META_SPLIT_COUNTS", "splits", "error")]
    assert found[0].details == {"measured": 2, "expected": 1228}
    assert found[1].details == {"measured": {"test": 0, "train": 1, "val": 1},
                                "expected": {"train": 1082, "val": 57, "test": 89}}


def test_right_total_in_the_wrong_splits_is_meta_split_counts_splits_alone() -> None:
    tiny = V2.model_copy(update={"expected_cases": 2, "splits": {"train": 1, "test": 1}})
    found = split_counts(row("s0001"), row("s0002"), spec=tiny)
    assert [(f.subcode, f.details["measured"]) for f in found] == [("splits", {"test": 0, "train": 2})]


def test_release_without_published_splits_is_judged_on_its_total_alone() -> None:
    [found] = split_counts(row("s0001"), row("s0002", split="val"), spec=V3)
    assert essentials([found]) == [("META_SPLIT_COUNTS", "total", None, "meta.csv", None, "error")]
    assert found.details == {"measured": 2, "expected": 1939}


def test_split_counts_are_not_judged_on_a_subset() -> None:
    assert split_counts(row("s0001"), subset=True) == []


def test_rows_ending_in_a_separator_keep_their_cells_in_their_columns() -> None:
    table = context(release_facts(["s0001"], meta_csv_text=meta_csv(row("s0001") + ";"))).meta.table
    assert (table.frame.at[2, "image_id"], table.frame.at[2, "age"]) == ("s0001", row("s0001").split(";")[1])


def test_a_value_past_the_last_column_is_unreadable_not_silently_dropped() -> None:
    ctx = context(release_facts(["s0001"], meta_csv_text=meta_csv(row("s0001") + ";extra")))
    assert (ctx.meta.table, ctx.meta.problem.subcode) == (None, "parse")
    assert "line 2 has 12 fields but the header names 11" in ctx.meta.problem.message


def test_an_id_is_judged_by_its_pattern_as_a_whole_with_ascii_digits() -> None:
    # '$' would match before the newline of a quoted 's0003\n', and \d would take Arabic-Indic or full-width digits
    ids = ["s0001", '"s0003\n"', "s\u0660\u0660\u0660\u0663", "s\uff10\uff10\uff10\uff16"]
    found = meta(meta_csv(*(row(i) for i in ids)))
    assert sorted((f.details["row"], f.details["column"], f.subcode) for f in found) == [
        (3, "image_id", "pattern"), (4, "image_id", "pattern"), (5, "image_id", "pattern")]
    assert found[0].details["rule"] == r"matches ^s\d{4}$ as a whole"


def test_a_pattern_of_another_column_is_found_in_the_value_with_ascii_digits() -> None:
    spec = V2.model_copy(update={"meta": V2.meta.model_copy(update={"columns": {
        **V2.meta.columns, "kvp": V2.meta.columns["kvp"].model_copy(update={"type": "str", "min": None, "max": None,
                                                                           "pattern": r"\d{3}"})}})})
    found = meta(meta_csv(row("s0001", kvp="kvp 120"), row("s0002", kvp="\u0661\u0662\u0660")), spec=spec)
    assert [(f.details["row"], f.details["value"]) for f in found] == [(3, "\u0661\u0662\u0660")]


def test_a_table_wider_than_a_metadata_table_is_refused_before_it_is_parsed() -> None:
    wide = {
        "header": meta_csv(row("s0001"), columns=[*META_COLUMNS, *(f"c{i}" for i in range(100_000))]),
        "row": meta_csv(row("s0001") + ";" * 100_000),
        "cell": meta_csv(row("s0001", pathology_location="x" * 1_001)),
        "name": meta_csv(row("s0001") + ";", columns=[*META_COLUMNS, "y" * 1_001]),
    }
    clock = time.perf_counter()
    found = {kind: meta(text) for kind, text in wide.items()}
    assert time.perf_counter() - clock < 1.0
    assert {kind: essentials(f) for kind, f in found.items()} == {
        kind: [("META_UNREADABLE", "too_wide", None, "meta.csv", None, "error")] for kind in wide}
    assert "the header line has 100011 fields" in found["header"][0].message
    assert "line 2 has 100011 fields" in found["row"][0].message
    assert "a cell of 1001 characters in column 'pathology_location'" in found["cell"][0].message


def test_a_table_at_the_bounds_is_read() -> None:
    text = meta_csv(row("s0001", pathology_location="x" * 1_000) + ";" * (1_000 - len(META_COLUMNS)))
    assert [f.code for f in meta(text)] == []


def test_a_huge_field_past_the_last_column_is_unreadable_not_a_crash() -> None:
    [found] = meta(meta_csv(row("s0001") + ";" + "x" * 200_000))
    assert (found.code, found.subcode) == ("META_UNREADABLE", "parse")
