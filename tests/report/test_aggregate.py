"""aggregate: class statistics over whole masks, and the drift table with the severities its findings got."""

from __future__ import annotations

from literal import V2, case_facts, deep_facts, header, mask_values, release_facts

from qa.report.aggregate import case_labels, class_stats, drift_stats
from qa.rules.finding import Finding, fingerprint
from qa.rules.spec import ReferenceClass, ReferenceSpec
from qa.scan.measures import class_drift, measured_masks

GRID = (64, 64, 64)


def case(name: str, **masks):
    return case_facts(name, image=header(shape=GRID), deep=deep_facts(name, masks=masks))


def test_class_volumes_are_over_whole_masks_and_the_mean_over_all_non_empty_ones() -> None:
    whole = [case(f"s000{k}", liver=mask_values(1000 * (k + 1), bbox=((5, 5, 5), (40, 40, 20 + k)))) for k in range(3)]
    cut = case("s0009", liver=mask_values(100, bbox=((5, 5, 0), (40, 40, 10))))
    labels = [case_labels(c, V2, measured_masks(c, V2)) for c in [*whole, cut]]
    [liver] = [s for s in class_stats(labels, V2) if s.name == "liver"]
    assert (liver.cases_present, liver.cases_whole) == (4, 3)
    assert liver.volume_ml_median == 2000 * 0.003375
    assert liver.volume_ml_mean == (1000 + 2000 + 3000 + 100) / 4 * 0.003375
    assert liver.extent_mm_median == 17 * 1.5
    assert labels[3]["liver"].whole is False and labels[0]["liver"].extent_mm == 16 * 1.5


def test_drift_rows_carry_the_severity_of_their_findings_and_the_most_moved_come_first() -> None:
    reference = ReferenceSpec(source="card", cases=100, classes={
        "liver": ReferenceClass(coverage=0.9, volume_ml=3.0), "spleen": ReferenceClass(coverage=0.5, volume_ml=1.0)})
    spec = V2.model_copy(update={"reference": reference})
    facts = release_facts([case(f"s000{k}", liver=mask_values(1000), spleen=mask_values(300 if k % 2 else 0))
                           for k in range(4)])
    drift = Finding(code="RELEASE_DRIFT", subcode="volume", severity="info", case=None, path=None, class_name="spleen",
                    message="moved", fingerprint=fingerprint("RELEASE_DRIFT", "volume", None, None, "spleen"))
    rows = drift_stats(class_drift(facts, spec), [drift])
    assert [(r.name, r.present, r.cases, r.volume_severity) for r in rows] == [("spleen", 2, 4, "info"),
                                                                                ("liver", 4, 4, None)]
    assert rows[1].coverage_pp == 10.0 and rows[1].volume_ratio == round(1000 * 0.003375 / 3.0, 4)
