"""The diff of two reports: findings by fingerprint, cases, split moves and class changes beyond the threshold."""

from __future__ import annotations

from report_builders import class_stats, finding, mask, report

from qa.report.diff import diff_reports
from qa.rules.finding import Waived

CORRUPT = finding("FILE_CORRUPT", "s0002/ct.nii.gz", subcode="stream")
OVERLAP = finding("LABEL_OVERLAP", mask("s0001", "liver"), "warning", class_name="liver", key="spleen", share=0.1)
JUNK = finding("FILE_UNEXPECTED", "s0000/.DS_Store", "warning", subcode="os_junk")


def diff(old, new, **options):
    return diff_reports(old, new, "old/report.json", "new/report.json", **options)


def test_findings_are_new_fixed_or_unchanged_by_fingerprint_whatever_their_numbers() -> None:
    moved = OVERLAP.model_copy(update={"details": {"share": 0.12}, "message": "other words"})
    d = diff(report([CORRUPT, OVERLAP]), report([moved, JUNK]))
    assert [f.code for f in d.new_findings] == ["FILE_UNEXPECTED"]
    assert [f.code for f in d.fixed_findings] == ["FILE_CORRUPT"]
    assert d.unchanged == [OVERLAP.fingerprint]
    assert [(c.code, c.old, c.new) for c in d.by_code] == [("FILE_CORRUPT", 1, 0), ("FILE_UNEXPECTED", 0, 1)]


def test_a_fingerprint_occurring_more_often_is_new_for_the_extra_findings() -> None:
    d = diff(report([JUNK]), report([JUNK, JUNK]))
    assert (d.summary.new, d.summary.unchanged, d.summary.fixed) == (1, 1, 0)


def test_new_findings_at_the_fail_on_level_fail_the_diff_unless_waived() -> None:
    assert not diff(report([]), report([CORRUPT])).summary.passed
    assert diff(report([]), report([JUNK])).summary.passed, "a new warning does not reach --fail-on error"
    assert not diff(report([]), report([JUNK]), fail_on="warning").summary.passed
    waived = CORRUPT.model_copy(update={"waived": Waived(reason="known", entry=1)})
    assert diff(report([]), report([waived])).summary.passed


def test_a_severity_that_rose_counts_as_new_for_the_verdict() -> None:
    grown = OVERLAP.model_copy(update={"severity": "error"})
    d = diff(report([OVERLAP]), report([grown]))
    assert [(c.old_severity, c.finding.severity) for c in d.severity_changes] == [("warning", "error")]
    assert d.summary.new == 0 and d.summary.failing == 1 and not d.summary.passed


def test_cases_added_removed_and_moved_between_splits() -> None:
    d = diff(report([], {"s0000": "train", "s0001": "val", "s0002": "test"}),
             report([], {"s0000": "train", "s0001": "test", "s0003": "train"}))
    assert (d.cases_added, d.cases_removed) == (["s0003"], ["s0002"])
    assert [(m.case, m.old, m.new) for m in d.split_moves] == [("s0001", "val", "test")]


def test_classes_change_when_cases_containing_them_change_or_the_median_moves_beyond_the_threshold() -> None:
    old = report([], mode="deep", classes=[class_stats("liver", 3, 1500.0), class_stats("spleen", 3, 200.0),
                                           class_stats("heart", 2, 600.0)])
    new = report([], mode="deep", classes=[class_stats("liver", 3, 1600.0), class_stats("spleen", 3, 240.0),
                                           class_stats("heart", 3, 600.0)])
    d = diff(old, new)
    assert [(c.name, c.cases_old, c.cases_new, c.volume_change) for c in d.class_changes] == [
        ("spleen", 3, 3, 0.2), ("heart", 2, 3, 0.0)]
    assert [c.name for c in diff(old, new, volume_change=0.05).class_changes] == ["liver", "spleen", "heart"]


def test_classes_are_not_compared_when_a_report_has_no_class_statistics() -> None:
    d = diff(report([], mode="quick"), report([], mode="deep", classes=[class_stats("liver", 3, 1500.0)]))
    assert not d.classes_compared and d.class_changes == []
