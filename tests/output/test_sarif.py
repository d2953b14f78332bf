"""SARIF 2.1.0: valid against the OASIS schema and GitHub's rules, with rules from the code catalogue."""

from __future__ import annotations

from datetime import date

from report_builders import finding, mask, report
from support import sarif_problems

from qa.output import sarif
from qa.output.sarif import SourceRoot, sarif_log
from qa.report.gate import Gate, apply_gate
from qa.rules.baseline import baseline_of
from qa.rules.codes import CODES
from qa.rules.waivers import Waiver, Waivers

IN_REPO = SourceRoot("data/v201", "file:///work/repo/")
CORRUPT = finding("FILE_CORRUPT", "s0002/ct.nii.gz", subcode="stream", crc=float("nan"))
OVERLAP = finding("LABEL_OVERLAP", mask("s0001", "liver"), "warning", class_name="liver", key="spleen")
SPLITS = finding("META_SPLIT_COUNTS", "meta.csv", "info", subcode="splits")


def results(log: dict) -> list[dict]:
    return log["runs"][0]["results"]


def uri(result: dict) -> str:
    return result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


def test_a_report_makes_a_valid_log_with_one_result_per_finding() -> None:
    log = sarif_log(report([CORRUPT, OVERLAP, SPLITS]), IN_REPO)
    assert sarif_problems(log) == []
    assert [(r["ruleId"], r["level"], uri(r)) for r in results(log)] == [
        ("FILE_CORRUPT", "error", "data/v201/s0002/ct.nii.gz"),
        ("LABEL_OVERLAP", "warning", "data/v201/s0001/segmentations/liver.nii.gz"),
        ("META_SPLIT_COUNTS", "note", "data/v201/meta.csv")]
    assert all("region" not in r["locations"][0]["physicalLocation"] for r in results(log))
    assert results(log)[0]["partialFingerprints"] == {"tsqaFingerprint/v1": CORRUPT.fingerprint}
    assert results(log)[0]["properties"]["details"] == {"crc": None}, "no NaN in JSON"
    assert log["runs"][0]["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///work/repo/"}}


def test_rules_are_the_code_catalogue_with_the_explain_text() -> None:
    rules = sarif_log(report([]), IN_REPO)["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CODES)
    corrupt = rules[list(CODES).index("FILE_CORRUPT")]
    code = CODES["FILE_CORRUPT"]
    assert corrupt["shortDescription"]["text"] == code.title
    assert all(part in corrupt["help"]["text"] for part in (code.what, code.why, code.fix, "stream: "))
    assert corrupt["defaultConfiguration"]["level"] == "error"


def test_a_release_outside_the_source_root_gets_absolute_file_uris() -> None:
    log = sarif_log(report([CORRUPT], release="/data/v201"), SourceRoot(None))
    assert sarif_problems(log) == [] and uri(results(log)[0]) == "file:///data/v201/s0002/ct.nii.gz"


def test_hostile_paths_are_percent_encoded_uris() -> None:
    # a finding holds a name's bytes that are not UTF-8 and its control characters escaped (\xe9, \n)
    path = "s0001/segmentations/a b#c?d%e\udce9\n.nii.gz"
    log = sarif_log(report([finding("FILE_UNEXPECTED", path, "warning", subcode="unknown")]), SourceRoot(""))
    assert sarif_problems(log) == []
    assert uri(results(log)[0]) == "s0001/segmentations/a%20b%23c%3Fd%25e%5Cxe9%5Cn.nii.gz"


def test_baseline_state_is_given_only_with_a_baseline_and_worse_is_updated() -> None:
    assert all("baselineState" not in r for r in results(sarif_log(report([CORRUPT]), IN_REPO)))
    base = baseline_of([CORRUPT, OVERLAP], "totalsegmentator-v2", "/r", "quick", report([]).started, "0.2")
    grown = OVERLAP.model_copy(update={"severity": "error"})
    gated = apply_gate(report([CORRUPT, grown, SPLITS]), Gate(fail_on="error", today=date(2027, 1, 1), baseline=base))
    log = sarif_log(gated, IN_REPO)
    assert sarif_problems(log) == []
    assert {r["ruleId"]: r["baselineState"] for r in results(log)} == {
        "FILE_CORRUPT": "unchanged", "LABEL_OVERLAP": "updated", "META_SPLIT_COUNTS": "new"}


def test_waived_findings_are_accepted_suppressions_and_waiver_findings_point_at_the_waivers_file() -> None:
    waivers = Waivers(file="ci/waivers.yaml", spec=None, lines=[4, 9],
                      entries=[Waiver(code="FILE_CORRUPT", reason="known"), Waiver(code="IMAGE_VALUES", reason="x")])
    gated = apply_gate(report([CORRUPT]), Gate(fail_on="error", today=date(2027, 1, 1), waivers=waivers))
    log = sarif_log(gated, IN_REPO)
    assert sarif_problems(log) == []
    by_rule = {r["ruleId"]: r for r in results(log)}
    assert by_rule["FILE_CORRUPT"]["suppressions"] == [{"kind": "external", "status": "accepted",
                                                        "justification": "known"}]
    place = by_rule["QA_WAIVER_UNUSED"]["locations"][0]["physicalLocation"]
    assert place == {"artifactLocation": {"uri": "ci/waivers.yaml", "uriBaseId": "%SRCROOT%"},
                     "region": {"startLine": 9}}


def test_past_githubs_result_limit_the_most_severe_are_kept(monkeypatch) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS", 2)
    log = sarif_log(report([SPLITS, OVERLAP, CORRUPT]), IN_REPO)
    assert [r["ruleId"] for r in results(log)] == ["FILE_CORRUPT", "LABEL_OVERLAP"]
    assert log["runs"][0]["properties"]["results_left_out"] == 1
