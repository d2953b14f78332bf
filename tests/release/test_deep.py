"""The deep pass on real files: full-stream integrity, mask values, overlaps, empty cases, image values, statistics."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import KillingSource, KillOnceSource

from qa.app.pipeline import run_check
from qa.report.model import Report
from qa.rules.finding import Finding
from qa.rules.spec import load_spec

V2 = load_spec("totalsegmentator-v2")
LIVER = "s0000/segmentations/liver.nii.gz"


def check(root: Path, mode: str = "deep", jobs: int = 1) -> Report:
    return run_check(root, V2, "test", mode=mode, jobs=jobs, subset=True)


def findings(report: Report, code: str) -> list[Finding]:
    return [f for f in report.findings if f.code == code]


def rewrite_mask(root: Path, rel: str, edit) -> None:
    """Load a mask with nibabel, change its voxels, and save it with its own header (as a converter would)."""
    image = nib.load(root / rel)
    data = np.asarray(image.dataobj).copy()
    edit(data)
    nib.save(nib.Nifti1Image(data, image.affine, image.header), root / rel)


def test_real_example_statistics_equal_totalsegmentator_own(example_root: Path, example_statistics: Path) -> None:
    reference = json.loads(example_statistics.read_text())
    labels = check(example_root).cases[0].labels
    assert set(labels) == set(reference)
    for name, expected in reference.items():
        assert labels[name].volume_ml * 1000 == pytest.approx(expected["volume"], rel=1e-9), name
        assert (labels[name].mean_hu or 0.0) == pytest.approx(expected["intensity"], abs=1e-4), name


def test_real_example_has_no_overlap_and_only_the_spacing_error(example_root: Path) -> None:
    report = check(example_root)
    assert report.overlaps == []
    assert [(f.code, f.path) for f in report.findings if f.severity != "info"] == [("GEOM_SPACING", "s0000/ct.nii.gz")]


def test_crc_fault_is_invisible_to_quick_and_found_by_deep(example_copy) -> None:
    root = example_copy("s0000")
    raw = bytearray((root / LIVER).read_bytes())
    raw[-8] ^= 0xFF  # the first byte of the gzip trailer's CRC32: header and ISIZE stay valid
    (root / LIVER).write_bytes(bytes(raw))
    assert findings(check(root, mode="quick"), "FILE_CORRUPT") == []
    [corrupt] = findings(check(root), "FILE_CORRUPT")
    assert (corrupt.case, corrupt.path, corrupt.subcode) == ("s0000", LIVER, "stream")
    assert "CRC32 mismatch over all" in corrupt.message
    assert corrupt.details["inflated_bytes"] == 352 + 122 * 101 * 30


def test_byte_flip_near_the_end_of_the_ct_stream_is_found_by_deep(example_copy) -> None:
    root = example_copy("s0000")
    ct = root / "s0000/ct.nii.gz"
    raw = bytearray(ct.read_bytes())
    raw[-200] ^= 0x55  # inside the deflate data near the last voxel, as in v1's s0864
    ct.write_bytes(bytes(raw))
    corrupt = findings(check(root), "FILE_CORRUPT")
    assert [(f.case, f.path) for f in corrupt] == [("s0000", "s0000/ct.nii.gz")]


def test_mask_with_value_two_is_label_values(example_copy) -> None:
    root = example_copy("s0000")
    rewrite_mask(root, LIVER, lambda d: d.__setitem__(d == 1, 2))
    [found] = findings(check(root), "LABEL_VALUES")
    assert (found.case, found.path, found.severity) == ("s0000", LIVER, "error")
    assert set(found.details["values"]) == {"2"}


def test_two_masks_sharing_voxels_is_label_overlap_with_share(example_copy) -> None:
    root = example_copy("s0000")
    liver = np.asarray(nib.load(root / LIVER).dataobj)
    stomach = "s0000/segmentations/stomach.nii.gz"
    rewrite_mask(root, stomach, lambda d: d.__setitem__(liver == 1, 1))
    report = check(root)
    [found] = findings(report, "LABEL_OVERLAP")
    assert (found.case, found.path) == ("s0000", stomach)
    assert found.details["voxels"] == int(liver.sum())
    assert found.severity == "error"  # the whole liver is inside the stomach: far above the error share
    assert [(o.class_a, o.class_b, o.cases) for o in report.overlaps] == [("liver", "stomach", 1)]


def test_three_masks_on_the_same_voxels_are_three_pairs_with_their_true_counts(example_copy) -> None:
    # in file-name order gallbladder, liver, spleen: the first and the third meet although the liver lies between
    root = example_copy("s0000")
    block = np.zeros((122, 101, 30), dtype=bool)
    block[40:50, 40:50, 10:14] = True  # 400 voxels in all three
    extra = np.zeros_like(block)
    extra[60:65, 40:50, 10:14] = True  # 200 more in gallbladder and spleen only
    for name, voxels in {"gallbladder": block | extra, "liver": block, "spleen": block | extra}.items():
        rewrite_mask(root, f"s0000/segmentations/{name}.nii.gz", lambda d, v=voxels: d.__setitem__(v, 1))
    masks = {name: np.asarray(nib.load(root / f"s0000/segmentations/{name}.nii.gz").dataobj).astype(bool)
             for name in V2.classes}
    present = sorted(name for name, mask in masks.items() if mask.any())
    truth = {(a, b): int((masks[a] & masks[b]).sum()) for k, a in enumerate(present) for b in present[k + 1:]}
    pairs = {(f.details["class_a"], f.details["class_b"]): f.details["voxels"]
             for f in findings(check(root), "LABEL_OVERLAP")}
    assert pairs == {pair: count for pair, count in truth.items() if count}
    assert pairs[("gallbladder", "spleen")] >= 600 and ("gallbladder", "liver") in pairs


def test_small_overlap_is_info_below_the_warning_share(example_copy) -> None:
    root = example_copy("s0000")
    liver = np.asarray(nib.load(root / LIVER).dataobj)
    first = tuple(np.argwhere(liver == 1)[0])
    rewrite_mask(root, "s0000/segmentations/stomach.nii.gz", lambda d: d.__setitem__(first, 1))
    [found] = findings(check(root), "LABEL_OVERLAP")
    assert found.severity == "info"
    assert found.details["voxels"] == 1


def test_case_whose_masks_are_all_empty_is_label_all_empty(example_copy) -> None:
    root = example_copy("s0000")
    for path in (root / "s0000/segmentations").iterdir():
        rewrite_mask(root, f"s0000/segmentations/{path.name}", lambda d: d.fill(0))
    [found] = findings(check(root), "LABEL_ALL_EMPTY")
    assert (found.case, found.path) == ("s0000", "s0000/segmentations")


def test_ct_below_minus_3024_hu_is_image_values(example_copy) -> None:
    root = example_copy("s0000")
    ct = nib.load(root / "s0000/ct.nii.gz")
    data = np.asarray(ct.dataobj).copy()
    data[0, 0, 0] = -9758
    nib.save(nib.Nifti1Image(data, ct.affine, ct.header), root / "s0000/ct.nii.gz")
    [found] = findings(check(root), "IMAGE_VALUES")
    assert (found.case, found.path, found.details["min"]) == ("s0000", "s0000/ct.nii.gz", -9758.0)


def test_nan_voxels_are_image_values(example_copy) -> None:
    root = example_copy("s0000")
    ct = nib.load(root / "s0000/ct.nii.gz")
    data = np.asarray(ct.dataobj).astype(np.float32)
    data[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(data, ct.affine), root / "s0000/ct.nii.gz")
    [found] = findings(check(root), "IMAGE_VALUES")
    assert found.details["nan_count"] == 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_case_that_kills_its_worker_twice_is_qa_internal_and_the_rest_complete(example_copy, jobs: int) -> None:
    root = example_copy("s0000", "s0001", "s0002", "s0003")
    report = check(KillingSource(root, "s0002"), jobs=jobs)
    [internal] = findings(report, "QA_INTERNAL")
    assert (internal.case, internal.path, internal.subcode) == ("s0002", "s0002", "crash")
    assert "died 2 times" in internal.message and "SIGKILL" in internal.message
    assert [c.case for c in report.cases] == ["s0000", "s0001", "s0002", "s0003"]
    checked = [c.case for c in report.cases if c.labels]
    assert checked == ["s0000", "s0001", "s0003"]


def test_a_case_whose_worker_dies_once_is_run_again_and_checked(example_copy, tmp_path: Path) -> None:
    root = example_copy("s0000", "s0001", "s0002")
    report = check(KillOnceSource(root, "s0001", tmp_path / "killed-once"), jobs=2)
    assert (tmp_path / "killed-once").exists()
    assert findings(report, "QA_INTERNAL") == []
    assert [c.case for c in report.cases if c.labels] == ["s0000", "s0001", "s0002"]


def test_quick_and_deep_agree_on_everything_quick_reports(example_copy) -> None:
    root = example_copy("s0000", "s0001")
    (root / "s0001/segmentations/spleen.nii.gz").write_bytes(b"not a gzip file")
    (root / "s0001/segmentations/aorta.nii.gz").unlink()
    raw = (root / LIVER).read_bytes()
    (root / LIVER).write_bytes(raw[: len(raw) // 2])
    key = lambda f: (f.code, f.case, f.path, f.severity, f.message)  # noqa: E731
    quick = {key(f) for f in check(root, mode="quick").findings}
    deep = {key(f) for f in check(root).findings}
    assert quick <= deep
    assert ("FILE_CORRUPT", "s0000", LIVER) in {k[:3] for k in quick}


def pad_top_slices(root: Path, slices: int) -> None:
    """Fill the top slices of the CT with -3024, as a resampler pads beyond the scanned field of view."""
    ct = nib.load(root / "s0000/ct.nii.gz")
    data = np.asarray(ct.dataobj).copy()
    data[:, :, -slices:] = -3024
    nib.save(nib.Nifti1Image(data, ct.affine, ct.header), root / "s0000/ct.nii.gz")


def test_mask_reaching_into_padding_is_label_in_padding(example_copy) -> None:
    root = example_copy("s0000")
    pad_top_slices(root, 5)
    liver = np.asarray(nib.load(root / LIVER).dataobj)
    found = {f.path: f for f in findings(check(root), "LABEL_IN_PADDING")}
    assert found[LIVER].case == "s0000"
    assert found[LIVER].details["voxels"] == int(liver[:, :, -5:].sum())
    assert found[LIVER].details["padding_value"] == -3024


def test_air_filled_organs_are_exempt_from_the_padding_check(example_copy) -> None:
    root = example_copy("s0000")
    pad_top_slices(root, 5)
    lung = "s0000/segmentations/lung_lower_lobe_right.nii.gz"
    assert np.asarray(nib.load(root / lung).dataobj)[:, :, -5:].any()
    assert lung not in {f.path for f in findings(check(root), "LABEL_IN_PADDING")}


def test_real_example_has_no_padding_finding(example_root: Path) -> None:
    assert findings(check(example_root), "LABEL_IN_PADDING") == []


def test_file_larger_than_max_bytes_is_corrupt_and_never_inflated(example_copy) -> None:
    root = example_copy("s0000")
    geometry = V2.geometry.model_copy(update={"max_bytes": 700_000})  # the CT holds 739,320 voxel bytes
    spec = V2.model_copy(update={"geometry": geometry})
    report = run_check(root, spec, "test", mode="deep", jobs=1, subset=True)
    [corrupt] = findings(report, "FILE_CORRUPT")
    assert (corrupt.case, corrupt.path) == ("s0000", "s0000/ct.nii.gz")
    assert "absurd size" in corrupt.message
    assert report.cases[0].image_stats is None


def swap_files(root: Path, first: str, second: str) -> None:
    a, b = (root / f"s0000/segmentations/{name}.nii.gz" for name in (first, second))
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(a_bytes)


def test_swapped_neighbouring_vertebrae_are_label_position(example_copy) -> None:
    root = example_copy("s0000")
    swap_files(root, "vertebrae_T12", "vertebrae_L1")  # L1's file now holds T12, above the file named T12
    [found] = findings(check(root), "LABEL_POSITION")
    assert (found.case, found.path) == ("s0000", "s0000/segmentations/vertebrae_L1.nii.gz")
    assert (found.subcode, found.details["other_class"]) == ("order", "vertebrae_T12")
    assert found.details["by_mm"] > 10


def test_swapped_kidneys_are_label_position_on_the_left_one(example_copy) -> None:
    root = example_copy("s0000")
    swap_files(root, "kidney_left", "kidney_right")
    [found] = findings(check(root), "LABEL_POSITION")
    assert (found.path, found.subcode, found.details["other_class"]) == (
        "s0000/segmentations/kidney_left.nii.gz", "side", "kidney_right")


def test_heart_labelled_in_the_abdomen_is_label_position(example_copy) -> None:
    root = example_copy("s0000")
    swap_files(root, "heart", "small_bowel")  # the example's heart mask is empty; small bowel lies below the liver
    [found] = findings(check(root), "LABEL_POSITION")
    assert (found.path, found.subcode, found.details["other_class"]) == (
        "s0000/segmentations/heart.nii.gz", "above", "liver")


def test_real_example_anatomy_is_plausible(example_root: Path) -> None:
    assert findings(check(example_root), "LABEL_POSITION") == []


def test_sample_fault_swapping_sides_is_found_in_deep_mode(tmp_path: Path) -> None:
    from qa.synth.sample import make_sample

    sample = make_sample(tmp_path / "release", V2, cases=2, faults=["LABEL_POSITION"])
    [fault] = sample.faults
    found = [(f.case, f.path) for f in findings(check(sample.root), "LABEL_POSITION")]
    assert found == [(fault.case, fault.path)]
