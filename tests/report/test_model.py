"""The report model: its committed JSON Schema is current, and reports are written atomically outside the release."""

from __future__ import annotations

import json
from pathlib import Path

from support import REPO

from qa.app.pipeline import run_check
from qa.output.json import write_report
from qa.report.model import Report, schema_text
from qa.rules.spec import load_spec


def test_committed_json_schema_is_current() -> None:
    committed = (REPO / "schemas" / "report.schema.json").read_text()
    assert committed == schema_text(), "regenerate with: tsqa schema > schemas/report.schema.json"


def test_report_json_round_trips_through_the_model(example_root: Path, tmp_path: Path) -> None:
    report = run_check(example_root, load_spec("totalsegmentator-v2"), "test", subset=True)
    path = write_report(report, tmp_path)
    assert Report.model_validate(json.loads(path.read_text())) == report


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
