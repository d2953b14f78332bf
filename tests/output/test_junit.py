"""JUnit XML as CI tools read it (junitparser): a test per case and check family, failures, skips, hostile text."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from junitparser import Failure, JUnitXml, Skipped
from report_builders import finding, mask, report

from qa.output.junit import RELEASE_TEST, write_junit
from qa.report.gate import Gate, apply_gate
from qa.rules.baseline import baseline_of
from qa.rules.waivers import Waiver, Waivers

CORRUPT = finding("FILE_CORRUPT", "s0002/ct.nii.gz", subcode="stream", reason="CRC32 mismatch")
OVERLAP = finding("LABEL_OVERLAP", mask("s0001", "liver"), "warning", class_name="liver", key="spleen")
SPLITS = finding("META_SPLIT_COUNTS", "meta.csv", subcode="splits")


def parsed(tmp_path: Path, r) -> JUnitXml:
    return JUnitXml.fromfile(str(write_junit(r, tmp_path / "junit.xml")))


def outcomes(xml: JUnitXml) -> dict[tuple[str, str], str]:
    """(suite, test) -> failed, skipped or passed."""
    def outcome(case) -> str:
        kinds = {type(r) for r in case.result}
        return "failed" if Failure in kinds else "skipped" if Skipped in kinds else "passed"

    return {(suite.name, case.name): outcome(case) for suite in xml for case in suite}


def test_every_case_and_the_release_is_a_test_in_every_check_family_with_unique_names(tmp_path: Path) -> None:
    xml = parsed(tmp_path, report([]))
    names = [(suite.name, case.classname, case.name) for suite in xml for case in suite]
    assert len(names) == len(set(names)) == 7 * 4
    assert {n for _, _, n in names} == {RELEASE_TEST, "s0000", "s0001", "s0002"}
    assert {s for s, _, _ in names} == {"meta", "cases", "files", "geometry", "image", "labels", "tsqa"}
    assert set(outcomes(xml).values()) == {"passed"}


def test_findings_that_fail_the_run_are_failures_with_message_and_details(tmp_path: Path) -> None:
    xml = parsed(tmp_path, report([CORRUPT, OVERLAP, SPLITS]))
    failed = {key for key, outcome in outcomes(xml).items() if outcome == "failed"}
    assert failed == {("files", "s0002"), ("meta", RELEASE_TEST)}
    (case,) = [c for s in xml if s.name == "files" for c in s if c.name == "s0002"]
    (failure,) = case.result
    assert failure.type == "FILE_CORRUPT" and failure.message == "1 finding: FILE_CORRUPT s0002/ct.nii.gz"
    assert "error FILE_CORRUPT:stream s0002/ct.nii.gz" in failure.text and "reason=CRC32 mismatch" in failure.text
    assert xml.failures == 2 and xml.tests == 28


def test_a_finding_below_fail_on_passes_its_test_and_is_listed_in_its_output(tmp_path: Path) -> None:
    xml = parsed(tmp_path, report([OVERLAP]))
    (case,) = [c for s in xml if s.name == "labels" for c in s if c.name == "s0001"]
    assert case.is_passed and "warning LABEL_OVERLAP" in case.system_out


def test_waived_findings_skip_their_test_with_the_reason_and_unchanged_ones_pass(tmp_path: Path) -> None:
    base = baseline_of([SPLITS], "totalsegmentator-v2", "/r", "quick", report([]).started, "0.2")
    waivers = Waivers(file="w.yaml", spec=None, entries=[Waiver(code="FILE_CORRUPT", reason="re-export pending")],
                      lines=[2])
    r = apply_gate(report([CORRUPT, SPLITS]), Gate(fail_on="error", today=date(2027, 1, 1), baseline=base,
                                                   waivers=waivers))
    xml = parsed(tmp_path, r)
    got = outcomes(xml)
    assert (got[("files", "s0002")], got[("meta", RELEASE_TEST)]) == ("skipped", "passed")
    (case,) = [c for s in xml if s.name == "files" for c in s if c.name == "s0002"]
    assert case.result[0].message == "waived: re-export pending"


def test_hostile_text_in_paths_and_messages_still_makes_xml_that_parses(tmp_path: Path) -> None:
    path = "s0001/segmentations/a\x01b<c>&\"d\udce9\n.nii.gz"
    hostile = finding("FILE_UNEXPECTED", path, subcode="unknown", message=f"{path}: ]]> <![CDATA[ \x1b[31m")
    xml = parsed(tmp_path, report([hostile], fail_on="warning"))
    (case,) = [c for s in xml if s.name == "files" for c in s if c.name == "s0001"]
    assert "a\\x01b<c>&\"d\\xe9" in case.result[0].text and "]]> <![CDATA[ \\x1b[31m" in case.result[0].text
