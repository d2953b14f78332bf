"""Evidence pictures: made by the pipeline through the source, kept beside the report, embedded by the page; and
`tsqa render` rebuilding the page from report.json and its evidence alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import REPO

from qa.app.cli import main
from qa.app.evidence import make_evidence
from qa.app.pipeline import run_check
from qa.output.files import Folder
from qa.output.html.page import build_page
from qa.report.model import Report
from qa.rules.finding import Finding, fingerprint
from qa.rules.spec import load_spec
from qa.scan.case import Layout
from qa.source.fs import FolderSource
from qa.synth.sample import make_sample

SPEC = "totalsegmentator-v2"
PNG = b"\x89PNG\r\n\x1a\n"


def mask(name: str) -> str:
    return f"s0000/segmentations/{name}.nii.gz"


def flagged(code: str, name: str, **details) -> Finding:
    return Finding(code=code, severity="error", case="s0000", path=mask(name), class_name=name, message="flagged",
                   details=details, fingerprint=fingerprint(code, None, "s0000", mask(name), name))


def report_with(root: Path, findings: list[Finding]) -> Report:
    report = run_check(root, load_spec(SPEC), "test", mode="quick", subset=True)
    return report.model_copy(update={"findings": findings})


def evidence_of(root: Path, findings: list[Finding], out: Path, **limits) -> Report:
    report = report_with(root, findings)
    with Folder.open(out) as folder:
        report.evidence = make_evidence(report, FolderSource(root), Layout.of(load_spec(SPEC)), folder, **limits)
    return report


def test_a_flagged_mask_gets_a_png_beside_the_report(example_root: Path, tmp_path: Path) -> None:
    finding = flagged("GEOM_AFFINE_MISMATCH", "liver")
    [evidence] = evidence_of(example_root, [finding], tmp_path).evidence
    assert (evidence.fingerprint, evidence.case, evidence.path, evidence.classes) == (
        finding.fingerprint, "s0000", mask("liver"), ["liver"])
    assert evidence.file == f"evidence/{finding.fingerprint}.png"
    assert (tmp_path / evidence.file).read_bytes().startswith(PNG)


def test_the_page_embeds_the_evidence_and_links_its_finding(example_root: Path, tmp_path: Path) -> None:
    report = evidence_of(example_root, [flagged("LABEL_VALUES", "liver")], tmp_path)
    with Folder.open(tmp_path) as folder:
        [picture] = build_page(report, folder).pictures
    assert picture.cls == "liver" and picture.uri.startswith("data:image/png;base64,iVBORw0KGgo")


def test_an_overlap_picture_outlines_both_masks(example_root: Path, tmp_path: Path) -> None:
    finding = flagged("LABEL_OVERLAP", "liver", path_a=mask("gallbladder"), class_a="gallbladder")
    [evidence] = evidence_of(example_root, [finding], tmp_path).evidence
    assert evidence.classes == ["liver", "gallbladder"]


def test_pictures_stop_at_the_cap(example_root: Path, tmp_path: Path) -> None:
    findings = [flagged("LABEL_VALUES", name) for name in ("liver", "spleen", "kidney_left", "kidney_right")]
    assert len(evidence_of(example_root, findings, tmp_path, limit=2).evidence) == 2


def test_unreadable_or_empty_masks_get_no_picture_and_no_error(example_copy, tmp_path: Path) -> None:
    release = example_copy()
    truncated = release / mask("liver")
    truncated.write_bytes(truncated.read_bytes()[:400])
    findings = [flagged("GEOM_SHAPE_MISMATCH", "liver"), flagged("LABEL_VALUES", "brain"),  # brain: empty here
                flagged("GEOM_AFFINE_MISMATCH", "no_such_class")]
    assert evidence_of(release, findings, tmp_path / "out").evidence == []


def test_a_picture_is_never_read_through_a_link_leaving_the_release(example_copy, tmp_path: Path) -> None:
    release = example_copy()
    (release / mask("liver")).unlink()
    (release / mask("liver")).symlink_to(tmp_path / "release" / ".." / ".." / "elsewhere.nii.gz")
    assert evidence_of(release, [flagged("GEOM_AFFINE_MISMATCH", "liver")], tmp_path / "out").evidence == []


@pytest.fixture
def checked(tmp_path: Path) -> Path:
    """A deep check of a sample with an overlap and a shifted mask; its report folder."""
    spec = load_spec(SPEC)
    sample = make_sample(tmp_path / "release", spec, cases=2, faults=["LABEL_OVERLAP", "GEOM_AFFINE_MISMATCH"])
    out = tmp_path / "out"
    args = ["check", str(sample.root), "--spec", SPEC, "--subset", "--quiet", "--jobs", "1", "--out", str(out)]
    assert main(args) == 1
    return out


def test_render_rebuilds_the_same_page_without_the_release(checked: Path, tmp_path: Path) -> None:
    page = (checked / "report.html").read_bytes()
    assert list((checked / "evidence").glob("*.png")), "the check pictured its findings"
    shutil.rmtree(tmp_path / "release")
    (checked / "report.html").unlink()
    assert main(["render", str(checked / "report.json")]) == 0
    assert (checked / "report.html").read_bytes() == page


def test_render_writes_where_it_is_told(checked: Path, tmp_path: Path) -> None:
    assert main(["render", str(checked / "report.json"), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "report.html").read_bytes() == (checked / "report.html").read_bytes()


def test_render_of_something_that_is_not_a_report_is_a_usage_error(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "report.json").write_text("{}")
    assert main(["render", str(tmp_path / "report.json")]) == 2
    assert capsys.readouterr().err.startswith("tsqa: error: ")


def test_a_users_spec_file_is_what_the_report_and_page_name(tmp_path: Path) -> None:
    spec_file = REPO / "examples" / "totalsegmentator-mri.yaml"
    sample = make_sample(tmp_path / "release", load_spec(str(spec_file)), cases=2)
    out = tmp_path / "out"
    main(["check", str(sample.root), "--spec", str(spec_file), "--subset", "--quiet", "--jobs", "1", "--out", str(out)])
    report = Report.model_validate_json((out / "report.json").read_bytes())
    assert (report.spec.image, len(report.spec.classes)) == ("mri.nii.gz", 50)
    assert "&lt;case&gt;/mri.nii.gz" in (out / "report.html").read_text()


def test_a_chain_gap_is_pictured_from_the_side_with_the_neighbours_outlined(example_copy, tmp_path: Path) -> None:
    import nibabel as nib
    import numpy as np

    root = example_copy("s0000")
    t12 = root / mask("vertebrae_T12")
    image = nib.load(t12)
    nib.save(nib.Nifti1Image(np.zeros(image.shape, np.uint8), image.affine, image.header), t12)
    report = run_check(root, load_spec(SPEC), "test", mode="deep", subset=True)
    gaps = [f for f in report.findings if f.code == "LABEL_CHAIN"]
    report = report.model_copy(update={"findings": gaps})
    with Folder.open(tmp_path) as out:
        [evidence] = make_evidence(report, FolderSource(root), Layout.of(load_spec(SPEC)), out)
    assert (evidence.path, evidence.classes) == (mask("vertebrae_T12"), ["vertebrae_T12", "vertebrae_T11",
                                                                         "vertebrae_L1"])
    assert (tmp_path / evidence.file).read_bytes().startswith(PNG)
