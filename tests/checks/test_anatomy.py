"""anatomy: mask centroids in world millimetres against the spec's head-to-feet, above and left-right rules."""

from __future__ import annotations

from literal import V2, case_facts, context, deep_facts, essentials, mask_header, mask_values, ras

from qa.checks.anatomy import check_case_anatomy

# The default grid is RAS with 1.5 mm voxels at the origin: world mm = 1.5 x voxel index.
T12, L1, L2 = (f"s0001/segmentations/vertebrae_{v}.nii.gz" for v in ("T12", "L1", "L2"))


def anatomy(spec=V2, headers=None, **centroids: tuple[float, float, float]):
    """The anatomy findings of a case whose named classes have their centroid at the given voxel."""
    masks = {name: mask_values(100, centroid=centre) for name, centre in centroids.items()}
    case = case_facts(spec=spec, masks=headers or {}, deep=deep_facts(spec=spec, masks=masks))
    return check_case_anatomy(case, context(spec=spec))


def test_case_in_anatomical_order_has_no_position_finding() -> None:
    assert anatomy(vertebrae_T12=(2, 2, 30), vertebrae_L1=(2, 2, 20), heart=(2, 2, 40), liver=(2, 2, 30),
                   kidney_left=(1, 2, 20), kidney_right=(9, 2, 20)) == []


def test_vertebra_above_its_upper_neighbour_is_label_position_order_on_the_lower_one() -> None:
    [found] = anatomy(vertebrae_T12=(2, 2, 20), vertebrae_L1=(2, 2, 30))
    assert essentials([found]) == [("LABEL_POSITION", "order", "s0001", L1, "vertebrae_L1", "warning")]
    assert found.details == {"other_class": "vertebrae_T12", "centroid_mm": [3.0, 3.0, 45.0],
                             "other_centroid_mm": [3.0, 3.0, 30.0], "by_mm": 15.0}


def test_vertebra_out_of_place_within_the_tolerance_is_no_finding() -> None:
    # 6 voxels are 9 mm, within v2's 10 mm
    assert anatomy(vertebrae_T12=(2, 2, 20), vertebrae_L1=(2, 2, 26)) == []


def test_order_skips_members_the_case_does_not_show() -> None:
    # L1 is empty, so L2 is compared with T12
    found = anatomy(vertebrae_T12=(2, 2, 20), vertebrae_L2=(2, 2, 30))
    assert [(f.subcode, f.path, f.details["other_class"]) for f in found] == [("order", L2, "vertebrae_T12")]


def test_heart_below_the_liver_is_label_position_above_on_the_heart() -> None:
    [found] = anatomy(heart=(2, 2, 10), liver=(2, 2, 30))
    assert essentials([found]) == [("LABEL_POSITION", "above", "s0001", "s0001/segmentations/heart.nii.gz",
                                    "heart", "warning")]
    assert (found.details["other_class"], found.details["by_mm"]) == ("liver", 30.0)


def test_left_kidney_on_the_subjects_right_is_label_position_side_on_the_left_one() -> None:
    # RAS: x grows towards the subject's right
    [found] = anatomy(kidney_left=(9, 2, 20), kidney_right=(1, 2, 20))
    assert essentials([found]) == [("LABEL_POSITION", "side", "s0001", "s0001/segmentations/kidney_left.nii.gz",
                                    "kidney_left", "warning")]
    assert (found.details["other_class"], found.details["by_mm"]) == ("kidney_right", 12.0)


def test_sides_are_not_judged_when_the_spec_has_no_left_right_rule() -> None:
    spec = V2.model_copy(update={"anatomy": V2.anatomy.model_copy(update={"left_right": False})})
    assert anatomy(spec, kidney_left=(9, 2, 20), kidney_right=(1, 2, 20)) == []


def test_centroid_is_placed_through_the_masks_own_affine() -> None:
    # L1's header puts its voxel 20 at 45 mm, 15 mm above T12's voxel 20
    raised = mask_header(affine=ras(origin=(0, 0, 15)))
    found = anatomy(headers={"vertebrae_L1": raised}, vertebrae_T12=(2, 2, 20), vertebrae_L1=(2, 2, 20))
    assert [(f.path, f.details["by_mm"]) for f in found] == [(L1, 15.0)]


def test_mask_whose_centroid_is_not_finite_is_not_placed() -> None:
    lost = mask_header(affine=ras(origin=(0, 0, float("nan"))))
    assert anatomy(headers={"vertebrae_L1": lost}, vertebrae_T12=(2, 2, 20), vertebrae_L1=(2, 2, 30)) == []
