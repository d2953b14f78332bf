"""IMAGE_NOT_CT on real files: a blank, shifted or label-map CT is one error on the CT, its masks are not blamed;
a CT in HU, however small its field of view or however much air it holds, is never reported."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from qa.app.pipeline import run_check
from qa.report.model import Report
from qa.rules.spec import ReleaseSpec, load_spec
from qa.synth.sample import RESCALE_INTERCEPT, make_sample

SHAPE = (24, 20, 32)
MASK_BLAME = {"LABEL_HU", "LABEL_IN_PADDING"}


@pytest.fixture(scope="module")
def v2() -> ReleaseSpec:
    return load_spec("totalsegmentator-v2")


def check(root: Path, spec: ReleaseSpec) -> Report:
    return run_check(root, spec, "test", mode="deep", jobs=1, subset=True)


def rewrite_ct(path: Path, change) -> None:
    image = nib.load(path)
    data = np.asarray(image.dataobj)
    nib.save(nib.Nifti1Image(change(data).astype(data.dtype), image.affine, image.header), path)


@pytest.mark.parametrize("subcode", ["blank", "shifted", "label_map"])
def test_broken_ct_is_image_not_ct_on_the_ct_and_its_masks_are_not_blamed(
    tmp_path: Path, v2: ReleaseSpec, subcode: str
) -> None:
    sample = make_sample(tmp_path / "release", v2, cases=2, faults=[f"IMAGE_NOT_CT:{subcode}"])
    [injected] = sample.faults
    report = check(sample.root, v2)
    found = [f for f in report.findings if f.code == "IMAGE_NOT_CT"]
    assert [(f.subcode, f.case, f.path, f.severity) for f in found] == [
        (subcode, injected.case, f"{injected.case}/ct.nii.gz", "error")]
    assert found[0].details["masks_out_of_range"] > 10
    assert [f for f in report.findings if f.code in MASK_BLAME] == []


def test_shifted_ct_padded_below_0_is_found_by_its_masks(tmp_path: Path, v2: ReleaseSpec) -> None:
    """Raw values of a scanner padding with stored -2000: the minimum stays below 0, every organ is 1024 HU high."""
    sample = make_sample(tmp_path / "release", v2, cases=1, shape=SHAPE)
    case = sample.cases[0]

    def raw_padded(data: np.ndarray) -> np.ndarray:
        raw = data.astype(np.int32) - RESCALE_INTERCEPT
        raw[:2] = -2000
        return raw

    rewrite_ct(sample.root / case / v2.image, raw_padded)
    [found] = [f for f in check(sample.root, v2).findings if f.code == "IMAGE_NOT_CT"]
    assert (found.subcode, found.case, found.path) == ("shifted", case, f"{case}/ct.nii.gz")
    assert found.details["min"] == -2000.0
    assert found.details["masks_above_range"] >= 0.75 * found.details["masks_judged"]


@pytest.mark.parametrize("spec_name", ["totalsegmentator-v1", "totalsegmentator-v2", "totalsegmentator-v3"])
def test_clean_samples_are_cts(tmp_path: Path, spec_name: str) -> None:
    spec = load_spec(spec_name)
    sample = make_sample(tmp_path / "release", spec, cases=3, shape=SHAPE)
    assert [f for f in check(sample.root, spec).findings if f.code == "IMAGE_NOT_CT"] == []


def test_the_real_example_is_a_ct(example_root: Path) -> None:
    spec = load_spec("totalsegmentator-v2")
    assert [f for f in check(example_root, spec).findings if f.code == "IMAGE_NOT_CT"] == []


def test_a_field_of_view_inside_the_body_is_a_ct(tmp_path: Path, v2: ReleaseSpec) -> None:
    """No air at all: the CT's air made fat, as in a scan cropped to the abdomen's inside."""
    sample = make_sample(tmp_path / "release", v2, cases=1, shape=SHAPE)
    path = sample.root / sample.cases[0] / v2.image
    rewrite_ct(path, lambda data: np.where(data < -500, -100 + data % 7, data))
    assert [f for f in check(sample.root, v2).findings if f.code == "IMAGE_NOT_CT"] == []


def test_a_ct_of_mostly_air_is_a_ct(tmp_path: Path, v2: ReleaseSpec) -> None:
    """Only a few slices hold the body: 95% of the voxels are air or padding."""
    sample = make_sample(tmp_path / "release", v2, cases=1, shape=SHAPE)
    path = sample.root / sample.cases[0] / v2.image

    def mostly_air(data: np.ndarray) -> np.ndarray:
        kept = np.full_like(data, -1024)
        middle = data.shape[2] // 2
        kept[..., middle - 2 : middle + 2] = data[..., middle - 2 : middle + 2]
        return kept

    rewrite_ct(path, mostly_air)
    report = check(sample.root, v2)
    values = report.cases[0].image_stats
    assert values.percentiles["p5"] == -1024.0
    assert [f for f in report.findings if f.code == "IMAGE_NOT_CT"] == []



def test_a_uint16_ct_whose_scl_inter_loads_hu_is_image_dtype_not_image_not_ct(tmp_path: Path, v2: ReleaseSpec) -> None:
    """Its loaded values are HU (nibabel applies scl_inter), its stored type is not the release's."""
    sample = make_sample(tmp_path / "release", v2, cases=1, shape=SHAPE)
    case = sample.cases[0]
    path = sample.root / case / v2.image
    image = nib.load(path)
    stored = (np.asarray(image.dataobj).astype(np.int32) - RESCALE_INTERCEPT).astype(np.uint16)
    unsigned = nib.Nifti1Image(stored, image.affine, image.header)
    unsigned.set_data_dtype(np.uint16)
    unsigned.header.set_slope_inter(1.0, RESCALE_INTERCEPT)
    nib.save(unsigned, path)
    assert float(np.asanyarray(nib.load(path).dataobj).min()) < -1000  # air loads as air
    found = [f for f in check(sample.root, v2).findings if f.code.startswith("IMAGE_")]
    assert [(f.code, f.case, f.path) for f in found] == [("IMAGE_DTYPE", case, f"{case}/ct.nii.gz")]
    assert "scl_inter -1024" in found[0].message
