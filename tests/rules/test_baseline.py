"""Baselines: findings recorded by fingerprint with counts, matched so that only what changes a problem makes it new."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qa.rules.baseline import BASELINE_FORMAT, Baseline, BaselineError, baseline_of, load_baseline, match
from qa.rules.finding import Finding, fingerprint

STARTED = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def found(code: str, path: str, severity: str = "error", key: str | None = None, **details) -> Finding:
    case = path.split("/")[0]
    return Finding(code=code, severity=severity, case=case, path=path, message=f"{path}: {code}", details=details,
                   fingerprint=fingerprint(code, None, case, path, None, key))


def baseline(*findings: Finding) -> Baseline:
    return baseline_of(list(findings), "totalsegmentator-v2", "/data/v201", "deep", STARTED, "0.2.0")


def test_a_repeated_fingerprint_is_one_entry_with_its_count_and_highest_severity() -> None:
    made = baseline(found("FILE_UNEXPECTED", "s0001/x", "info"), found("FILE_UNEXPECTED", "s0001/x", "warning"),
                    found("FILE_CORRUPT", "s0002/ct.nii.gz"))
    assert [(e.code, e.count, e.severity) for e in made.entries] == [("FILE_UNEXPECTED", 2, "warning"),
                                                                       ("FILE_CORRUPT", 1, "error")]


def test_the_waivers_own_findings_are_not_recorded() -> None:
    expired = Finding(code="QA_WAIVER_EXPIRED", severity="warning", case=None, path=None, message="m",
                      fingerprint=fingerprint("QA_WAIVER_EXPIRED", None, None, None, None, "w"))
    assert baseline(expired, found("FILE_CORRUPT", "s0002/ct.nii.gz")).entries[0].code == "FILE_CORRUPT"
    assert len(baseline(expired).entries) == 0


def test_matching_ignores_measured_numbers_and_other_findings_coming_and_going() -> None:
    old = baseline(found("LABEL_OVERLAP", "s0001/a", "warning", "liver", share=0.10),
                   found("FILE_CORRUPT", "s0002/ct.nii.gz"))
    now = [found("META_VALUE", "meta.csv/x"), found("LABEL_OVERLAP", "s0001/a", "warning", "liver", share=0.11)]
    result = match(now, old.entries)
    assert result.states == ["new", "unchanged"]
    assert [(e.code, e.count) for e in result.fixed] == [("FILE_CORRUPT", 1)]


def test_findings_beyond_a_fingerprints_count_are_new_and_fewer_leave_the_rest_fixed() -> None:
    twice = baseline(found("FILE_UNEXPECTED", "s0001/x"), found("FILE_UNEXPECTED", "s0001/x"))
    assert match([found("FILE_UNEXPECTED", "s0001/x")] * 3, twice.entries).states == ["unchanged", "unchanged", "new"]
    fewer = match([found("FILE_UNEXPECTED", "s0001/x")], twice.entries)
    assert [(e.fingerprint, e.count) for e in fewer.fixed] == [(twice.entries[0].fingerprint, 1)]


def test_a_finding_more_severe_than_its_baseline_entry_is_worse() -> None:
    old = baseline(found("LABEL_OVERLAP", "s0001/a", "warning", "liver"))
    assert match([found("LABEL_OVERLAP", "s0001/a", "error", "liver")], old.entries).states == ["worse"]
    assert match([found("LABEL_OVERLAP", "s0001/a", "info", "liver")], old.entries).states == ["unchanged"]


def test_a_baseline_round_trips_through_its_file(tmp_path: Path) -> None:
    made = baseline(found("FILE_CORRUPT", "s0002/ct.nii.gz"))
    path = tmp_path / "b.json"
    path.write_text(made.model_dump_json())
    assert load_baseline(path) == made


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read baseline"),
    ("{not json", "is not a tsqa baseline"),
    ('{"tool": "tsqa", "schema_version": 2, "findings": []}', "is not a tsqa baseline"),
    ("newer", "written by a newer tsqa"),
    ('{"entries": ' + "[" * 50_000 + "]" * 50_000 + "}", "recursion limit exceeded"),
], ids=["missing", "not JSON", "a report, not a baseline", "newer format", "nested 50,000 levels"])
def test_an_unusable_baseline_is_refused_in_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "b.json"
    if content == "newer":
        content = baseline().model_copy(update={"format": BASELINE_FORMAT + 1}).model_dump_json()
    if content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError) as caught:
        load_baseline(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_baseline_that_is_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    os.mkfifo(path)
    with pytest.raises(BaselineError, match="not a regular file"):
        load_baseline(path)


def test_a_device_as_baseline_is_refused_before_it_is_read() -> None:
    with pytest.raises(BaselineError, match="not a regular file"):
        load_baseline(Path("/dev/zero"))


def test_a_baseline_larger_than_any_release_makes_is_refused_before_parsing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qa.rules.baseline.MAX_BASELINE_BYTES", 1 << 10)
    path = tmp_path / "b.json"
    path.write_text(baseline().model_dump_json() + " " * 2048)
    with pytest.raises(BaselineError, match=r"larger than .* more than a baseline holds"):
        load_baseline(path)
