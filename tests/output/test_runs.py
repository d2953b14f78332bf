"""The reports folder as a history: a folder per run, latest.json, and an index of each release's runs over time."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from report_builders import STARTED, finding, report

from qa.output.html.history import read_histories, write_index
from qa.output.json import write_report
from qa.output.runs import (
    FOLDER_CHARS,
    LATEST,
    folder_name,
    latest_run,
    new_run_dir,
    point_latest,
    read_record,
    record_run,
    release_dir,
    release_name,
    runs,
)


def keep(reports: Path, r, release: str = "/data/Totalsegmentator_dataset_v201") -> Path:
    """What `tsqa check` does with a run: its folder, report.json, then run.json and latest.json."""
    run = new_run_dir(release_dir(reports, r.spec_id, release), r.started)
    write_report(r.model_copy(update={"release": release}), run)
    point_latest(run, record_run(r.model_copy(update={"release": release}), run))
    return run


def test_a_run_folder_is_named_by_its_utc_start_and_never_reused(tmp_path: Path) -> None:
    first = new_run_dir(tmp_path, STARTED)
    second = new_run_dir(tmp_path, STARTED)
    assert (first.name, second.name) == ("20261101T093000Z", "20261101T093000Z-2")


def test_release_folders_are_named_after_the_releases_last_part_with_other_characters_encoded() -> None:
    assert release_name("/data/Totalsegmentator_dataset_v201") == "Totalsegmentator_dataset_v201"
    assert release_name("/mnt/my data/v2 (copy)") == "v2~20~28copy~29"
    assert release_name("/") == "~~"


@pytest.mark.parametrize(("one", "other"), [("a b", "a_b"), ("p/q", "p--q"), ("a~20b", "a b"), ("", "~"),
                                            (".x", "~2Ex"), ("x" * 300, "x" * 301), ("\udce9", "\xe9")])
def test_names_that_used_to_share_a_folder_name_have_their_own(one: str, other: str) -> None:
    assert folder_name(one) != folder_name(other)


@given(st.text(), st.text())
def test_distinct_names_get_distinct_folder_names_that_are_safe_and_short(one: str, other: str) -> None:
    assume(one != other)
    assert folder_name(one) != folder_name(other)
    for name in (folder_name(one), folder_name(other)):
        assert re.fullmatch(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*", name) and len(name) <= FOLDER_CHARS


def test_latest_json_points_at_the_newest_complete_run(tmp_path: Path) -> None:
    older = keep(tmp_path, report([]))
    newer = keep(tmp_path, report([finding("FILE_CORRUPT", "s0002/ct.nii.gz")], started=STARTED + timedelta(hours=1)))
    folder = newer.parent
    assert read_record(folder / LATEST).run == newer.name and latest_run(folder) == newer
    assert runs(folder) == [older, newer]
    (folder / LATEST).write_text("{broken")
    assert latest_run(folder) == newer, "a broken pointer falls back to the newest run"


def test_runs_of_one_second_sort_by_their_number(tmp_path: Path) -> None:
    made = [new_run_dir(tmp_path, STARTED) for _ in range(11)]
    for run in made:
        (run / "report.json").write_text("{}")
    assert runs(tmp_path) == made


def test_the_index_shows_each_releases_runs_newest_first_with_verdicts_counts_and_changes(tmp_path: Path) -> None:
    corrupt = finding("FILE_CORRUPT", "s0002/ct.nii.gz")
    keep(tmp_path, report([]))
    keep(tmp_path, report([corrupt], started=STARTED + timedelta(days=1)))
    keep(tmp_path, report([], started=STARTED + timedelta(days=2)), release="/data/other")
    histories = read_histories(tmp_path)
    assert [(h.title, len(h.rows)) for h in histories] == [("other", 1), ("Totalsegmentator_dataset_v201", 2)]
    v201 = histories[1]
    assert [(row.entry.verdict, row.entry.errors, row.errors_change) for row in v201.rows] == [
        ("FAIL", 1, 1), ("PASS", 0, None)]
    assert v201.spark is not None and histories[0].spark is None
    html = write_index(tmp_path).read_text()
    assert re.findall(r'href="(totalsegmentator-v2/[^"]+)"', html) == [
        "totalsegmentator-v2/other/20261103T093000Z/report.json",
        "totalsegmentator-v2/Totalsegmentator_dataset_v201/20261102T093000Z/report.json",
        "totalsegmentator-v2/Totalsegmentator_dataset_v201/20261101T093000Z/report.json"]
    assert '<span class="change up">+1</span>' in html and '<svg class="spark"' in html


def test_the_index_reads_run_json_and_never_the_report_of_a_kept_run(tmp_path: Path) -> None:
    run = keep(tmp_path, report([]))
    (run / "report.json").write_text("{unreadable, but the index does not need it}")
    assert [h.rows[0].entry.verdict for h in read_histories(tmp_path)] == ["PASS"]
