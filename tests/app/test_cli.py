"""The `tsqa` command line as CI and people use it: exit codes, one-line errors, the report, explain, sample, demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import report_data

from qa.app.cli import build_parser, main
from qa.app.pipeline import keep_run, open_history, open_output, run_check, write_outputs
from qa.output.files import Folder
from qa.report.model import Report
from qa.rules.codes import CODES
from qa.rules.spec import load_spec
from qa.source.fs import FolderSource
from qa.synth.sample import Sample, make_sample

SHAPE = (24, 20, 64)  # 64 slices: every vertebra and rib of the phantom has one of its own
SPEC = "totalsegmentator-v2"
STARTED_AT = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


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
    # the phantom's organs cut by the field of view are the only other findings
    found = [(f.code, f.path) for f in report.findings if f.code != "LABEL_TRUNCATED"]
    assert found == [(fault.code, fault.path) for fault in broken.faults]


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


def test_sample_with_a_fault_that_needs_a_population_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample", str(tmp_path / "made"), "--fault", "LABEL_OUTLIER:volume"]) == 2
    assert not (tmp_path / "made").exists()
    assert "population" in capsys.readouterr().err


def test_demo_exits_0_and_writes_its_report_under_reports_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    report = report_data(tmp_path / "reports" / "demo" / "report.json")
    assert (tmp_path / "reports" / "demo" / "report.html").is_file()
    found = {f["code"] for f in report["findings"]}
    assert {"FILE_CORRUPT", "GEOM_AFFINE_MISMATCH", "META_VALUE", "FILE_UNEXPECTED"} <= found
    assert "5 of 5 injected faults found" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_python_dash_m_qa_help_works() -> None:
    done = subprocess.run([sys.executable, "-P", "-m", "qa", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: tsqa")


def test_check_with_out_elsewhere_leaves_that_folders_parent_alone(tmp_path: Path) -> None:
    sample = make_sample(tmp_path / "release", load_spec("totalsegmentator-v2"), cases=1)
    out = tmp_path / "elsewhere" / "qa"
    out.parent.mkdir()
    assert main(["check", str(sample.root), "--subset", "--quiet", "--jobs", "1", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["qa"]
    assert {"report.json", "report.html"} <= {p.name for p in out.iterdir()}


def _unusable_out(tmp_path: Path, kind: str) -> Path:
    (tmp_path / "file").write_text("")
    if kind == "read-only folder":
        (tmp_path / "ro").mkdir(mode=0o555)
    return {"a file": tmp_path / "file", "a folder inside a file": tmp_path / "file" / "out",
            "read-only folder": tmp_path / "ro" / "out", "sysfs": Path("/sys/tsqa-out")}[kind]


@pytest.mark.parametrize(("kind", "says"), [
    ("a file", "exists and is not a folder"),
    ("a folder inside a file", "is under"),
    pytest.param("read-only folder", "cannot create --out", marks=pytest.mark.skipif(
        os.geteuid() == 0, reason="root writes into a read-only folder; the sysfs case covers it")),
    pytest.param("sysfs", "is in /sys, where tsqa writes nothing", marks=pytest.mark.skipif(
        not os.path.ismount("/sys"), reason="no sysfs: no folder even root cannot write into")),
])
def test_an_unusable_out_exits_2_before_the_scan(
    clean: Sample, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, says: str
) -> None:
    assert main(["check", str(clean.root), "--spec", SPEC, "--out", str(_unusable_out(tmp_path, kind))]) == 2
    err = capsys.readouterr().err
    # one line, and not the 'tsqa: spec' line printed when the scan starts
    assert err.startswith("tsqa: error: ") and len(err.strip().splitlines()) == 1 and says in err


def test_an_out_another_run_is_writing_exits_2_and_is_left_alone(
    clean: Sample, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Folder.open(tmp_path / "out") as other_run:
        other_run.lock()
        assert tsqa_check(clean, tmp_path, "--subset") == 2
    assert "is being written by another tsqa run" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def test_an_out_swapped_for_a_link_into_the_release_during_the_run_is_not_followed(
    clean: Sample, tmp_path: Path
) -> None:
    before = sorted(p.name for p in clean.root.iterdir())
    spec = load_spec(SPEC)
    with open_output(tmp_path / "out", clean.root) as folder:
        report = run_check(clean.root, spec, "test", mode="quick", subset=True)
        (tmp_path / "out").rename(tmp_path / "moved")
        (tmp_path / "out").symlink_to(clean.root)
        write_outputs(report, FolderSource(clean.root), spec, folder)
    assert sorted(p.name for p in clean.root.iterdir()) == before
    assert {"report.json", "report.html"} <= {p.name for p in (tmp_path / "moved").iterdir()}


def test_an_out_reached_through_a_link_into_the_release_is_refused(
    clean: Sample, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "alias").symlink_to(clean.root)
    assert main(["check", str(clean.root), "--subset", "--out", str(tmp_path / "alias" / "reports")]) == 2
    assert "inside the release" in capsys.readouterr().err
    assert not (clean.root / "reports").exists()


def write_waivers(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


@pytest.fixture
def no_scan(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every release scan, to show that a usage error stops tsqa before it reads the release."""
    from qa.app import pipeline

    scanned: list[str] = []
    real = pipeline.scan_release
    monkeypatch.setattr(pipeline, "scan_release", lambda source, *a, **k: scanned.append(source.location) or real(
        source, *a, **k))
    return scanned


@pytest.mark.parametrize(("setup", "message"), [
    ("other spec", "records a check with spec totalsegmentator-v3, this check uses totalsegmentator-v2"),
    ("unreadable baseline", "cannot read baseline"),
    ("not a baseline", "is not a tsqa baseline"),
    ("bad waivers", "waivers.yaml:3: waiver 1: expires: Input should be a valid date"),
    ("waivers of another spec", "are for spec totalsegmentator-v1, this check uses totalsegmentator-v2"),
    ("junit inside the release", "--junit"),
], ids=["baseline of another spec", "unreadable baseline", "not a baseline", "bad waivers", "waivers of another spec",
         "junit inside the release"])
def test_a_bad_baseline_waivers_or_output_is_a_usage_error_before_any_scanning(
    clean: Sample, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_scan: list[str], setup: str, message: str
) -> None:
    from qa.rules.baseline import baseline_of

    options: list[str] = []
    if setup == "other spec":
        other = baseline_of([], "totalsegmentator-v3", "/r", "quick", STARTED_AT, "0.2")
        (tmp_path / "b.json").write_text(other.model_dump_json())
        options = ["--baseline", str(tmp_path / "b.json")]
    elif setup == "unreadable baseline":
        options = ["--baseline", str(tmp_path / "missing.json")]
    elif setup == "not a baseline":
        options = ["--baseline", str(write_waivers(tmp_path / "b.json", "[]"))]
    elif setup == "bad waivers":
        body = "waivers:\n  - code: FILE_CORRUPT\n    expires: 2027-13-01\n    reason: x\n"
        options = ["--waivers", str(write_waivers(tmp_path / "waivers.yaml", body))]
    elif setup == "waivers of another spec":
        body = "spec: totalsegmentator-v1\nwaivers: []\n"
        options = ["--waivers", str(write_waivers(tmp_path / "waivers.yaml", body))]
    else:
        options = ["--junit", str(clean.root / "junit.xml")]
    assert tsqa_check(clean, tmp_path, "--subset", *options) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert no_scan == [] and not (tmp_path / "out").exists()


def test_check_help_says_a_baseline_makes_fail_on_count_only_new_findings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "with --baseline only findings new against the baseline count" in text
    assert "--waivers" in text and "--junit" in text and "--sarif" in text and "--write-baseline" in text


def test_baseline_command_records_a_reports_findings_by_fingerprint(broken: Sample, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from qa.rules.baseline import load_baseline

    tsqa_check(broken, tmp_path, "--subset")
    assert main(["baseline", str(tmp_path / "out" / "report.json"), "-o", str(tmp_path / "b.json")]) == 0
    made = load_baseline(tmp_path / "b.json")
    report = Report.model_validate_json((tmp_path / "out" / "report.json").read_text())
    assert made.spec_id == SPEC and [e.fingerprint for e in made.entries] == [f.fingerprint for f in report.findings]
    found = len(report.findings)
    assert f"{found} findings ({found} fingerprints)" in capsys.readouterr().out


def test_baseline_of_something_that_is_not_a_report_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text('{"tool": "other"}')
    assert main(["baseline", str(tmp_path / "x.json"), "-o", str(tmp_path / "b.json")]) == 2
    assert "is not a tsqa report" in capsys.readouterr().err and not (tmp_path / "b.json").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["diff", "{tmp}/a.json"], "give two reports (OLD NEW) or --previous"),
    (["diff", "{tmp}/a.json", "{tmp}/b.json", "--previous"], "not both"),
    (["diff", "--previous", "--reports", "{tmp}/none"], "no runs in"),
    (["diff", "{tmp}/a.json", "{tmp}/b.json"], "cannot read"),
])
def test_diff_usage_errors_exit_2_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                              message: str) -> None:
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


def test_diff_previous_of_a_release_with_one_run_exits_2(clean: Sample, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    main(["check", str(clean.root), "--spec", SPEC, "--subset", "--quiet", "--jobs", "1", "--mode", "quick"])
    assert main(["diff", "--previous", clean.root.name]) == 2
    assert "has no run before its latest" in capsys.readouterr().err


def test_releases_named_a_b_and_a_underscore_b_keep_histories_of_their_own_found_by_name(
        clean: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    spaced, underscored = (shutil.copytree(clean.root, tmp_path / name) for name in ("a b", "a_b"))
    for root in (spaced, spaced, underscored):
        main(["check", str(root), "--spec", SPEC, "--subset", "--quiet", "--jobs", "1", "--mode", "quick"])
    history = tmp_path / "reports" / SPEC
    assert sorted(p.name for p in history.iterdir()) == ["a_b", "a~20b"]
    assert main(["diff", "--previous", "a b"]) == 0 and "0 new, 0 fixed" in capsys.readouterr().out
    assert main(["diff", "--previous", "a~20b"]) == 0
    assert main(["diff", "--previous", "a_b"]) == 2 and "has no run before its latest" in capsys.readouterr().err


def test_out_writes_exactly_there_and_no_history_files(clean: Sample, tmp_path: Path) -> None:
    assert tsqa_check(clean, tmp_path, "--subset") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_explain_says_the_waiver_codes_come_from_waivers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "QA_WAIVER_EXPIRED"]) == 0
    assert capsys.readouterr().out.startswith("QA_WAIVER_EXPIRED (warning by default, made by --waivers)")


def test_render_of_a_run_in_the_history_keeps_its_link_to_the_index(clean: Sample, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    main(["check", str(clean.root), "--spec", SPEC, "--subset", "--quiet", "--jobs", "1", "--mode", "quick"])
    (run,) = (tmp_path / "reports" / SPEC / clean.root.name).glob("*T*Z")
    (run / "report.html").unlink()
    assert main(["render", str(run / "report.json")]) == 0
    assert 'href="../../../index.html"' in (run / "report.html").read_text()


def test_a_reports_folder_that_cannot_be_one_exits_2_before_the_scan(
    clean: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("reports").write_text("")
    assert main(["check", str(clean.root), "--spec", SPEC, "--subset"]) == 2
    err = capsys.readouterr().err
    assert err == "tsqa: error: the reports folder reports exists and is not a folder\n"


def test_a_history_folder_swapped_for_a_link_into_the_release_during_the_run_is_not_followed(
    clean: Sample, tmp_path: Path
) -> None:
    before = sorted(p.name for p in clean.root.iterdir())
    spec = load_spec(SPEC)
    source = FolderSource(clean.root)
    reports, history = open_history(tmp_path / "reports", spec, source, clean.root)
    with reports, history:
        report = run_check(source, spec, "test", mode="quick", subset=True)
        history.path.rename(tmp_path / "moved")
        history.path.symlink_to(clean.root)
        path = keep_run(report, source, spec, reports, history)
    assert sorted(p.name for p in clean.root.iterdir()) == before
    [run] = [p for p in (tmp_path / "moved").iterdir() if p.is_dir()]
    assert {"report.json", "report.html", "run.json"} <= {p.name for p in run.iterdir()}
    assert (tmp_path / "moved" / "latest.json").is_file() and path.name == "report.json"
