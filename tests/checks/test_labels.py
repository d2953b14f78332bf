"""labels: what the deep pass measured (streams, image values, mask values, overlaps, padding), on literal facts."""

from __future__ import annotations

import pytest
from literal import V2, case_facts, context, deep_facts, essentials, image_values, mask_values

from qa.checks.labels import (
    check_all_empty,
    check_image_values,
    check_internal,
    check_mask_values,
    check_overlaps,
    check_padding,
    check_streams,
)
from qa.scan.facts import Overlap, Problem

CT = "s0001/ct.nii.gz"
LIVER = "s0001/segmentations/liver.nii.gz"
SPLEEN = "s0001/segmentations/spleen.nii.gz"


def judged(check, spec=V2, **deep):
    return check(case_facts(spec=spec, deep=deep_facts(spec=spec, **deep)), context(spec=spec))


def overlap_of(shared: int, spec=V2):
    """`shared` voxels of a 200-voxel spleen that a 1000-voxel liver also marks."""
    masks = {"spleen": mask_values(200), "liver": mask_values(1000)}
    return judged(check_overlaps, spec, masks=masks, overlaps=[("liver", "spleen", shared)])


def test_clean_deep_facts_give_no_finding() -> None:
    checks = (check_streams, check_image_values, check_mask_values, check_all_empty, check_overlaps, check_padding)
    assert [f for check in checks for f in judged(check)] == []


def test_broken_mask_stream_is_file_corrupt_stream_on_that_mask() -> None:
    [found] = judged(check_streams, stream_errors={"segmentations/liver.nii.gz": "CRC32 mismatch"})
    assert essentials([found]) == [("FILE_CORRUPT", "stream", "s0001", LIVER, "liver", "error")]
    assert found.details == {"reason": "CRC32 mismatch", "inflated_bytes": 1000}


def test_broken_image_stream_is_file_corrupt_stream_of_no_class() -> None:
    found = judged(check_streams, stream_errors={"ct.nii.gz": "truncated"})
    assert essentials(found) == [("FILE_CORRUPT", "stream", "s0001", CT, None, "error")]


def test_nan_voxels_in_the_image_are_image_values() -> None:
    [found] = judged(check_image_values, image=image_values(nan_count=3))
    assert essentials([found]) == [("IMAGE_VALUES", None, "s0001", CT, None, "error")]
    assert found.message == f"{CT}: 3 NaN and 0 infinite voxels"


def test_image_below_the_plausible_minimum_is_image_values() -> None:
    [found] = judged(check_image_values, image=image_values(min=-9758.0))
    assert (found.code, found.path) == ("IMAGE_VALUES", CT)
    assert found.details == {"min": -9758.0, "max": 1500.0, "nan_count": 0, "inf_count": 0,
                             "plausible_min": -3024.0, "plausible_max": 30000.0}


def test_image_above_the_plausible_maximum_is_image_values() -> None:
    [found] = judged(check_image_values, image=image_values(max=40000.0))
    assert found.message == f"{CT}: maximum 40000 above 30000"


def test_image_values_on_the_plausible_bounds_are_fine() -> None:
    assert judged(check_image_values, image=image_values(min=-3024.0, max=30000.0)) == []


def test_mask_with_values_other_than_0_and_1_is_label_values() -> None:
    [found] = judged(check_mask_values, masks={"liver": mask_values(10, other_values={"2": 4})})
    assert essentials([found]) == [("LABEL_VALUES", None, "s0001", LIVER, "liver", "error")]
    assert found.details == {"values": {"2": 4}}


def test_case_whose_every_mask_is_empty_is_label_all_empty_on_its_mask_folder() -> None:
    [found] = judged(check_all_empty, masks={"aorta": mask_values(0)})
    assert essentials([found]) == [("LABEL_ALL_EMPTY", None, "s0001", "s0001/segmentations", None, "error")]
    assert found.details == {"masks": 117}


def test_case_without_measured_masks_is_not_all_empty() -> None:
    # masks the deep pass could not read are FILE_CORRUPT's; an empty verdict needs measured masks
    case = case_facts(deep=deep_facts())
    case.deep.masks.clear()
    assert check_all_empty(case, context()) == []


def test_overlap_is_reported_on_the_later_mask_with_its_partner_and_volume() -> None:
    [found] = overlap_of(50)
    assert essentials([found]) == [("LABEL_OVERLAP", None, "s0001", SPLEEN, "spleen", "error")]
    assert found.details == {"class_a": "liver", "class_b": "spleen", "path_a": LIVER, "voxels": 50,
                             "volume_ml": 0.1688, "share_of_smaller": 0.25}


def test_overlap_severity_follows_the_specs_share_of_the_smaller_mask() -> None:
    # v2: warning from 1 % of the smaller mask (2 of the spleen's 200 voxels), error from 25 % (50)
    shared = {"gallbladder": 1, "kidney_left": 2, "kidney_right": 49, "liver": 50}
    masks = {"spleen": mask_values(200)} | {partner: mask_values(1000) for partner in shared}
    found = judged(check_overlaps, masks=masks, overlaps=[(partner, "spleen", n) for partner, n in shared.items()])
    assert [(f.details["class_a"], f.severity) for f in found] == [
        ("gallbladder", "info"), ("kidney_left", "warning"), ("kidney_right", "warning"), ("liver", "error")]


def test_a_stray_file_in_the_mask_folder_shares_no_voxels_with_a_class() -> None:
    # the stray copy is FILE_UNEXPECTED already; an overlap with the class it copies would only repeat that
    case = case_facts(deep=deep_facts(masks={"liver": mask_values(1000)}))
    stray = "s0001/segmentations/liver_old.nii.gz"
    case.deep.masks[stray] = mask_values(1000)
    case.deep.overlaps.append(Overlap(LIVER, stray, 1000))
    assert check_overlaps(case, context()) == []


def test_overlap_thresholds_are_read_from_the_spec() -> None:
    strict = V2.model_copy(update={"values": V2.values.model_copy(update={"overlap_error_share": 0.01})})
    assert [f.severity for f in overlap_of(2, strict)] == ["error"]


def test_overlaps_of_one_mask_with_two_partners_have_different_fingerprints() -> None:
    masks = {"spleen": mask_values(200), "liver": mask_values(1000), "kidney_left": mask_values(300)}
    found = judged(check_overlaps, masks=masks, overlaps=[("liver", "spleen", 5), ("kidney_left", "spleen", 5)])
    assert [(f.path, f.class_name) for f in found] == [(SPLEEN, "spleen"), (SPLEEN, "spleen")]
    assert found[0].fingerprint != found[1].fingerprint


def test_overlap_fingerprint_is_stable_across_runs_and_measurements() -> None:
    # a waiver keeps matching after a re-run that measures another count
    assert [f.fingerprint for f in overlap_of(5)] == [f.fingerprint for f in overlap_of(60)] == ["7954bb6d89d58bf4"]


def test_mask_reaching_into_the_padding_from_the_specs_share_on_is_label_in_padding() -> None:
    # v2 reports from 5 %: the liver's 50 of 1000 voxels, not the spleen's 49
    masks = {"liver": mask_values(1000, padding_voxels=50), "spleen": mask_values(1000, padding_voxels=49)}
    found = judged(check_padding, image=image_values(padding_value=-1024.0), masks=masks)
    assert essentials(found) == [("LABEL_IN_PADDING", None, "s0001", LIVER, "liver", "warning")]
    assert found[0].details == {"voxels": 50, "share": 0.05, "padding_value": -1024.0}


def test_air_holding_classes_in_padding_exempt_are_not_label_in_padding() -> None:
    # v2 exempts lung_* and trachea, among others: a scanner clipping air writes their gas as the padding value
    masks = {"lung_upper_lobe_left": mask_values(1000, padding_voxels=900),
             "trachea": mask_values(50, padding_voxels=50)}
    assert judged(check_padding, image=image_values(padding_value=-1024.0), masks=masks) == []


def test_masks_of_a_blank_image_are_not_label_in_padding_the_image_is_image_not_ct() -> None:
    """A blank CT is all padding: every mask would lie in it."""
    blank = image_values(-1024.0, -1024.0, padding_value=-1024.0, percentiles={"p1": -1024.0, "p99": -1024.0})
    masks = {"liver": mask_values(1000, padding_voxels=1000, mean_hu=-1024),
             "aorta": mask_values(500, padding_voxels=500, mean_hu=-1024)}
    assert judged(check_padding, image=blank, masks=masks) == []


@pytest.mark.parametrize(("kind", "reason"), [("crash", "worker killed by SIGKILL"), ("error", "ValueError: boom")])
def test_case_tsqa_could_not_check_is_qa_internal_with_its_kind(kind: str, reason: str) -> None:
    [found] = check_internal(case_facts(internal_error=Problem(kind, reason)), context())
    assert essentials([found]) == [("QA_INTERNAL", kind, "s0001", "s0001", None, "error")]
    assert found.details == {"error": reason}
