"""intensity: the mean and spread of the image inside each mask against its class group's range, on literal facts."""

from __future__ import annotations

from literal import case_facts, context, deep_facts, essentials, header, image_values, mask_values

from qa.checks.intensity import check_hu, check_not_ct

LIVER = "s0001/segmentations/liver.nii.gz"


def hu(image=None, **masks):
    case = case_facts(image=image, deep=deep_facts(masks=masks))
    return check_hu(case, context())


def test_masks_within_their_groups_range_have_no_finding() -> None:
    assert hu(liver=mask_values(500, mean_hu=55, sd_hu=20), lung_upper_lobe_left=mask_values(500, mean_hu=-850),
              vertebrae_L1=mask_values(500, mean_hu=250)) == []


def test_liver_at_minus_800_hu_is_label_hu_low() -> None:
    [found] = hu(liver=mask_values(500, mean_hu=-800, sd_hu=50))
    assert essentials([found]) == [("LABEL_HU", "low", "s0001", LIVER, "liver", "warning")]
    assert found.details == {"mean_hu": -800.0, "sd_hu": 50.0, "group": "solid_organs", "range": [-100.0, 400.0],
                             "sd_max": 200.0, "voxels": 500}


def test_muscle_at_bone_density_is_label_hu_high_warning() -> None:
    [found] = hu(iliopsoas_left=mask_values(500, mean_hu=600))
    assert (found.subcode, found.severity, found.details["group"]) == ("high", "warning", "muscles")


def test_high_mean_is_info_where_contrast_or_metal_explain_it() -> None:
    [found] = hu(aorta=mask_values(500, mean_hu=1500))
    assert (found.subcode, found.severity) == ("high", "info")


def test_mixed_tissue_is_label_hu_spread() -> None:
    [found] = hu(liver=mask_values(500, mean_hu=60, sd_hu=350))
    assert (found.subcode, found.severity, found.details["sd_hu"]) == ("spread", "warning", 350.0)


def test_spread_is_not_judged_for_groups_without_a_bound() -> None:
    assert hu(lung_upper_lobe_left=mask_values(500, mean_hu=-800, sd_hu=400)) == []


def test_masks_below_the_minimum_size_are_not_judged() -> None:
    assert hu(liver=mask_values(29, mean_hu=-800)) == []


def test_mean_is_in_loaded_units_through_the_images_scaling() -> None:
    # stored mean -50 with slope 2 and intercept -1000 loads as -1100: lung, not liver
    [found] = hu(image=header(slope=2.0, inter=-1000.0), liver=mask_values(500, mean_hu=-50, sd_hu=10),
                 aorta=mask_values(0))
    assert (found.subcode, found.details["mean_hu"], found.details["sd_hu"]) == ("low", -1100.0, 20.0)


def test_classes_in_no_group_are_not_judged() -> None:
    from literal import V2

    spec = V2.model_copy(update={"labels": V2.labels.model_copy(update={"hu": V2.labels.hu.model_copy(
        update={"groups": {}})})})
    case = case_facts(deep=deep_facts(masks={"liver": mask_values(500, mean_hu=-800)}))
    assert check_hu(case, context(spec=spec)) == []


CT = "s0001/ct.nii.gz"
# a CT in HU: air (or padding) to bone
CT_VALUES = {"p1": -1010.0, "p5": -1000.0, "p50": -700.0, "p95": 60.0, "p99": 500.0}
NORMAL_MASKS = {"liver": mask_values(500, mean_hu=55), "lung_upper_lobe_left": mask_values(500, mean_hu=-850),
                "vertebrae_L1": mask_values(500, mean_hu=250), "iliopsoas_left": mask_values(500, mean_hu=50)}
# the same masks in raw scanner values: every mean 1024 higher
RAW_MASKS = {name: mask_values(500, mean_hu=m.image_sum / m.voxels + 1024) for name, m in NORMAL_MASKS.items()}


def intensity(low: float, high: float, percentiles: dict[str, float], **masks) -> tuple[list, list]:
    """(IMAGE_NOT_CT findings, LABEL_HU findings) of a case whose image has these values."""
    case = case_facts(deep=deep_facts(image=image_values(low, high, percentiles=percentiles), masks=masks))
    ctx = context()
    return check_not_ct(case, ctx), check_hu(case, ctx)


def test_a_ct_in_hu_is_a_ct() -> None:
    assert intensity(-1024, 1500, CT_VALUES, **NORMAL_MASKS) == ([], [])


def test_a_constant_image_is_image_not_ct_blank_and_its_masks_are_not_blamed() -> None:
    flat = dict.fromkeys(CT_VALUES, -1024.0)
    masks = {name: mask_values(500, mean_hu=-1024) for name in [*NORMAL_MASKS, "aorta"]}
    [found], hu_findings = intensity(-1024, -1024, flat, **masks)
    assert essentials([found]) == [("IMAGE_NOT_CT", "blank", "s0001", CT, None, "error")]
    assert hu_findings == []
    assert found.details["masks_out_of_range"] == 4  # the lung's range reaches down to -1024


def test_a_body_in_under_1_percent_of_the_voxels_is_no_blank_image_its_masks_hold_tissue() -> None:
    air = dict.fromkeys(CT_VALUES, -1024.0)
    assert intensity(-1024, 1200, air, **NORMAL_MASKS)[0] == []


def test_an_image_of_whole_numbers_0_and_1_is_image_not_ct_label_map() -> None:
    [found], _ = intensity(0, 1, {"p1": 0.0, "p5": 0.0, "p50": 0.0, "p95": 1.0, "p99": 1.0})
    assert essentials([found]) == [("IMAGE_NOT_CT", "label_map", "s0001", CT, None, "error")]
    assert (found.details["min"], found.details["max"]) == (0.0, 1.0)


def test_an_image_without_a_voxel_below_0_is_image_not_ct_shifted_and_suppresses_label_hu() -> None:
    raw = {key: value + 1024 for key, value in CT_VALUES.items()}
    [found], hu_findings = intensity(0, 2524, raw, **RAW_MASKS)
    assert essentials([found]) == [("IMAGE_NOT_CT", "shifted", "s0001", CT, None, "error")]
    assert hu_findings == []
    assert found.details["masks_out_of_range"] == 4
    assert "LABEL_HU left out" in found.message


def test_a_shifted_image_with_padding_below_0_is_found_by_its_masks_all_above_their_ranges() -> None:
    """GE scanners pad with stored -2000: without the intercept the minimum stays below 0, the masks tell."""
    raw = {key: value + 1024 for key, value in CT_VALUES.items()} | {"p1": -2000.0}
    [found], hu_findings = intensity(-2000, 2524, raw, **RAW_MASKS)
    assert essentials([found]) == [("IMAGE_NOT_CT", "shifted", "s0001", CT, None, "error")]
    assert (found.details["masks_above_range"], found.details["masks_judged"]) == (4, 5)  # aorta at -50 is not
    assert hu_findings == []


def test_a_small_field_of_view_inside_the_body_is_a_ct() -> None:
    """No air at all, fat at -100: below 0 HU, and the masks at their values."""
    inside = {"p1": -120.0, "p5": -90.0, "p50": 40.0, "p95": 200.0, "p99": 600.0}
    assert intensity(-180, 1200, inside, **NORMAL_MASKS) == ([], [])


def test_a_mostly_air_ct_is_a_ct() -> None:
    """A thin body in a wide field of view: p95 still reaches tissue, far above the air."""
    air = {"p1": -1010.0, "p5": -1005.0, "p50": -998.0, "p95": -990.0, "p99": 40.0}
    assert intensity(-1024, 1200, air, **NORMAL_MASKS) == ([], [])


def test_contrast_raising_a_few_masks_above_their_ranges_is_no_shift() -> None:
    """Two of five judged masks high (contrast in the kidneys and liver) stay LABEL_HU, the image a CT."""
    masks = NORMAL_MASKS | {"liver": mask_values(500, mean_hu=450), "kidney_left": mask_values(500, mean_hu=420)}
    not_ct_findings, hu_findings = intensity(-1024, 1500, CT_VALUES, **masks)
    assert not_ct_findings == []
    assert {f.class_name for f in hu_findings} == {"liver", "kidney_left"}
