"""intensity: the mean and spread of the image inside each mask against its class group's range, on literal facts."""

from __future__ import annotations

from literal import case_facts, context, deep_facts, essentials, header, mask_values

from qa.checks.intensity import check_hu

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
