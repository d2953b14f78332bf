"""Geometry as the readers see it, on real files: where nibabel and ITK place an image or a mask apart, each trap is
one error on the file that sets it, naming the reader; self-consistent headers give none."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.nifti1 import Nifti1Header

from qa.app.pipeline import run_check
from qa.report.model import Report
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec, load_spec
from qa.synth.sample import Sample, make_sample, rewrite_header

SHAPE = (24, 20, 32)


@pytest.fixture(scope="module")
def v2() -> ReleaseSpec:
    return load_spec("totalsegmentator-v2")


@pytest.fixture
def sample(tmp_path: Path, v2: ReleaseSpec) -> Sample:
    return make_sample(tmp_path / "release", v2, cases=1, shape=SHAPE)


def check(sample: Sample, spec: ReleaseSpec) -> Report:
    return run_check(sample.root, spec, "test", mode="quick", subset=True)


def geometry(report: Report) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(f.code, f.subcode, f.case, f.path) for f in report.findings if f.code.startswith(("GEOM_", "FILE_"))]


def only(report: Report, code: str) -> Finding:
    [found] = [f for f in report.findings if f.code == code]
    return found


CT, LIVER = "s0000/ct.nii.gz", "s0000/segmentations/liver.nii.gz"


def qform_away(mm: float):
    def change(header: Nifti1Header) -> None:
        affine = header.get_sform()
        affine[2, 3] += mm
        header.set_qform(affine, code=1)
    return change


def pixdim(size: float):
    def change(header: Nifti1Header) -> None:
        header["pixdim"][1:4] = size
    return change


def columns(size: float):
    def change(header: Nifti1Header) -> None:
        affine = header.get_sform()
        affine[:3, :3] = np.diag([size, size, size])
        header.set_sform(affine)
    return change


def test_a_mask_whose_qform_itk_reads_is_40_mm_away_is_an_itk_mismatch(sample: Sample, v2: ReleaseSpec) -> None:
    rewrite_header(sample.root / LIVER, qform_away(40.0))
    report = check(sample, v2)
    assert ("GEOM_AFFINE_MISMATCH", "itk", "s0000", LIVER) in geometry(report)
    found = only(report, "GEOM_AFFINE_MISMATCH")
    assert found.message.startswith(f"{LIVER}: ITK places it up to ")
    assert (found.details["nibabel_deviation_mm"], round(found.details["itk_deviation_mm"], 3)) == (0.0, 40.0)


def test_an_image_sized_by_pixdim_and_by_its_columns_apart_is_readers_disagree(sample: Sample,
                                                                                 v2: ReleaseSpec) -> None:
    for path in [CT, *(p.relative_to(sample.root).as_posix() for p in (sample.root / "s0000").rglob("*.nii.gz"))]:
        rewrite_header(sample.root / path, columns(1.6))  # pixdim stays 1.5: the whole case alike
    report = check(sample, v2)
    assert geometry(report) == [("GEOM_AFFINE_INVALID", "readers_disagree", "s0000", CT)]
    found = only(report, "GEOM_AFFINE_INVALID")
    why = "ITK takes voxel sizes from pixdim (1.5, 1.5, 1.5 mm), nibabel from the sform's columns (1.6"
    assert why in found.message
    assert np.allclose(np.array(found.details["nibabel_affine"])[:3, :3], np.diag([1.6] * 3))
    assert np.allclose(np.array(found.details["itk_affine"])[:3, :3], np.diag([1.5] * 3))


def test_a_mask_whose_pixdim_differs_from_its_own_columns_is_an_itk_mismatch(sample: Sample,
                                                                             v2: ReleaseSpec) -> None:
    rewrite_header(sample.root / LIVER, pixdim(1.6))  # the sform stays the CT's
    assert geometry(check(sample, v2)) == [("GEOM_AFFINE_MISMATCH", "itk", "s0000", LIVER)]


@pytest.mark.parametrize("path", [CT, LIVER])
def test_a_nifti2_file_is_a_version_itk_cannot_open(sample: Sample, v2: ReleaseSpec, path: str) -> None:
    image = nib.load(sample.root / path)
    nib.save(nib.Nifti2Image(np.asarray(image.dataobj), image.affine, dtype=image.get_data_dtype()), sample.root / path)
    found = only(check(sample, v2), "FILE_VERSION")
    assert (found.code, found.case, found.path, found.details["version"]) == ("FILE_VERSION", "s0000", path, 2)


def test_a_release_whose_readers_open_nifti2_takes_it(sample: Sample, v2: ReleaseSpec) -> None:
    image = nib.load(sample.root / LIVER)
    nib.save(nib.Nifti2Image(np.asarray(image.dataobj), image.affine, dtype=np.uint8), sample.root / LIVER)
    assert geometry(check(sample, v2.model_copy(update={"readers": ["nibabel"], "nifti_versions": [1, 2]}))) == []


@pytest.mark.parametrize("change", [qform_away(0.0), qform_away(0.00005)], ids=["qform equal", "qform 0.05 um"])
def test_self_consistent_headers_give_no_finding(sample: Sample, v2: ReleaseSpec, change) -> None:
    for path in (sample.root / "s0000").rglob("*.nii.gz"):
        rewrite_header(path, change)
    assert geometry(check(sample, v2)) == []


def test_an_image_qform_itk_reads_is_one_finding_not_one_per_mask(sample: Sample, v2: ReleaseSpec) -> None:
    rewrite_header(sample.root / CT, qform_away(2.0))
    report = check(sample, v2)
    assert geometry(report) == [("GEOM_AFFINE_INVALID", "sform_qform", "s0000", CT)]
    assert only(report, "GEOM_AFFINE_INVALID").message.endswith("; ITK reads the qform, nibabel the sform")


def shear(with_qform: bool):
    def change(header: Nifti1Header) -> None:
        affine = header.get_sform()
        if with_qform:
            header.set_qform(affine, code=1)
        affine[0, 1] += 0.005 * affine[1, 1]
        header.set_sform(affine)
    return change


@pytest.mark.parametrize(("with_qform", "said"), [(False, "ITK refuses the file (ITK only supports orthonormal"),
                                                   (True, "ITK reads the qform, nibabel the sform")])
def test_non_orthonormal_cosines_say_what_itk_does(sample: Sample, v2: ReleaseSpec, with_qform: bool,
                                                   said: str) -> None:
    for path in (sample.root / "s0000").rglob("*.nii.gz"):
        rewrite_header(path, shear(with_qform))
    report = check(sample, v2)
    assert ("GEOM_AFFINE_INVALID", "not_orthonormal", "s0000", CT) in geometry(report)
    [found] = [f for f in report.findings if f.subcode == "not_orthonormal"]
    assert said in found.message


def test_the_real_example_lights_up_no_reader_finding(example_root: Path, v2: ReleaseSpec) -> None:
    report = run_check(example_root, v2, "test", mode="quick", subset=True)
    assert [(f.code, f.subcode, f.path) for f in report.findings] == [("GEOM_SPACING", "mismatch", CT)]
