"""The report model: its committed JSON Schema is current, and reports are written atomically outside the release."""

from __future__ import annotations

import json
from pathlib import Path

from support import REPO

from qa.app.pipeline import run_check
from qa.output.json import write_report
from qa.report.model import SCHEMA_VERSION, Report, schema_text
from qa.rules.finding import Finding
from qa.rules.spec import load_spec


def test_committed_json_schema_is_current() -> None:
    committed = (REPO / "schemas" / "report.schema.json").read_text()
    assert committed == schema_text(), "regenerate with: tsqa schema > schemas/report.schema.json"


def test_report_json_round_trips_through_the_model(example_root: Path, tmp_path: Path) -> None:
    report = run_check(example_root, load_spec("totalsegmentator-v2"), "test", subset=True)
    path = write_report(report, tmp_path)
    assert Report.model_validate(json.loads(path.read_text())) == report


def test_report_json_writes_labels_and_findings_as_tables_without_repeated_text(example_root: Path,
                                                                                tmp_path: Path) -> None:
    report = run_check(example_root, load_spec("totalsegmentator-v2"), "test", subset=True)
    written = json.loads(write_report(report, tmp_path).read_text())
    assert written["schema_version"] == SCHEMA_VERSION == 3
    labels = written["cases"][0]["labels"]
    assert set(labels) == {"columns", "rows", "empty"} and len(labels["rows"]) + len(labels["empty"]) == 117
    table = written["findings"]
    truncated = [f for f in report.findings if f.code == "LABEL_TRUNCATED"]
    assert len(table["rows"]) == len(report.findings) and len(truncated) > len(table["messages"])
    assert not any(f.path in m for f in truncated for m in table["messages"])


def test_a_schema_2_report_of_label_objects_and_finding_objects_is_still_read(example_root: Path) -> None:
    report = run_check(example_root, load_spec("totalsegmentator-v2"), "test", subset=True)
    old = json.loads(report.model_dump_json()) | {"schema_version": 2,
                                                  "findings": [f.model_dump(mode="json") for f in report.findings]}
    for case, written in zip(report.cases, old["cases"], strict=True):
        written["labels"] = {name: stats.model_dump(mode="json") for name, stats in case.labels.items()}
    assert Report.model_validate(old).model_copy(update={"schema_version": SCHEMA_VERSION}) == report


def test_findings_whose_paths_or_messages_do_not_follow_the_usual_shape_round_trip(example_root: Path) -> None:
    report = run_check(example_root, load_spec("totalsegmentator-v2"), "test", mode="quick", subset=True)
    odd = [Finding(code="FILE_UNEXPECTED", severity="warning", case="s0000", path="s0000: x/s0000/y: z",
                   message="s0000: x/s0000/y: z: s0000/ is odd", fingerprint="1"),
           Finding(code="FILE_UNEXPECTED", severity="warning", case="s00", path="s0000/a", message="s0000/a:",
                   fingerprint="2"),
           Finding(code="META_VALUE", severity="error", case=None, path=None, message="no path", fingerprint="3")]
    with_odd = report.model_copy(update={"findings": odd})
    assert Report.model_validate_json(with_odd.model_dump_json()).findings == odd


def test_report_write_leaves_no_temporary_files(example_root: Path, tmp_path: Path) -> None:
    report = run_check(example_root, load_spec("totalsegmentator-v2"), "test", mode="quick", subset=True)
    write_report(report, tmp_path)
    write_report(report, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_findings_carry_release_relative_slash_paths(example_root: Path) -> None:
    report = run_check(example_root, load_spec("totalsegmentator-v2"), "test", subset=True)
    assert [f.path for f in report.findings if f.code != "LABEL_TRUNCATED"] == ["s0000/ct.nii.gz"]
    assert all(f.path.startswith("s0000/segmentations/") for f in report.findings if f.code == "LABEL_TRUNCATED")
    assert report.cases[0].image.shape == [122, 101, 30]
    assert report.cases[0].image.axcodes == ["R", "A", "S"]


def test_readme_code_table_lists_every_code_with_its_default_severity() -> None:
    from qa.rules.codes import CODES

    readme = (REPO / "README.md").read_text()
    for code in CODES.values():
        assert f"| `{code.code}` | {code.severity} |" in readme, code.code


def test_report_of_a_nan_spacing_case_reads_back(tmp_path: Path) -> None:
    from qa.synth.sample import make_sample

    spec = load_spec("totalsegmentator-v2")
    sample = make_sample(tmp_path / "release", spec, cases=2, faults=["GEOM_SPACING:not_finite"])
    report = run_check(sample.root, spec, "test", subset=True)
    path = write_report(report, tmp_path / "out")
    again = Report.model_validate_json(path.read_bytes())
    assert "GEOM_SPACING" in again.summary.by_code
    assert None in next(c.image.spacing for c in again.cases if c.case == sample.faults[0].case)


def test_report_file_is_readable_by_others(example_root: Path, tmp_path: Path) -> None:
    report = run_check(example_root, load_spec("totalsegmentator-v2"), "test", mode="quick", subset=True)
    assert write_report(report, tmp_path).stat().st_mode & 0o044 == 0o044
