"""population: per class robust outliers over the release's whole masks, and drift against the spec's reference
table, on literal facts of many cases."""

from __future__ import annotations

import math

import pytest
from literal import V2, case_facts, context, deep_facts, essentials, header, mask_values, release_facts

from qa.checks.population import check_drift, check_outliers
from qa.rules.spec import ReferenceClass, ReferenceSpec

GRID = (64, 64, 64)
ML = 1 / 0.003375  # voxels per mL at 1.5 mm
# 24 livers whose volumes spread evenly over +-20% of 1000 mL (log scale), each 40 slices tall
SPREAD = [math.exp(0.2 * (2 * k / 23 - 1)) for k in range(24)]


def liver(ml: float, slices: int = 40, bottom: int = 5) -> object:
    return mask_values(round(ml * ML), bbox=((5, 5, bottom), (40, 40, bottom + slices - 1)))


def release(livers: list, spec=V2, subset: bool = True):
    cases = [case_facts(f"s{k:04d}", image=header(shape=GRID), deep=deep_facts(f"s{k:04d}", masks={"liver": m}))
             for k, m in enumerate(livers)]
    return context(release_facts(cases), spec=spec, subset=subset)


def outliers(livers: list, spec=V2):
    return check_outliers(release(livers, spec))


def test_livers_within_their_natural_spread_have_no_outlier() -> None:
    assert outliers([liver(1000 * f) for f in SPREAD]) == []


def test_liver_of_three_times_the_typical_volume_is_label_outlier_volume_with_z_and_quartiles() -> None:
    found = outliers([liver(1000 * f) for f in SPREAD] * 3 + [liver(3000)])
    [volume] = [f for f in found if f.subcode == "volume"]
    assert essentials([volume]) == [("LABEL_OUTLIER", "volume", "s0072", "s0072/segmentations/liver.nii.gz",
                                     "liver", "warning")]
    assert volume.details["z"] > 5 and volume.details["masks"] == 73
    assert volume.details["quartiles"][0] < 1000 < volume.details["quartiles"][2]


def test_outlier_among_fewer_masks_than_a_warning_needs_is_info() -> None:
    found = outliers([liver(1000 * f) for f in SPREAD] + [liver(3000)])
    assert [(f.subcode, f.severity) for f in found if f.subcode == "volume"] == [("volume", "info")]


def test_moderate_outlier_is_info() -> None:
    found = outliers([liver(1000 * f) for f in SPREAD] + [liver(1800)])  # z 4.0
    assert [(f.subcode, f.severity) for f in found] == [("volume", "info")]


def test_too_few_whole_masks_are_not_judged() -> None:
    assert outliers([liver(1000 * f) for f in SPREAD[:18]] + [liver(5000)]) == []


def test_truncated_masks_are_left_out_of_the_statistics_and_not_judged() -> None:
    cut = mask_values(round(100 * ML), bbox=((5, 5, 0), (40, 40, 39)))  # touches the first slice
    assert outliers([liver(1000 * f) for f in SPREAD] + [cut]) == []


def test_mask_twice_as_tall_as_its_class_is_label_outlier_extent() -> None:
    found = outliers([liver(1000 * f, slices=38 + k % 5) for k, f in enumerate(SPREAD * 3)] + [liver(1000, slices=58)])
    assert [(f.case, f.subcode, f.severity) for f in found] == [("s0072", "extent", "warning")]


def test_one_slice_more_or_less_is_never_an_outlier() -> None:
    # extents of 4 slices with a few of 3 and 5: the MAD of the logs is 0, but a slice is 25% of the extent
    livers = [liver(10 * f, slices=4) for f in SPREAD] + [liver(10, slices=5), liver(10, slices=3)]
    assert [f for f in outliers(livers) if f.subcode == "extent"] == []


def test_excluded_classes_are_not_judged() -> None:
    spec = V2.model_copy(update={"labels": V2.labels.model_copy(
        update={"outliers": V2.labels.outliers.model_copy(update={"exclude": ["liver"]})})})
    assert outliers([liver(1000 * f) for f in SPREAD] + [liver(5000)], spec) == []


def with_reference(coverage: float, volume_ml: float, min_cases: int = 20):
    reference = ReferenceSpec(source="a test table", cases=1000, min_cases=min_cases,
                              classes={"liver": ReferenceClass(coverage=coverage, volume_ml=volume_ml)})
    return V2.model_copy(update={"reference": reference})


def drift(livers: list, spec) -> list:
    return check_drift(release(livers, spec))


def test_release_like_its_reference_has_no_drift() -> None:
    livers = [liver(1000 * f) for f in SPREAD] + [mask_values(0)] * 6  # 24 of 30: 80%
    assert drift(livers, with_reference(0.8, 1000)) == []


def test_class_found_in_far_fewer_cases_than_the_reference_is_release_drift_coverage() -> None:
    livers = [liver(1000 * f) for f in SPREAD] + [mask_values(0)] * 76  # 24 of 100
    [found] = drift(livers, with_reference(0.8, 1000))
    assert essentials([found]) == [("RELEASE_DRIFT", "coverage", None, None, "liver", "warning")]
    assert found.details["coverage"] == 0.24 and found.details["coverage_pp"] == -56.0


def test_small_coverage_change_is_info() -> None:
    livers = [liver(1000 * f) for f in SPREAD] * 9 + [mask_values(0)] * 84  # 72% of 300 against 80%: z -3.5
    [found] = drift(livers, with_reference(0.8, 1000))
    assert (found.subcode, found.severity) == ("coverage", "info")


def test_class_twice_its_reference_volume_is_release_drift_volume() -> None:
    [found] = drift([liver(2000 * f) for f in SPREAD], with_reference(1.0, 1000))
    assert (found.subcode, found.severity) == ("volume", "warning")
    assert found.details["volume_ratio"] == pytest.approx(2.0, rel=0.01)


def test_volume_change_within_the_tolerance_is_no_finding() -> None:
    assert drift([liver(1100 * f) for f in SPREAD], with_reference(1.0, 1000)) == []


def test_release_with_fewer_cases_than_the_reference_asks_is_not_compared() -> None:
    assert drift([liver(3000 * f) for f in SPREAD], with_reference(1.0, 1000, min_cases=100)) == []


def test_spec_without_a_reference_has_no_drift() -> None:
    assert drift([liver(3000 * f) for f in SPREAD], V2.model_copy(update={"reference": None})) == []


ORGANS = ("liver", "spleen", "kidney_left", "kidney_right", "stomach")
TYPICAL_ML = {"liver": 1500, "spleen": 180, "kidney_left": 150, "kidney_right": 150, "stomach": 250}


def people(sizes: list[float], liver_factor: dict[int, float]) -> list:
    """Cases whose five organs are their typical volume times the person's size (and, for some, the liver times a
    factor), with a little spread of their own."""
    cases = []
    for k, size in enumerate(sizes):
        masks = {name: liver(TYPICAL_ML[name] * size * SPREAD[(k + 5 * j) % 24] ** 0.5
                             * (liver_factor.get(k, 1.0) if name == "liver" else 1.0))
                 for j, name in enumerate(ORGANS)} | {"aorta": mask_values(0)}
        cases.append(case_facts(f"s{k:04d}", image=header(shape=GRID), deep=deep_facts(f"s{k:04d}", masks=masks)))
    return cases


def test_a_large_persons_organs_are_not_outliers_but_a_small_persons_tripled_liver_is() -> None:
    sizes = [math.exp(0.15 * (2 * k / 59 - 1)) for k in range(60)] + [1.9, 0.65]
    found = check_outliers(context(release_facts(people(sizes, {61: 3.0}))))
    assert {(f.case, f.class_name, f.subcode) for f in found if f.subcode == "volume"} == {("s0061", "liver", "volume")}
    [liver_finding] = [f for f in found if f.subcode == "volume"]
    assert liver_finding.details["case_size"] < 0.8
