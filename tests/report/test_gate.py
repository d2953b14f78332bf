"""The gate on a judged report: waivers and a baseline decide what fails the run, with no rescan."""

from __future__ import annotations

from datetime import date

import pytest
from report_builders import SPEC, V2, finding, mask, report

from qa.report.gate import Gate, apply_gate, describe
from qa.rules.baseline import baseline_of
from qa.rules.waivers import Waiver, Waivers

TODAY = date(2027, 1, 15)
CORRUPT = finding("FILE_CORRUPT", "s0002/ct.nii.gz", subcode="stream")
OVERLAP = finding("LABEL_OVERLAP", mask("s0001", "liver"), "warning", class_name="liver", key="spleen")
UNLISTED = finding("CASE_UNLISTED", "s0003")


def waivers(*entries: Waiver) -> Waivers:
    lines = [3 + 4 * k for k in range(len(entries))]
    return Waivers(file="waivers.yaml", spec=SPEC, entries=list(entries), lines=lines)


def gated(findings, fail_on="error", baseline=None, waived: Waivers | None = None, today: date = TODAY, spec=None):
    base = None if baseline is None else baseline_of(baseline, SPEC, "/data/old", "quick", report([]).started, "0.2")
    return apply_gate(report(findings, fail_on=fail_on),
                      Gate(fail_on=fail_on, today=today, baseline=base, baseline_file="b.json", waivers=waived), spec)


def codes(r) -> list[str]:
    return [f.code for f in r.findings]


def test_a_waived_finding_stays_in_the_report_with_its_reason_and_does_not_fail_the_run() -> None:
    r = gated([CORRUPT], waived=waivers(Waiver(code="FILE_CORRUPT", case="s0002", reason="re-export pending")))
    (f,) = r.findings
    assert (f.waived.reason, f.waived.entry) == ("re-export pending", 1)
    assert r.summary.passed and (r.summary.failing, r.summary.waived) == (0, 1)
    assert r.summary.by_severity["error"] == 1, "waived findings are still counted in the report"


def test_an_expired_waiver_stops_applying_and_raises_a_warning_naming_it() -> None:
    waiver = Waiver(code="FILE_CORRUPT", reason="until the next release", expires=date(2027, 1, 14))
    r = gated([CORRUPT], waived=waivers(waiver))
    assert not r.summary.passed and r.findings[1].waived is None
    expired = r.findings[0]
    assert (expired.code, expired.severity, expired.case, expired.path) == ("QA_WAIVER_EXPIRED", "warning", None, None)
    assert expired.details == {"file": "waivers.yaml", "entry": 1, "line": 3, "waiver": "FILE_CORRUPT",
                               "reason": "until the next release", "expires": "2027-01-14", "matched": 1}
    assert "waivers.yaml:3" in expired.message and "expired on 2027-01-14" in expired.message
    assert r.waivers.entries[0].state == "expired"


def test_a_waiver_in_force_that_matches_nothing_is_reported_as_info() -> None:
    r = gated([CORRUPT], waived=waivers(Waiver(code="FILE_CORRUPT", reason="x"),
                                        Waiver(code="LABEL_OVERLAP", class_name="vertebrae_*", reason="y")))
    assert codes(r) == ["QA_WAIVER_UNUSED", "FILE_CORRUPT"]
    assert (r.findings[0].severity, r.findings[0].details["entry"]) == ("info", 2)
    assert [u.state for u in r.waivers.entries] == ["active", "unused"]


def test_the_first_waiver_in_force_waives_and_an_expired_one_before_it_does_not() -> None:
    old = Waiver(code="FILE_CORRUPT", reason="old", expires=date(2026, 1, 1))
    new = Waiver(code="FILE_CORRUPT", subcode="stream", reason="new")
    r = gated([CORRUPT], waived=waivers(old, new))
    assert next(f for f in r.findings if f.code == "FILE_CORRUPT").waived.reason == "new"
    assert [(u.state, u.matched) for u in r.waivers.entries] == [("expired", 1), ("active", 1)]


def test_the_spec_sets_the_severity_of_the_waivers_codes() -> None:
    spec = V2.model_copy(update={"severities": {**V2.severities, "QA_WAIVER_EXPIRED": "error"}})
    r = gated([], waived=waivers(Waiver(code="FILE_CORRUPT", reason="x", expires=date(2026, 1, 1))), spec=spec)
    assert [(f.code, f.severity) for f in r.findings] == [("QA_WAIVER_EXPIRED", "error")]


def test_with_a_baseline_only_new_findings_fail_the_run() -> None:
    r = gated([CORRUPT, OVERLAP, UNLISTED], fail_on="warning", baseline=[CORRUPT, OVERLAP])
    assert [(f.code, f.baseline) for f in r.findings] == [
        ("FILE_CORRUPT", "unchanged"), ("LABEL_OVERLAP", "unchanged"), ("CASE_UNLISTED", "new")]
    assert r.summary.counted == "new" and r.summary.failing == 1 and not r.summary.passed
    assert gated([CORRUPT, OVERLAP], fail_on="warning", baseline=[CORRUPT, OVERLAP]).summary.passed


def test_a_finding_worse_than_its_baseline_fails_the_run() -> None:
    grown = OVERLAP.model_copy(update={"severity": "error"})
    r = gated([grown], baseline=[OVERLAP])
    assert r.findings[0].baseline == "worse" and not r.summary.passed


def test_baseline_entries_that_no_finding_matches_are_listed_fixed() -> None:
    r = gated([OVERLAP], baseline=[CORRUPT, OVERLAP])
    assert [(e.code, e.path, e.count) for e in r.fixed] == [("FILE_CORRUPT", "s0002/ct.nii.gz", 1)]
    assert (r.summary.baseline.fixed, r.baseline.findings, r.baseline.file) == (1, 2, "b.json")


def test_an_expired_waiver_is_new_against_any_baseline() -> None:
    waived = waivers(Waiver(code="FILE_CORRUPT", reason="x", expires=date(2026, 1, 1)))
    r = gated([CORRUPT], fail_on="warning", baseline=[CORRUPT], waived=waived)
    assert [(f.code, f.baseline) for f in r.findings] == [("QA_WAIVER_EXPIRED", "new"), ("FILE_CORRUPT", "unchanged")]
    assert not r.summary.passed


def test_gating_again_replaces_the_earlier_marks_and_waiver_findings() -> None:
    first = gated([CORRUPT], waived=waivers(Waiver(code="FILE_CORRUPT", reason="x", expires=date(2026, 1, 1))))
    again = apply_gate(first, Gate(fail_on="error", today=TODAY))
    assert codes(again) == ["FILE_CORRUPT"] and again.findings[0].waived is None
    assert again.waivers is None and not again.summary.passed


@pytest.mark.parametrize(("kind", "sentence"), [
    ("baseline", "Baseline b.json (the run of 2026-11-01 09:30 UTC): 0 new, 0 worse, 1 unchanged, 0 fixed since"),
    ("waivers", "Waivers waivers.yaml (as of 2027-01-15): 1 finding waived; 1 waivers in force, 0 expired"),
])
def test_the_summary_sentences_say_what_the_gate_did(kind: str, sentence: str) -> None:
    if kind == "baseline":
        r = gated([CORRUPT], baseline=[CORRUPT])
    else:
        r = gated([CORRUPT], waived=waivers(Waiver(code="FILE_CORRUPT", reason="x")))
    assert any(line.startswith(sentence) for line in describe(r)), describe(r)
