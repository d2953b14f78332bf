"""CI gating on real files, as a maintainer runs it: check, baseline, a new fault, waive it, let the waiver expire;
the CI formats of those runs, and the diff of two runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import JUnitXml, Skipped
from support import sarif_problems

from qa.app.cli import main
from qa.output.json import read_report
from qa.output.runs import latest_run, release_dir, runs
from qa.report.model import Report
from qa.rules.finding import fails
from qa.rules.spec import load_spec
from qa.synth.sample import Sample, inject_faults, make_sample

SPEC = "totalsegmentator-v2"
SHAPE = (24, 20, 32)
KNOWN = ["GEOM_AFFINE_INVALID:not_orthonormal", "META_VALUE:allowed"]  # accepted on day one


def tsqa_check(sample: Sample, *options: str) -> int:
    return main(["check", str(sample.root), "--spec", SPEC, "--subset", "--mode", "quick", "--jobs", "1", "--quiet",
                 *options])


def latest(sample: Sample) -> Report:
    return read_report(latest_run(release_dir(Path("reports"), SPEC, str(sample.root))) / "report.json")


def failing(report: Report) -> list[tuple[str, str | None]]:
    s = report.summary
    return [(f.code, f.path) for f in report.findings if fails(f, s.fail_on, s.counted == "new")]


def write_waivers(path: Path, target: str, expires: str) -> Path:
    path.write_text(f"spec: {SPEC}\nwaivers:\n  - code: FILE_CORRUPT\n    path: '{target}'\n"
                    f"    reason: re-export of this mask is under way (DATA-12)\n    expires: {expires}\n")
    return path


@pytest.fixture
def workplace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sample:
    """A sample release with known errors, checked from tmp_path (its reports/ history is there)."""
    sample = make_sample(tmp_path / "release", load_spec(SPEC), cases=3, faults=KNOWN, shape=SHAPE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return sample


def test_the_gate_fails_on_a_new_fault_alone_until_waived_and_again_once_the_waiver_expires(
    workplace: Sample, tmp_path: Path
) -> None:
    sample = workplace
    # day one: the known errors fail a strict gate; the run is recorded as the baseline
    assert tsqa_check(sample, "--write-baseline", "baseline.json") == 1
    known = {(f.code, f.path) for f in latest(sample).findings}
    assert {code.split(":")[0] for code, _ in known} == {"GEOM_AFFINE_INVALID", "META_VALUE"}
    assert tsqa_check(sample, "--baseline", "baseline.json") == 0

    (fault,) = inject_faults(sample, load_spec(SPEC), ["FILE_CORRUPT:truncated"])
    assert tsqa_check(sample, "--baseline", "baseline.json") == 1
    report = latest(sample)
    assert failing(report) == [(fault.code, fault.path)]
    assert {(f.code, f.path) for f in report.findings if f.baseline == "unchanged"} == known
    assert report.summary.counted == "new" and report.summary.baseline.new == 1

    waivers = write_waivers(tmp_path / "waivers.yaml", fault.path, "2027-01-31")
    assert tsqa_check(sample, "--baseline", "baseline.json", "--waivers", str(waivers), "--today", "2027-01-31") == 0
    (waived,) = [f for f in latest(sample).findings if f.waived is not None]
    assert (waived.path, waived.waived.reason) == (fault.path, "re-export of this mask is under way (DATA-12)")

    assert tsqa_check(sample, "--baseline", "baseline.json", "--waivers", str(waivers), "--today", "2027-02-01") == 1
    report = latest(sample)
    assert failing(report) == [(fault.code, fault.path)]
    (expired,) = [f for f in report.findings if f.code == "QA_WAIVER_EXPIRED"]
    assert (expired.severity, expired.details["line"], expired.details["matched"]) == ("warning", 3, 1)
    assert report.waivers.entries[0].state == "expired"


def test_a_waiver_that_matches_nothing_is_reported_unused(workplace: Sample, tmp_path: Path) -> None:
    waivers = write_waivers(tmp_path / "waivers.yaml", "s9999/*", "2099-12-31")
    assert tsqa_check(workplace, "--waivers", str(waivers), "--fail-on", "never") == 0
    (unused,) = [f for f in latest(workplace).findings if f.code.startswith("QA_WAIVER")]
    assert (unused.code, unused.severity, unused.case, unused.path) == ("QA_WAIVER_UNUSED", "info", None, None)
    assert unused.details["waiver"] == "FILE_CORRUPT path=s9999/*"


def test_ci_files_of_a_baseline_run_name_the_new_fault_alone(workplace: Sample, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    sample = workplace
    tsqa_check(sample, "--write-baseline", "baseline.json")
    (fault,) = inject_faults(sample, load_spec(SPEC), ["FILE_CORRUPT:truncated"])
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    capsys.readouterr()
    assert tsqa_check(sample, "--baseline", "baseline.json", "--junit", "junit.xml", "--sarif", "tsqa.sarif") == 1

    annotations = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::")]
    assert annotations == [f"::error file=release/{fault.path},title=tsqa FILE_CORRUPT%3Atruncated (new)::"
                           + next(f.message for f in latest(sample).findings if f.path == fault.path)]
    assert "#### New findings (1)" in (tmp_path / "summary.md").read_text()

    suites = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    failed = [(suite.name, case.name) for suite in suites for case in suite
              if any(type(r).__name__ == "Failure" for r in case.result)]
    assert failed == [("files", fault.case)]

    log = json.loads((tmp_path / "tsqa.sarif").read_text())
    assert sarif_problems(log) == []
    states = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r["baselineState"]
              for r in log["runs"][0]["results"]}
    assert [uri for uri, state in states.items() if state == "new"] == [f"release/{fault.path}"]


def test_waived_findings_are_skipped_tests_and_suppressed_results(workplace: Sample, tmp_path: Path) -> None:
    sample = workplace
    (fault,) = inject_faults(sample, load_spec(SPEC), ["FILE_CORRUPT:truncated"])
    waivers = write_waivers(tmp_path / "waivers.yaml", fault.path, "2099-12-31")
    tsqa_check(sample, "--waivers", str(waivers), "--junit", "junit.xml", "--sarif", "tsqa.sarif")
    suites = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    skipped = [(suite.name, case.name, case.result[0].message) for suite in suites for case in suite
               if case.result and isinstance(case.result[0], Skipped)]
    assert skipped == [("files", fault.case, "waived: re-export of this mask is under way (DATA-12)")]
    log = json.loads((tmp_path / "tsqa.sarif").read_text())
    assert sarif_problems(log) == []
    suppressed = [r for r in log["runs"][0]["results"] if "suppressions" in r]
    assert [(r["ruleId"], s["status"]) for r in suppressed for s in r["suppressions"]] == [("FILE_CORRUPT", "accepted")]


def decode(value: str) -> str:
    return value.replace("%2C", ",").replace("%3A", ":").replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


def test_annotations_of_a_hostile_file_name_are_escaped(workplace: Sample, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    name = "s0000/segmentations/100%,a:b::error::x\r\n::warning::y.nii.gz"
    (workplace.root / name).write_bytes(b"junk")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    capsys.readouterr()
    tsqa_check(workplace, "--fail-on", "never")
    lines = capsys.readouterr().out.splitlines()
    (line,) = [line for line in lines if "FILE_UNEXPECTED" in line]
    # the runner ends the properties at the first '::' and splits them at ',' and the first '='
    properties, message = line.removeprefix("::warning ").split("::", 1)
    fields = dict(p.split("=", 1) for p in properties.split(","))
    assert sorted(fields) == ["file", "title"] and ":" not in properties
    shown = name.replace("\r\n", "\\r\\n")  # a finding holds control characters escaped
    assert decode(fields["file"]) == f"release/{shown}"
    assert decode(message).startswith(shown)


def test_diff_of_the_previous_run_reports_the_injected_fault(workplace: Sample, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    sample = workplace
    tsqa_check(sample)
    (fault,) = inject_faults(sample, load_spec(SPEC), ["FILE_CORRUPT:truncated"])
    tsqa_check(sample)
    capsys.readouterr()
    assert main(["diff", "--previous", "--out", "diff"]) == 1
    diff = json.loads((tmp_path / "diff" / "diff.json").read_text())
    assert [(f["code"], f["path"]) for f in diff["new_findings"]] == [(fault.code, fault.path)]
    assert diff["fixed_findings"] == [] and len(diff["unchanged"]) == len(latest(sample).findings) - 1
    assert fault.path in (tmp_path / "diff" / "diff.md").read_text()
    assert fault.path in (tmp_path / "diff" / "diff.html").read_text()
    first, second = runs(release_dir(Path("reports"), SPEC, str(sample.root)))
    assert main(["diff", str(second), str(first), "--fail-on", "error"]) == 0, "the fault is fixed going back"
    assert "#### Fixed findings (1)" in capsys.readouterr().out
