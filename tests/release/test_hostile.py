"""Hostile and odd releases checked as a user would, with `tsqa check` in a process of its own: every run ends, in
time, with a report that reads back as a Report, the right finding on the right path, the expected exit code, no
traceback and no process left behind."""

from __future__ import annotations

import gzip
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from nibabel.nifti1 import Nifti1Header
from support import HOSTILE_YAML, REPO, Run, finish, markdown_problems, run_tsqa, start_tsqa, without_cut_organs

from qa.report.model import Report
from qa.rules.spec import ReleaseSpec, load_spec
from qa.synth.archive import zip_sample
from qa.synth.sample import Sample, make_sample, read_meta_rows, rewrite_header, write_meta_rows

SHAPE = (24, 20, 64)  # 64 slices: every vertebra and rib of the phantom has one of its own
SPEC = "totalsegmentator-v2"
MRI_SPEC = REPO / "examples" / "totalsegmentator-mri.yaml"


@pytest.fixture(scope="module")
def v2() -> ReleaseSpec:
    return load_spec(SPEC)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, v2: ReleaseSpec) -> Sample:
    return make_sample(tmp_path_factory.mktemp("pristine") / "release", v2, cases=2, shape=SHAPE)


@pytest.fixture
def release(pristine: Sample, tmp_path: Path) -> Path:
    """A fresh copy of a clean two-case release, to break."""
    return Path(shutil.copytree(pristine.root, tmp_path / "release", symlinks=True))


@dataclass
class Checked:
    run: Run
    report: Report

    def at(self, path: str) -> set[tuple[str, str | None]]:
        return {(f.code, f.subcode) for f in self.report.findings if f.path == path}


def check(root: Path, out: Path, *options: str, spec: str | None = SPEC, fail_on: str = "never",
          expect: int = 0) -> Checked:
    """`tsqa check` on a subset, quick unless told; it must exit with `expect` and leave both reports."""
    chosen = ["--spec", spec] if spec else []
    mode = [] if "--mode" in options else ["--mode", "quick"]
    run = run_tsqa("check", root, *chosen, "--subset", "--out", out, "--jobs", "1", "--fail-on", fail_on, *mode,
                   *options)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == expect, run.stderr
    assert (out / "report.html").is_file()
    return Checked(run, Report.model_validate_json((out / "report.json").read_bytes()))


def test_names_that_are_not_utf8_are_bad_name_findings_with_their_bytes_escaped(
    release: Path, tmp_path: Path
) -> None:
    odd = {b"s0001/notes_\xe9.txt": "file", b"s0001/segmentations/liver\xff.nii.gz": "file",
           b"s0000/\xc3(": "dir", b"caf\xe9": "dir"}
    for name, kind in odd.items():
        path = release / os.fsdecode(name)
        path.mkdir() if kind == "dir" else shutil.copyfile(release / "s0001" / "ct.nii.gz", path)
    checked = check(release, tmp_path / "out", "--mode", "deep")
    for path in ("s0001/notes_\\xe9.txt", "s0001/segmentations/liver\\xff.nii.gz", "s0000/\\xc3(", "caf\\xe9"):
        assert checked.at(path) == {("FILE_UNEXPECTED", "bad_name")}
    assert len({f.fingerprint for f in checked.report.findings}) == len(checked.report.findings)
    assert "worst cases: s0001, s0000" in checked.run.stdout  # two findings in s0001, one in s0000


def test_a_release_root_whose_name_is_not_utf8_is_reported_with_its_bytes_escaped(
    pristine: Sample, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(pristine.root, tmp_path / os.fsdecode(b"r\xe9lease")))
    checked = check(root, tmp_path / "out")
    assert checked.report.release.endswith("/r\\xe9lease")
    assert checked.report.findings == []


def test_control_characters_and_markup_in_case_ids_are_printed_as_text(
    release: Path, tmp_path: Path, v2: ReleaseSpec
) -> None:
    header, rows = read_meta_rows(release, v2)
    rows[0][0], rows[1][0] = "s0000\x1b[2J", "s0001[/red]"
    write_meta_rows(release, v2, header, rows)
    checked = check(release, tmp_path / "out")
    assert {f.case for f in checked.report.findings if f.code == "CASE_MISSING"} == {"s0000\\x1b[2J", "s0001[/red]"}
    assert "\x1b" not in checked.run.stdout + checked.run.stderr
    assert "s0000\\x1b[2J" in checked.run.stdout and "s0001[/red]" in checked.run.stdout


def test_folders_named_like_cases_with_other_digits_or_a_newline_are_not_cases(release: Path, tmp_path: Path) -> None:
    for name in ("s0001\n", "s\u0660\u0660\u0660\u0663", "s\uff10\uff10\uff10\uff16"):
        shutil.copytree(release / "s0001", release / name)
    checked = check(release, tmp_path / "out")
    assert checked.report.summary.cases == 2
    assert checked.at("s0001\\n") == {("FILE_UNEXPECTED", "bad_name")}
    assert checked.at("s\u0660\u0660\u0660\u0663") == checked.at("s\uff10\uff10\uff10\uff16") == {
        ("FILE_UNEXPECTED", "unknown")}


def test_spec_detection_opens_no_fifo_and_follows_no_link_out_of_the_release(release: Path, tmp_path: Path) -> None:
    # the link's target is a FIFO: following it would block the run
    os.mkfifo(tmp_path / "outside.csv")
    (release / "meta.csv").unlink()
    (release / "meta.csv").symlink_to(tmp_path / "outside.csv")
    os.mkfifo(release / "s0001" / "segmentations" / "extra.nii.gz")
    checked = check(release, tmp_path / "out", spec=None)
    assert "detected totalsegmentator-v2: not the 11 meta.csv columns" in checked.report.spec_reason
    assert checked.at("meta.csv") == {("META_UNREADABLE", "unreadable")}


def test_a_fifo_named_meta_csv_does_not_hang_detection(release: Path, tmp_path: Path) -> None:
    (release / "meta.csv").unlink()
    os.mkfifo(release / "meta.csv")
    checked = check(release, tmp_path / "out", spec=None, fail_on="error", expect=1)
    assert checked.at("meta.csv") == {("META_UNREADABLE", "unreadable")}


def test_a_meta_csv_link_loop_is_unreadable(release: Path, tmp_path: Path) -> None:
    (release / "meta.csv").unlink()
    (release / "meta.csv").symlink_to("meta.csv")
    checked = check(release, tmp_path / "out", fail_on="error", expect=1)
    [finding] = [f for f in checked.report.findings if f.path == "meta.csv"]
    assert (finding.code, finding.subcode) == ("META_UNREADABLE", "unreadable")
    assert "loop" in finding.message


def test_a_meta_csv_header_of_100000_columns_is_too_wide_and_keeps_the_report_small(
    release: Path, tmp_path: Path, v2: ReleaseSpec
) -> None:
    header, rows = read_meta_rows(release, v2)
    write_meta_rows(release, v2, [*header, *(f"c{i}" for i in range(100_000))], rows)
    checked = check(release, tmp_path / "out", fail_on="error", expect=1)
    assert checked.at("meta.csv") == {("META_UNREADABLE", "too_wide")}
    assert (tmp_path / "out" / "report.html").stat().st_size < 200_000
    assert (tmp_path / "out" / "report.json").stat().st_size < 100_000


LIVER = "s0001/segmentations/liver.nii.gz"


def split_in_members(raw: bytes) -> bytes:
    """The same stream as three gzip members, as gzip and nibabel read it."""
    nii = gzip.decompress(raw)
    cuts = [0, 100, len(nii) // 2, len(nii)]
    return b"".join(gzip.compress(nii[a:b], compresslevel=1) for a, b in zip(cuts, cuts[1:]))


def test_a_valid_multi_member_mask_is_no_finding_in_either_pass(release: Path, tmp_path: Path) -> None:
    mask = release / LIVER
    voxels = int(np.count_nonzero(np.asarray(nib.load(mask).dataobj)))
    mask.write_bytes(split_in_members(mask.read_bytes()))
    assert int(np.count_nonzero(np.asarray(nib.load(mask).dataobj))) == voxels
    for mode in ("quick", "deep"):
        checked = check(release, tmp_path / mode, "--mode", mode, fail_on="warning")
        assert without_cut_organs(checked.report.findings) == []
    [case] = [c for c in checked.report.cases if c.case == "s0001"]
    assert case.labels["liver"].voxels == voxels


def test_a_corrupt_copy_after_a_valid_member_is_found_by_deep(release: Path, tmp_path: Path) -> None:
    """Its trailer is the first member's, so only reading every member sees it, as gzip -t does."""
    mask = release / LIVER
    member = mask.read_bytes()
    copy = bytearray(member)
    copy[len(copy) // 2] ^= 0xFF
    mask.write_bytes(member + bytes(copy))
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress(mask.read_bytes())
    assert check(release, tmp_path / "quick").report.findings == []
    checked = check(release, tmp_path / "deep", "--mode", "deep", fail_on="error", expect=1)
    assert checked.at(LIVER) == {("FILE_CORRUPT", "stream")}
    [finding] = [f for f in checked.report.findings if f.path == LIVER]
    assert finding.message.startswith(f"{LIVER}: gzip member 2: ")


def test_garbage_after_the_last_member_is_found_by_both_passes(release: Path, tmp_path: Path) -> None:
    """The file no longer ends in the trailer, so the quick pass reads it through and says why."""
    mask = release / LIVER
    mask.write_bytes(mask.read_bytes() + b"trailing garbage")
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(mask.read_bytes())
    for mode in ("quick", "deep"):
        checked = check(release, tmp_path / mode, "--mode", mode, fail_on="error", expect=1)
        assert checked.at(LIVER) == {("FILE_CORRUPT", "size_mismatch")}
        [finding] = [f for f in checked.report.findings if f.path == LIVER]
        assert "16 bytes after the last gzip member" in finding.message


def test_quick_catches_a_vox_offset_past_4_gib_that_the_trailer_cannot_tell_from_a_sane_one(
    release: Path, tmp_path: Path
) -> None:
    mask = release / LIVER
    nii = gzip.decompress(mask.read_bytes())
    header = nib.Nifti1Header(nii[:348], check=False)
    offset = int(header["vox_offset"])
    header["vox_offset"] = 2**32 + 512
    mask.write_bytes(gzip.compress(header.binaryblock + nii[348:offset].ljust(512 - 348, b"\0") + nii[offset:]))
    checked = check(release, tmp_path / "out", fail_on="error", expect=1)
    assert checked.at(LIVER) == {("FILE_CORRUPT", "absurd_size")}


def _rgb24(mask: Path) -> None:
    image = nib.load(mask)
    rgb = np.zeros(image.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = np.asarray(image.dataobj)
    nib.save(nib.Nifti1Image(rgb, image.affine), mask)


def _link_loop(mask: Path) -> None:
    mask.unlink()
    mask.symlink_to(mask.name)


@pytest.mark.parametrize(("damage", "found"), [(_rgb24, ("LABEL_DTYPE", "dtype")),
                                               (_link_loop, ("FILE_CORRUPT", "unreadable"))], ids=["rgb24", "loop"])
def test_one_bad_mask_is_its_own_finding_and_the_case_is_still_checked(
    release: Path, tmp_path: Path, damage, found: tuple[str, str]
) -> None:
    damage(release / LIVER)
    checked = check(release, tmp_path / "out", "--mode", "deep", fail_on="error", expect=1)
    assert checked.at(LIVER) == {found}
    assert "QA_INTERNAL" not in checked.report.summary.by_code
    [case] = [c for c in checked.report.cases if c.case == "s0001"]
    assert case.image_stats is not None and "liver" not in case.labels and len(case.labels) == 116


def test_runs_writing_one_out_at_once_leave_the_json_and_the_page_of_one_run(
    pristine: Sample, tmp_path: Path
) -> None:
    releases = [Path(shutil.copytree(pristine.root, tmp_path / f"release-{i}")) for i in range(3)]
    out = tmp_path / "out"
    runs = [finish(process) for process in [
        start_tsqa("check", root, "--spec", SPEC, "--subset", "--out", out, "--jobs", "1", "--quiet")
        for root in releases]]
    assert all(run.returncode in (0, 2) and "Traceback" not in run.stderr for run in runs)
    assert all("being written by another tsqa run" in run.stderr for run in runs if run.returncode == 2)
    assert any(run.returncode == 0 for run in runs)
    release = Report.model_validate_json((out / "report.json").read_bytes()).release
    page = (out / "report.html").read_text(encoding="utf-8")
    assert [str(root) for root in releases if f"<h1>tsqa report: {root}</h1>" in page] == [release]


# A name a release may hold that GitHub's Markdown would render as a mention, a reference, a link or HTML.
MARKDOWN_NAME = "@octocat #1 www.evil.example a@evil.example <img src=x> [a](http:x) |*b*| `c`\nd"
MARKDOWN_VALUE = f"https://evil.example/x {MARKDOWN_NAME}"


def _markdown_bait(pristine: Sample, tmp_path: Path, v2: ReleaseSpec) -> Path:
    """The clean release under a hostile name, with a hostile folder, extra mask, meta.csv column and split value."""
    release = Path(shutil.copytree(pristine.root, tmp_path / f"release {MARKDOWN_NAME.replace(chr(10), ' ')}"))
    (release / MARKDOWN_NAME).mkdir()
    shutil.copyfile(release / LIVER, release / "s0001" / "segmentations" / f"{MARKDOWN_NAME}.nii.gz")
    header, rows = read_meta_rows(release, v2)
    rows[0][header.index("split")] = MARKDOWN_VALUE
    write_meta_rows(release, v2, [*header, MARKDOWN_VALUE], [[*row, "x"] for row in rows])
    return release


def test_a_release_s_names_and_meta_values_are_inert_in_the_github_job_summary(
    pristine: Sample, tmp_path: Path, v2: ReleaseSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, summary = _markdown_bait(pristine, tmp_path, v2), tmp_path / "summary.md"
    for name, value in (("GITHUB_ACTIONS", "true"), ("GITHUB_WORKSPACE", tmp_path), ("GITHUB_STEP_SUMMARY", summary)):
        monkeypatch.setenv(name, str(value))
    checked = check(release, tmp_path / "out")
    assert {"FILE_UNEXPECTED", "META_COLUMNS", "META_VALUE"} <= set(checked.report.summary.by_code)
    text = summary.read_text(encoding="utf-8")
    assert "octocat" in text and "evil" in text and "img src" in text
    assert markdown_problems(text) == []
    commands = [line for line in checked.run.stdout.splitlines() if line.startswith("::")]
    assert commands and all(line.split(" ", 1)[0] in ("::error", "::warning", "::notice") for line in commands)


def test_a_release_s_names_and_meta_values_are_inert_in_the_diff_markdown(
    pristine: Sample, tmp_path: Path, v2: ReleaseSpec
) -> None:
    check(pristine.root, tmp_path / "old")
    check(_markdown_bait(pristine, tmp_path, v2), tmp_path / "new")
    run = run_tsqa("diff", tmp_path / "old", tmp_path / "new")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr  # new errors: the meta.csv value
    assert "#### New findings" in run.stdout and "octocat" in run.stdout and "evil" in run.stdout
    assert markdown_problems(run.stdout) == []


@pytest.fixture(scope="module")
def mri(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """A release of the TotalSegmentator MRI classes: a user spec's (examples/), no built-in one's."""
    return make_sample(tmp_path_factory.mktemp("mri") / "release", load_spec(MRI_SPEC), cases=2, shape=SHAPE)


def _refused(target: Path, out: Path) -> str:
    """`tsqa check TARGET` without --spec: exit 2 with one line, before any scanning (no report)."""
    run = run_tsqa("check", target, "--out", out, "--jobs", "1")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("tsqa: ")
    assert not (out / "report.json").exists()
    return run.stderr


def test_an_empty_folder_without_a_spec_is_refused_as_no_release(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "no release here: no meta.csv and no case folders (sXXXX/)" in _refused(tmp_path / "empty", tmp_path / "out")


def test_a_case_folder_without_a_spec_is_refused_as_one_case(release: Path, tmp_path: Path) -> None:
    err = _refused(release / "s0001", tmp_path / "out")
    assert f"{release / 's0001'} looks like one case folder, not a release: give its parent folder" in err


def test_a_release_of_another_spec_s_masks_is_refused_with_the_best_candidates(mri: Sample, tmp_path: Path) -> None:
    err = _refused(mri.root, tmp_path / "out")
    assert "no built-in spec fits" in err and "totalsegmentator-v1 1.77 of 3" in err and "pass --spec" in err


def test_a_zip_of_another_spec_s_masks_is_refused_like_the_folder(mri: Sample, tmp_path: Path) -> None:
    zipped = zip_sample(mri, load_spec(MRI_SPEC), tmp_path / "mri.zip")
    err = _refused(zipped.path, tmp_path / "out")
    assert "no built-in spec fits" in err and "totalsegmentator-v1 1.77 of 3" in err and "pass --spec" in err


def test_a_spec_whose_meta_file_leaves_the_release_is_a_usage_error_before_the_release_is_read(
    pristine: Sample, tmp_path: Path
) -> None:
    (tmp_path / "secret.csv").write_text("image_id;split\ns0000;train\n")
    data = yaml.safe_load((REPO / "schemas" / f"{SPEC}.yaml").read_text())
    data["meta"]["file"] = f"../../{tmp_path.name}/secret.csv"
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(data))
    run = run_tsqa("check", pristine.root, "--spec", spec, "--out", tmp_path / "out")
    assert run.returncode == 2 and run.stderr.startswith(f"tsqa: error: spec {spec}:"), run.stderr
    assert ": meta.file: " in run.stderr and run.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", HOSTILE_YAML)
@pytest.mark.parametrize("given_as", ["spec", "waivers", "serve config"])
def test_hostile_yaml_as_spec_waivers_or_serve_config_is_one_line_and_exit_2_within_seconds(
    pristine: Sample, tmp_path: Path, kind: str, given_as: str
) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(HOSTILE_YAML[kind]())
    args = {"spec": ["check", pristine.root, "--spec", path, "--out", tmp_path / "out"],
            "waivers": ["check", pristine.root, "--spec", SPEC, "--waivers", path, "--out", tmp_path / "out"],
            "serve config": ["serve", "--config", path]}[given_as]
    started = time.monotonic()
    run = run_tsqa(*args, timeout=60)
    # a bound for a loaded two-core machine: the refusal itself takes milliseconds (tests/rules/test_yamlfile.py)
    assert time.monotonic() - started < 10
    assert run.returncode == 2 and run.stderr.startswith(f"tsqa: error: {path}:"), run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


@pytest.mark.parametrize("mode", ["quick", "deep"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_pixdim_on_every_ct_is_a_spacing_finding_and_the_pages_print_it_as_text(
    release: Path, tmp_path: Path, mode: str, value: str
) -> None:
    def spacing(header: Nifti1Header) -> None:
        header["pixdim"][1:4] = float(value)

    for case in ("s0000", "s0001"):
        rewrite_header(release / case / "ct.nii.gz", spacing)
    out = tmp_path / "out"
    checked = check(release, out, "--mode", mode, fail_on="error", expect=1)
    for case in ("s0000", "s0001"):
        assert ("GEOM_SPACING", "not_finite") in checked.at(f"{case}/ct.nii.gz")
    assert f"{value} × {value} × {value}" in (out / "report.html").read_text(encoding="utf-8")
    # report.json has null for a number that is not finite: the page rebuilt from it says nan
    rendered = run_tsqa("render", out / "report.json", "--out", tmp_path / "rendered")
    assert rendered.returncode == 0 and "Traceback" not in rendered.stderr, rendered.stderr
    assert "nan × nan × nan" in (tmp_path / "rendered" / "report.html").read_text(encoding="utf-8")


def _renamed(value: object, names: dict[str, str]) -> object:
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    if isinstance(value, dict):
        return {_renamed(k, names): _renamed(v, names) for k, v in value.items()}
    return value


def test_class_names_that_are_math_text_are_drawn_as_they_are_and_the_report_is_written(
    release: Path, tmp_path: Path
) -> None:
    names = {"liver": "$x^2$", "spleen": "$", "pancreas": "a$$b"}  # 'a$$b' raises as math text
    spec = tmp_path / "dollars.yaml"
    spec.write_text(yaml.safe_dump(_renamed(yaml.safe_load((REPO / "schemas" / f"{SPEC}.yaml").read_text()), names)))
    for case in ("s0000", "s0001"):
        for old, new in names.items():
            (release / case / "segmentations" / f"{old}.nii.gz").rename(
                release / case / "segmentations" / f"{new}.nii.gz")
    checked = check(release, tmp_path / "out", "--mode", "deep", spec=str(spec))
    assert {c.name: c.cases_whole for c in checked.report.classes if c.name in names.values()} == {
        "$x^2$": 2, "$": 2, "a$$b": 2}
    assert "Per class distributions of whole masks" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
