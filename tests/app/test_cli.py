"""The `tsqa` command line as CI and people use it: exit codes, one-line errors, the report, explain, sample, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qa.app.cli import build_parser, main
from qa.report.model import Report
from qa.rules.codes import CODES
from qa.rules.spec import load_spec
from qa.synth.sample import Sample, make_sample

SHAPE = (24, 20, 32)
SPEC = "totalsegmentator-v2"


def sample_with(tmp_path_factory: pytest.TempPathFactory, *faults: str) -> Sample:
    root = tmp_path_factory.mktemp("release") / "release"
    return make_sample(root, load_spec(SPEC), cases=2, faults=faults, shape=SHAPE)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return sample_with(tmp_path_factory)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return sample_with(tmp_path_factory, "FILE_CORRUPT:truncated")


@pytest.fixture(scope="module")
def junk(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """Only warnings: macOS junk files."""
    return sample_with(tmp_path_factory, "FILE_UNEXPECTED")


def tsqa_check(sample: Sample, tmp_path: Path, *options: str) -> int:
    """`tsqa check` with its reports in tmp_path/out (the history index goes to tmp_path)."""
    return main(["check", str(sample.root), "--spec", SPEC, "--out", str(tmp_path / "out"), "--jobs", "1", "--quiet",
                 *options])


def test_clean_subset_exits_0(clean: Sample, tmp_path: Path) -> None:
    assert tsqa_check(clean, tmp_path, "--subset") == 0


def test_partial_copy_without_subset_exits_1(clean: Sample, tmp_path: Path) -> None:
    assert tsqa_check(clean, tmp_path) == 1


def test_error_finding_exits_1(broken: Sample, tmp_path: Path) -> None:
    assert tsqa_check(broken, tmp_path, "--subset") == 1


def test_fail_on_never_exits_0_despite_errors(broken: Sample, tmp_path: Path) -> None:
    assert tsqa_check(broken, tmp_path, "--subset", "--fail-on", "never") == 0


def test_warnings_pass_by_default(junk: Sample, tmp_path: Path) -> None:
    assert tsqa_check(junk, tmp_path, "--subset") == 0


def test_fail_on_warning_exits_1_on_warnings(junk: Sample, tmp_path: Path) -> None:
    assert tsqa_check(junk, tmp_path, "--subset", "--fail-on", "warning") == 1


@pytest.mark.parametrize("argv", [
    ["check", "{tmp}/no-such-release"],
    ["check", "{release}", "--spec", "totalsegmentator-v9"],
    ["check", "{release}", "--fail-on", "sometimes"],
    ["check", "{release}", "--jobs", "0"],
    ["check", "{release}", "--max-memory", "lots"],
    ["check", "{release}", "--max-memory", "64M"],
    ["frobnicate"],
], ids=["missing path", "unknown spec", "bad fail-on", "zero jobs", "not a memory size", "memory below one worker's",
        "unknown command"])
def test_usage_error_exits_2_with_one_line_and_no_traceback(
    clean: Sample, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    args = [a.format(tmp=tmp_path, release=clean.root) for a in argv]
    assert main([*args, "--out", str(tmp_path / "out")] if args[0] == "check" else args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tsqa: error:")
    assert "Traceback" not in err


def test_max_memory_takes_binary_units(clean: Sample, tmp_path: Path) -> None:
    assert tsqa_check(clean, tmp_path, "--subset", "--max-memory", "1.5GiB") == 0
    assert build_parser().parse_args(["check", "R", "--max-memory", "768m"]).max_memory == 768 << 20
    assert build_parser().parse_args(["check", "R"]).max_memory == 1 << 30


def test_out_inside_the_release_is_refused_with_2(clean: Sample, capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(p.name for p in clean.root.iterdir())
    assert main(["check", str(clean.root), "--subset", "--out", str(clean.root / "reports")]) == 2
    assert "inside the release" in capsys.readouterr().err
    assert sorted(p.name for p in clean.root.iterdir()) == before


def test_report_json_is_written_and_valid_against_the_report_model(broken: Sample, tmp_path: Path) -> None:
    tsqa_check(broken, tmp_path, "--subset")
    report = Report.model_validate_json((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report.spec_id == SPEC and report.subset
    assert [(f.code, f.path) for f in report.findings] == [(fault.code, fault.path) for fault in broken.faults]


def test_explain_lists_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == set(CODES)


def test_explain_explains_one_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "geom_affine_mismatch"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GEOM_AFFINE_MISMATCH") and CODES["GEOM_AFFINE_MISMATCH"].title in out
    assert "How to fix" in out


def test_explain_unknown_code_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "NOPE"]) == 2
    assert "NOPE" in capsys.readouterr().err


def test_sample_writes_a_release_with_the_asked_faults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "made"
    assert main(["sample", str(target), "--cases", "2", "--fault", "FILE_MISSING"]) == 0
    spec = load_spec(SPEC)
    assert (target / spec.meta.file).is_file() and (target / "s0000" / spec.image).is_file()
    assert not (target / "s0001" / spec.mask_file("liver")).exists()
    assert "FILE_MISSING: s0001/segmentations/liver.nii.gz" in capsys.readouterr().out


def test_sample_with_an_unknown_fault_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample", str(tmp_path / "made"), "--fault", "NOPE"]) == 2
    assert not (tmp_path / "made").exists()
    assert "NOPE" in capsys.readouterr().err


def test_demo_exits_0_and_writes_its_report_under_reports_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    report = json.loads((tmp_path / "reports" / "demo" / "report.json").read_text(encoding="utf-8"))
    assert (tmp_path / "reports" / "demo" / "report.html").is_file()
    found = {f["code"] for f in report["findings"]}
    assert {"FILE_CORRUPT", "GEOM_AFFINE_MISMATCH", "META_VALUE", "FILE_UNEXPECTED"} <= found
    assert "5 of 5 injected faults found" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_python_dash_m_qa_help_works() -> None:
    done = subprocess.run([sys.executable, "-m", "qa", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: tsqa")


def test_check_with_out_elsewhere_leaves_that_folders_parent_alone(tmp_path: Path) -> None:
    sample = make_sample(tmp_path / "release", load_spec("totalsegmentator-v2"), cases=1)
    out = tmp_path / "elsewhere" / "qa"
    assert main(["check", str(sample.root), "--subset", "--quiet", "--jobs", "1", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["qa"]
    assert {"report.json", "report.html"} <= {p.name for p in out.iterdir()}
