"""chains: gaps between present members, and members as large as two, on literal facts (v2's spine and ribs)."""

from __future__ import annotations

import pytest
from literal import case_facts, context, deep_facts, essentials, header, mask_values

from qa.checks.chains import check_chains

# A 64-voxel cube of 1.5 mm voxels: 1 mL is 296.3 voxels.
ML = 1 / 0.003375
T11, T12, L1, L2, L3 = (f"vertebrae_{v}" for v in ("T11", "T12", "L1", "L2", "L3"))


def path(name: str) -> str:
    return f"s0001/segmentations/{name}.nii.gz"


def vertebra(ml: float, slices: int = 20, top: int = 1) -> object:
    """A whole vertebra of `ml` mL spanning `slices` slices (the grid is taken to be large enough)."""
    return mask_values(round(ml * ML), bbox=((1, 1, top), (2, 3, top + slices - 1)))


def chains(**masks):
    case = case_facts(image=header(shape=(64, 64, 64)), deep=deep_facts(masks=masks))
    return check_chains(case, context())


def test_spine_without_gaps_and_sizes_as_its_neighbours_predict_has_no_chain_finding() -> None:
    assert chains(**{T11: vertebra(41.4), T12: vertebra(44.9), L1: vertebra(50.9), L2: vertebra(55.9)}) == []


def test_empty_member_between_two_present_ones_is_label_chain_gap() -> None:
    [found] = chains(**{T11: vertebra(41.4), L1: vertebra(50.9)})
    assert essentials([found]) == [("LABEL_CHAIN", "gap", "s0001", path(T12), T12, "warning")]
    assert found.details == {"above": T11, "below": L1}


def test_every_member_of_a_longer_gap_is_reported() -> None:
    found = chains(**{T11: vertebra(41.4), L2: vertebra(55.9)})
    assert [f.class_name for f in found] == [T12, L1]


def test_members_missing_beyond_the_ends_of_the_present_run_are_no_gap() -> None:
    # C1..T10 and L3..S1 are empty too: the field of view holds T11 to L2 only
    assert chains(**{T11: vertebra(41.4), T12: vertebra(44.9), L1: vertebra(50.9), L2: vertebra(55.9)}) == []


def test_ribs_are_a_chain_of_their_own_side() -> None:
    [found] = chains(rib_left_5=vertebra(15), rib_left_7=vertebra(17), rib_right_6=vertebra(17))
    assert (found.path, found.subcode) == (path("rib_left_6"), "gap")


def test_member_twice_what_its_neighbours_predict_is_label_chain_merged_with_the_ratio() -> None:
    [found] = chains(**{T11: vertebra(41.4), T12: vertebra(2 * 44.9), L1: vertebra(50.9)})
    assert essentials([found]) == [("LABEL_CHAIN", "merged", "s0001", path(T12), T12, "warning")]
    assert found.details["volume_ratio"] == 2.0
    assert found.details["neighbours"] == [T11, L1]
    assert found.details["predicted_ml"] == pytest.approx(44.9, rel=1e-3)


def test_prediction_scales_each_neighbour_by_the_reference_volumes() -> None:
    # neighbours at half their reference volume predict half of T12's reference: 22.45 mL, so 40 mL is 1.78x
    [found] = chains(**{T11: vertebra(41.41 / 2), T12: vertebra(40), L1: vertebra(50.86 / 2)})
    assert found.details["volume_ratio"] == pytest.approx(40 / 22.45, rel=1e-3)


def test_merged_pair_leaving_its_partner_empty_is_merged_and_gap() -> None:
    found = chains(**{T11: vertebra(41.4), T12: vertebra(44.9 + 50.9, slices=40), L2: vertebra(55.9)})
    assert [(f.class_name, f.subcode) for f in found] == [(L1, "gap"), (T12, "merged")]
    assert found[1].details["neighbours"] == [T11, L2]


def test_volume_ratio_below_the_threshold_is_no_finding() -> None:
    assert chains(**{T11: vertebra(41.4), T12: vertebra(1.5 * 44.9), L1: vertebra(50.9)}) == []


def test_soft_volume_ratio_with_a_tall_mask_is_a_warning() -> None:
    [found] = chains(**{T11: vertebra(41.4), T12: vertebra(1.45 * 44.9, slices=30), L1: vertebra(50.9)})
    assert (found.subcode, found.severity, found.details["extent_ratio"]) == ("merged", "warning", 1.5)


def test_tall_mask_of_ordinary_volume_is_info() -> None:
    [found] = chains(**{T11: vertebra(41.4), T12: vertebra(44.9, slices=30), L1: vertebra(50.9)})
    assert (found.subcode, found.severity) == ("merged", "info")


def test_extent_is_not_judged_for_the_atlas() -> None:
    c1, c2 = "vertebrae_C1", "vertebrae_C2"
    assert chains(**{c1: vertebra(12.6, slices=30), c2: vertebra(17.0)}) == []


def test_truncated_member_is_not_judged_and_truncated_neighbours_do_not_predict() -> None:
    cut = mask_values(round(2 * 44.9 * ML), bbox=((1, 1, 0), (2, 3, 19)))  # touches the first slice
    assert chains(**{T11: vertebra(41.4), T12: cut, L1: vertebra(50.9)}) == []
    cut_neighbour = mask_values(round(20 * ML), bbox=((1, 1, 0), (2, 3, 19)))
    [found] = chains(**{T11: cut_neighbour, T12: vertebra(2 * 44.9), L1: vertebra(50.9)})
    assert found.details["neighbours"] == [L1]


def test_neighbours_below_the_minimum_volume_do_not_predict() -> None:
    assert chains(**{T11: vertebra(1.0), T12: vertebra(44.9)}) == []


def test_chain_without_reference_volumes_is_judged_for_gaps_only() -> None:
    assert chains(rib_left_5=vertebra(15), rib_left_6=vertebra(60), rib_left_7=vertebra(17)) == []
