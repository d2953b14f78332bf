"""pieces: masks cut by the field of view, and masks in more pieces than their class has, on literal facts."""

from __future__ import annotations

from literal import case_facts, context, deep_facts, essentials, header, mask_header, mask_values, ras

from qa.checks.pieces import box_gap_mm, check_fragments, check_truncated
from qa.scan.facts import Piece, Pieces

GRID = (64, 64, 64)  # 1.5 mm voxels: 1 mL is 296.3 voxels
LIVER = "s0001/segmentations/liver.nii.gz"


def case_with(spec_masks: dict, image=None):
    image = image or header(shape=GRID)
    return case_facts(image=image, deep=deep_facts(masks=spec_masks))


def truncated(**masks):
    return check_truncated(case_with(masks), context())


def test_mask_inside_the_grid_is_not_truncated() -> None:
    assert truncated(liver=mask_values(1000, bbox=((1, 1, 1), (62, 62, 62)))) == []


def test_mask_on_the_last_slice_is_label_truncated_slices_naming_the_face() -> None:
    [found] = truncated(liver=mask_values(1000, bbox=((5, 5, 34), (20, 20, 63))))
    assert essentials([found]) == [("LABEL_TRUNCATED", "slices", "s0001", LIVER, "liver", "info")]
    assert found.details == {"faces": ["superior"], "extent_mm": 45.0}


def test_mask_on_an_in_plane_edge_is_label_truncated_edge() -> None:
    [found] = truncated(liver=mask_values(1000, bbox=((0, 5, 10), (20, 20, 20))))
    assert (found.subcode, found.details["faces"]) == ("edge", ["left"])


def test_faces_are_named_through_the_masks_affine() -> None:
    # LPS storage: voxel i grows to the patient's left, so voxel 0 is the right face
    lps = [[-1.5, 0, 0, 0], [0, -1.5, 0, 0], [0, 0, 1.5, 0], [0, 0, 0, 1]]
    case = case_facts(image=header(shape=GRID, affine=lps),
                      deep=deep_facts(masks={"liver": mask_values(1000, bbox=((0, 5, 10), (20, 20, 20)))}))
    [found] = check_truncated(case, context())
    assert found.details["faces"] == ["right"]


def pieces(*sizes_and_boxes: tuple[int, tuple]) -> Pieces:
    return Pieces(len(sizes_and_boxes), tuple(Piece(n, box) for n, box in sizes_and_boxes))


MAIN = (3000, ((5, 5, 5), (20, 20, 20)))


def fragments(name: str = "liver", values=None, **extra):
    return check_fragments(case_with({name: values, **extra}), context())


def liver_with(*extra: tuple[int, tuple], bbox=((5, 5, 5), (30, 30, 30))):
    total = MAIN[0] + sum(n for n, _ in extra)
    return mask_values(total, bbox=bbox, pieces=pieces(MAIN, *extra))


def test_one_piece_is_no_finding() -> None:
    assert fragments(values=liver_with()) == []


def test_extra_piece_holding_a_large_share_is_label_fragments_share() -> None:
    [found] = fragments(values=liver_with((600, ((5, 5, 22), (20, 20, 25)))))
    assert essentials([found]) == [("LABEL_FRAGMENTS", "share", "s0001", LIVER, "liver", "warning")]
    assert found.details["pieces"] == 2 and found.details["expected"] == 1
    assert found.details["extra_shares"] == [0.1667]
    assert found.details["extra_distances_mm"] == [3.0]


def test_small_extra_piece_far_from_the_main_one_is_label_fragments_far() -> None:
    [found] = fragments(values=liver_with((100, ((5, 5, 45), (8, 8, 48))), bbox=((5, 5, 5), (30, 30, 48))))
    assert (found.subcode, found.severity, found.details["extra_distances_mm"]) == ("far", "warning", [25 * 1.5])


def test_small_extra_piece_near_the_main_one_is_label_fragments_minor_info() -> None:
    [found] = fragments(values=liver_with((100, ((5, 5, 22), (8, 8, 23)))))
    assert (found.subcode, found.severity) == ("minor", "info")


def test_specks_below_the_minimum_volume_or_share_are_not_counted() -> None:
    # 0.1 mL is 29.6 voxels; 1% of 3029 voxels is 30
    assert fragments(values=liver_with((29, ((30, 30, 30), (32, 32, 32))))) == []


def test_class_expected_in_two_pieces_may_have_two() -> None:
    two = liver_with((1500, ((22, 5, 5), (30, 20, 20))))
    assert fragments("pancreas", two) == []
    three = liver_with((1500, ((22, 5, 5), (30, 20, 20))), (600, ((5, 25, 5), (10, 30, 10))))
    [found] = fragments("pancreas", three)
    assert (found.subcode, found.details["expected"], found.details["pieces"]) == ("share", 2, 3)


def test_class_the_spec_does_not_expect_in_few_pieces_is_not_judged() -> None:
    assert fragments("colon", liver_with((1500, ((22, 5, 5), (30, 20, 20))))) == []


def test_mask_cut_by_the_field_of_view_gets_info_whatever_its_pieces() -> None:
    cut = liver_with((600, ((5, 5, 22), (20, 20, 25))), bbox=((5, 5, 0), (30, 30, 30)))
    [found] = fragments(values=cut)
    assert (found.subcode, found.severity, found.details["truncated"]) == ("share", "info", True)


def test_distance_between_boxes_is_zero_when_they_touch_and_face_to_face_otherwise() -> None:
    a = ((0, 0, 0), (4, 4, 4))
    assert box_gap_mm(a, ((5, 0, 0), (6, 4, 4)), (1.5, 1.5, 1.5)) == 1.5
    assert box_gap_mm(a, ((2, 2, 2), (9, 9, 9)), (1.5, 1.5, 1.5)) == 0.0
    assert box_gap_mm(a, ((7, 0, 6), (9, 4, 9)), (1.0, 1.0, 2.0)) == 5.0  # 3 mm across, 2 slices of 2 mm


def test_mask_on_its_own_grid_is_judged_in_its_own_voxels() -> None:
    # a mask whose header has 3 mm voxels: its piece 6 voxels away lies 18 mm away
    coarse = mask_header(shape=GRID, affine=ras(spacing=(3, 3, 3)), zooms=(3.0, 3.0, 3.0))
    case = case_facts(image=header(shape=GRID), masks={"liver": coarse},
                      deep=deep_facts(masks={"liver": liver_with((100, ((5, 5, 26), (8, 8, 27))))}))
    [found] = check_fragments(case, context())
    assert found.details["extra_distances_mm"] == [18.0]
