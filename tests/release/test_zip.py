"""A release checked inside its zip archive: the same findings as the extracted folder, the archive's own findings
(checksum, an interrupted download, a damaged structure, hostile members) made on real archives, and the command
line on a zip."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest
import yaml
from support import report_data, without_cut_organs

from qa.app.cli import main
from qa.app.pipeline import run_check
from qa.report.model import Report
from qa.rules.codes import SEVERITY_RANK
from qa.rules.spec import Archive, ReleaseSpec, load_spec
from qa.source.zip import ZipSource
from qa.synth.archive import ARCHIVE_FAULT_NAMES, ARCHIVE_FAULTS, ZippedSample, zip_sample
from qa.synth.sample import Sample, make_sample

SHAPE = (24, 20, 64)  # 64 slices: every vertebra and rib of the phantom has one of its own
TOP = "Totalsegmentator_dataset_v201"
# File faults a zip holds as a folder does, in different cases (the k-th fault goes to the k-th case from the end).
FOLDER_FAULTS = ["FILE_CORRUPT:size_mismatch", "FILE_CORRUPT:stream", "FILE_UNEXPECTED:os_junk",
                 "FILE_UNEXPECTED:link", "GEOM_AFFINE_MISMATCH:both", "LABEL_VALUES", "META_VALUE:allowed"]


@pytest.fixture(scope="module")
def v2() -> ReleaseSpec:
    return load_spec("totalsegmentator-v2")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory, v2: ReleaseSpec) -> Sample:
    return make_sample(tmp_path_factory.mktemp("faulty") / "release", v2, cases=len(FOLDER_FAULTS),
                       faults=FOLDER_FAULTS, shape=SHAPE)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, v2: ReleaseSpec) -> Sample:
    return make_sample(tmp_path_factory.mktemp("clean") / "release", v2, cases=5, shape=SHAPE)


def check(source: Path | ZipSource, spec: ReleaseSpec, mode: str = "quick", jobs: int = 1, **options) -> Report:
    return run_check(source, spec, "test", mode=mode, jobs=jobs, subset=True, **options)


def zipped(sample: Sample, spec: ReleaseSpec, dest: Path, **options) -> ZippedSample:
    return zip_sample(sample, spec, dest, **options)


def open_zip(made: ZippedSample) -> ZipSource:
    return ZipSource(made.path, made.spec.case_pattern)


@pytest.fixture(scope="module")
def extracted(faulty: Sample, v2: ReleaseSpec) -> dict[str, Report]:
    return {mode: check(faulty.root, v2, mode) for mode in ("quick", "deep")}


@pytest.mark.parametrize("top_folder", [None, TOP])
@pytest.mark.parametrize("method", ["stored", "deflated"])
@pytest.mark.parametrize("zip64", [False, True])
@pytest.mark.parametrize("mode", ["quick", "deep"])
def test_zipped_and_extracted_give_the_same_findings_and_measures(
    tmp_path: Path, faulty: Sample, v2: ReleaseSpec, extracted: dict[str, Report], top_folder: str | None,
    method: str, zip64: bool, mode: str
) -> None:
    made = zipped(faulty, v2, tmp_path / "release.zip", top_folder=top_folder, method=method, zip64=zip64)
    report = check(open_zip(made), made.spec, mode, jobs=2 if zip64 else 1)
    folder = extracted[mode]
    assert {f.code for f in folder.findings} >= {"FILE_CORRUPT", "FILE_UNEXPECTED", "GEOM_AFFINE_MISMATCH"}
    assert [f.model_dump() for f in report.findings] == [f.model_dump() for f in folder.findings]
    assert [c.model_dump() for c in report.cases] == [c.model_dump() for c in folder.cases]
    assert (report.classes, report.overlaps) == (folder.classes, folder.overlaps)
    assert report.archive.checksum == "matches" and report.archive.top_folder == top_folder


@pytest.mark.parametrize("fault", ARCHIVE_FAULT_NAMES)
def test_archive_fault_is_reported_with_its_code_subcode_path_and_severity(
    tmp_path: Path, clean: Sample, v2: ReleaseSpec, fault: str
) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip", faults=[fault])
    report = check(open_zip(made), made.spec)
    assert made.faults
    for injected in made.faults:
        found = [f for f in report.findings if (f.code, f.case, f.path) == (injected.code, None, injected.path)]
        assert {(f.subcode, f.severity) for f in found} == {(injected.subcode, v2.severity(injected.code,
                                                                                          injected.subcode))}
    injected = {(f.code, f.path) for f in made.faults}
    other = [f for f in report.findings if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["warning"]
             and (f.code, f.path) not in injected and f.code not in ARCHIVE_FAULTS[fault].collateral]
    assert other == []


def published_as(made: ZippedSample, **change) -> ReleaseSpec:
    """The spec with the archive published under other values: a record that the download does not match."""
    entry = Archive(name=made.path.name, size=made.path.stat().st_size,
                    md5=hashlib.md5(made.path.read_bytes()).hexdigest())
    return made.spec.model_copy(update={"archives": [entry.model_copy(update=change)]})


def only_archive_findings(report: Report) -> list[tuple]:
    return [(f.code, f.subcode, f.severity) for f in report.findings if f.code.startswith("ARCHIVE_")]


def test_an_archive_whose_md5_differs_from_the_published_is_an_error(tmp_path: Path, clean: Sample,
                                                                      v2: ReleaseSpec) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip")
    report = check(open_zip(made), published_as(made, md5="0" * 32))
    assert only_archive_findings(report) == [("ARCHIVE_CHECKSUM", "digest", "error")]
    (finding,) = report.findings
    assert finding.details["md5"] == hashlib.md5(made.path.read_bytes()).hexdigest()
    assert finding.details["published_md5"] == "0" * 32
    assert report.archive.checksum == "differs"


def test_an_archive_whose_size_differs_from_the_published_is_an_error(tmp_path: Path, clean: Sample,
                                                                      v2: ReleaseSpec) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip")
    size = made.path.stat().st_size
    report = check(open_zip(made), published_as(made, size=size + 4096))
    assert only_archive_findings(report) == [("ARCHIVE_CHECKSUM", "size", "error")]
    assert report.findings[0].details["missing"] == 4096
    assert "4,096 bytes missing" in report.findings[0].message


def test_an_archive_the_spec_does_not_publish_is_info(tmp_path: Path, clean: Sample, v2: ReleaseSpec) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip")
    report = check(open_zip(made), published_as(made, name="another.zip", size=1))
    assert only_archive_findings(report) == [("ARCHIVE_UNVERIFIED", "unknown", "info")]
    assert report.archive.checksum == "unpublished"


def test_a_renamed_download_is_checked_against_the_archive_of_its_size(tmp_path: Path, clean: Sample,
                                                                       v2: ReleaseSpec) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip")
    report = check(open_zip(made), published_as(made, name="Totalsegmentator_dataset_v201.zip", md5="f" * 32))
    assert only_archive_findings(report) == [("ARCHIVE_CHECKSUM", "digest", "error")]
    assert "taken for Totalsegmentator_dataset_v201.zip" in report.findings[0].message


def test_without_checksum_the_size_is_compared_and_the_skip_is_reported(tmp_path: Path, clean: Sample,
                                                                        v2: ReleaseSpec) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip")
    report = check(open_zip(made), made.spec, checksum=False)
    assert only_archive_findings(report) == [("ARCHIVE_UNVERIFIED", "skipped", "info")]
    assert (report.archive.checksum, report.archive.md5) == ("skipped", None)
    wrong_size = check(open_zip(made), published_as(made, size=1), checksum=False)
    assert only_archive_findings(wrong_size) == [("ARCHIVE_CHECKSUM", "size", "error")]


def test_a_zip_path_is_checked_as_the_archive_it_is(tmp_path: Path, clean: Sample, v2: ReleaseSpec) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip", top_folder=TOP)
    report = check(made.path, made.spec)
    assert (report.archive.name, report.archive.top_folder, report.findings) == ("release.zip", TOP, [])


def test_the_md5_computed_beside_the_scan_is_the_files_and_its_progress_is_told(
    tmp_path: Path, clean: Sample, v2: ReleaseSpec
) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip", zip64=True)
    told: list[tuple[int, int]] = []
    report = check(open_zip(made), made.spec, mode="deep", jobs=2, checksum_progress=lambda *done: told.append(done))
    assert report.archive.md5 == hashlib.md5(made.path.read_bytes()).hexdigest()
    assert report.archive.checksum == "matches"
    size = made.path.stat().st_size
    assert told and told[-1] == (size, size) and all(0 <= done <= total == size for done, total in told)


@pytest.fixture(scope="module")
def eight(tmp_path_factory: pytest.TempPathFactory, v2: ReleaseSpec) -> Sample:
    """Enough cases that the last 30% of their archive holds whole cases, beside its central directory."""
    return make_sample(tmp_path_factory.mktemp("eight") / "release", v2, cases=8, shape=SHAPE)


@pytest.mark.parametrize("method", ["stored", "deflated"])
def test_a_zip_cut_at_70_percent_reports_the_intact_cases_and_its_first_incomplete_member(
    tmp_path: Path, eight: Sample, v2: ReleaseSpec, method: str
) -> None:
    made = zipped(eight, v2, tmp_path / "release.zip", faults=["ARCHIVE_TRUNCATED:member"], method=method)
    report = check(open_zip(made), made.spec, mode="deep")
    (cut,) = [f for f in report.findings if f.code == "ARCHIVE_TRUNCATED"]
    cut_case = cut.path.split("/")[0]
    assert cut.path == made.faults[0].path and cut.details["missing"] > 0
    intact = [case for case in eight.cases if case < cut_case]
    missing = [case for case in eight.cases if case > cut_case]
    found = {c: len([f for f in without_cut_organs(report.findings) if f.case == c]) for c in intact}
    assert len(intact) >= 2 and missing and found == dict.fromkeys(intact, 0)
    assert {f.case for f in report.findings if f.code == "CASE_MISSING"} == set(missing)
    assert any(f.code == "FILE_CORRUPT" and f.path == cut.path for f in report.findings)
    assert report.archive.complete is False


def test_a_member_failing_its_zip_crc_is_found_by_the_deep_pass_only(tmp_path: Path, clean: Sample,
                                                                     v2: ReleaseSpec) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip", method="stored")
    path = f"{clean.cases[0]}/{v2.image}"
    info = zipfile.ZipFile(made.path).getinfo(path)
    data = bytearray(made.path.read_bytes())
    data[info.header_offset + 30 + len(path) + info.compress_size // 2] ^= 0xFF
    made.path.write_bytes(bytes(data))
    spec = published_as(made)
    assert without_cut_organs(check(open_zip(made), spec).findings) == []
    deep = check(open_zip(made), spec, mode="deep")
    [corrupt] = without_cut_organs(deep.findings)
    assert (corrupt.code, corrupt.subcode, corrupt.path) == ("FILE_CORRUPT", "stream", path)
    assert "zip CRC32 mismatch" in corrupt.details["reason"]


def test_a_symbolic_link_member_is_reported_and_never_followed(tmp_path: Path, clean: Sample, v2: ReleaseSpec) -> None:
    os.symlink("/etc/passwd", clean.root / clean.cases[0] / "passwd.nii.gz")
    try:
        made = zipped(clean, v2, tmp_path / "release.zip")
    finally:
        (clean.root / clean.cases[0] / "passwd.nii.gz").unlink()
    report = check(open_zip(made), made.spec)
    assert [(f.code, f.subcode, f.path) for f in report.findings] == [
        ("FILE_UNEXPECTED", "link", f"{clean.cases[0]}/passwd.nii.gz")]


def listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_tsqa_check_on_a_zip_detects_the_spec_and_writes_nothing_beside_the_archive(
    tmp_path: Path, clean: Sample, v2: ReleaseSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    made = zipped(clean, v2, downloads / "release.zip", top_folder=TOP, faults=["ARCHIVE_MEMBER:parent"])
    before = listing(downloads)
    code = main(["check", str(made.path), "--out", str(tmp_path / "out"), "--subset", "--jobs", "2"])
    assert code == 1  # the hostile member is an error
    assert listing(downloads) == before
    report = report_data(tmp_path / "out" / "report.json")
    assert report["spec_id"] == "totalsegmentator-v2" and report["archive"]["top_folder"] == TOP
    assert {f["code"] for f in without_cut_organs(report["findings"])} == {"ARCHIVE_MEMBER", "ARCHIVE_UNVERIFIED"}
    captured = capsys.readouterr()
    assert "detected totalsegmentator-v2" in captured.err
    assert "archive: release.zip" in captured.out and "no published size or MD5" in captured.out


def test_tsqa_check_no_checksum_compares_the_size_and_says_the_md5_was_skipped(
    tmp_path: Path, clean: Sample, v2: ReleaseSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    made = zipped(clean, v2, tmp_path / "release.zip")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(made.spec.model_dump(mode="json")))
    code = main(["check", str(made.path), "--spec", str(spec_file), "--out", str(tmp_path / "out"), "--subset",
                 "--jobs", "1", "--no-checksum"])
    assert code == 0
    report = report_data(tmp_path / "out" / "report.json")
    [unverified] = without_cut_organs(report["findings"])
    assert (unverified["code"], unverified["subcode"]) == ("ARCHIVE_UNVERIFIED", "skipped")
    assert "its size matches the published one" in unverified["message"]
    assert (report["archive"]["checksum"], report["archive"]["md5"]) == ("skipped", None)
    assert "MD5 not computed (--no-checksum)" in capsys.readouterr().out


def test_a_file_that_is_neither_folder_nor_zip_is_a_usage_error(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.zip").write_text("not an archive")
    assert main(["check", str(tmp_path / "notes.zip"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "neither a folder nor a zip archive" in err
    assert not (tmp_path / "out").exists()
