"""registry: the registered checks against the catalogue of codes, and `judge` over literal release facts."""

from __future__ import annotations

from literal import (
    V2,
    case_facts,
    deep_facts,
    essentials,
    header,
    mask_header,
    mask_values,
    meta_csv,
    ras,
    release_facts,
    row,
    shifted,
)

from qa.checks.base import Check
from qa.checks.registry import CHECKS, judge
from qa.rules.codes import CODES
from qa.rules.waivers import WAIVER_CODES
from qa.scan.facts import Problem

DEEP_CHECKS = [c for c in CHECKS if c.needs == "deep"]


def seen_only_in_deep_pass(code: str) -> bool:
    return CODES[code].needs == "deep"


def has_deep_subcode(code: str) -> bool:
    return any(s.needs == "deep" for s in CODES[code].subcodes)


def test_every_code_of_the_catalogue_is_declared_by_a_registered_check_or_made_by_waivers() -> None:
    declared = {code for c in CHECKS for code in c.codes}
    assert sorted(set(CODES) - declared) == sorted(WAIVER_CODES)


def test_every_declared_code_is_in_the_catalogue() -> None:
    assert sorted({code for c in CHECKS for code in c.codes} - set(CODES)) == []


def test_every_check_is_registered_once() -> None:
    # a module imported twice would register its checks again and double their findings
    names = [c.name for c in CHECKS]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_a_check_on_quick_facts_declares_no_code_only_the_deep_pass_sees() -> None:
    assert [(c.name, code) for c in CHECKS if c.needs == "quick" for code in c.codes
            if seen_only_in_deep_pass(code)] == []


def test_a_check_on_deep_facts_declares_only_codes_or_subcodes_of_the_deep_pass() -> None:
    # labels.streams raises FILE_CORRUPT, a quick code, but only as its deep subcode 'stream'
    assert [(c.name, code) for c in DEEP_CHECKS for code in c.codes
            if not (seen_only_in_deep_pass(code) or has_deep_subcode(code))] == []


def test_every_deep_subcode_is_declared_by_a_check_on_deep_facts() -> None:
    deep_declared = {code for c in DEEP_CHECKS for code in c.codes}
    assert sorted(code for code in CODES if has_deep_subcode(code) and code not in deep_declared) == []


def test_checks_of_unscanned_cases_need_only_quick_facts() -> None:
    # judge runs unscanned-case checks whatever the pass: they never have deep facts to read
    assert sorted((c.name, c.needs) for c in CHECKS if c.scope == "unscanned_case" and c.needs != "quick") == []


def test_release_checks_that_need_the_deep_pass_do_not_run_on_quick_facts(monkeypatch) -> None:
    ran = []
    deep_check = Check("deep.release", (), "release", "deep", lambda ctx: ran.append(ctx) or [])
    monkeypatch.setattr("qa.checks.registry.CHECKS", (deep_check,))
    judge(release_facts(["s0001"]), V2, subset=True)
    assert ran == []
    judge(release_facts([case_facts("s0001", deep=deep_facts())]), V2, subset=True)
    assert len(ran) == 1


def test_clean_release_is_judged_clean() -> None:
    judgement = judge(release_facts(["s0001", "s0002"]), V2, subset=True)
    assert judgement.findings == []
    assert list(judgement.table.frame["image_id"]) == ["s0001", "s0002"]


def test_deep_check_does_not_run_on_quick_facts() -> None:
    # every mask empty is LABEL_ALL_EMPTY in deep facts; quick facts cannot tell, so they are judged clean
    empty = deep_facts(masks={"aorta": mask_values(0)})
    quick = judge(release_facts([case_facts()]), V2, subset=True)
    deep = judge(release_facts([case_facts(deep=empty)]), V2, subset=True)
    assert (quick.findings, [f.code for f in deep.findings]) == ([], ["LABEL_ALL_EMPTY"])


def test_case_that_could_not_be_scanned_gets_only_qa_internal_with_its_subcode() -> None:
    facts = release_facts([case_facts("s0001", internal_error=Problem("crash", "worker killed by SIGKILL")),
                           case_facts("s0002", absent=["segmentations/liver.nii.gz"])])
    assert essentials(judge(facts, V2, subset=True).findings) == [
        ("QA_INTERNAL", "crash", "s0001", "s0001", None, "error"),
        ("FILE_MISSING", "file", "s0002", "s0002/segmentations/liver.nii.gz", "liver", "error"),
    ]


def test_judge_sorts_findings_by_case_path_severity_code_and_message_whatever_the_input_order() -> None:
    cases = [case_facts("s0002", masks={"liver": mask_header(affine=shifted(ras(), 0.5), dtype="int16")}),
             case_facts("s0001", image=header(dtype="float32"), extra={".DS_Store": "file"})]
    text = meta_csv(row("s0001") + ";Basel", row("s0002") + ";Bern", columns=[*V2.meta.columns, "site"])
    forward = judge(release_facts(cases, meta_csv_text=text, root_extra={"README.txt": "file"}), V2).findings
    backward = judge(release_facts(cases[::-1], meta_csv_text=text, root_extra={"README.txt": "file"}), V2).findings
    assert forward == backward
    assert [(f.case, f.path, f.severity, f.code, f.subcode) for f in forward] == [
        (None, "README.txt", "warning", "FILE_UNEXPECTED", "unknown"),
        (None, "meta.csv", "error", "META_SPLIT_COUNTS", "total"),  # 'meta.csv lists ...' before 'split sizes ...'
        (None, "meta.csv", "error", "META_SPLIT_COUNTS", "splits"),
        (None, "meta.csv", "warning", "META_COLUMNS", "unknown"),
        ("s0001", "s0001/.DS_Store", "warning", "FILE_UNEXPECTED", "os_junk"),
        ("s0001", "s0001/ct.nii.gz", "error", "IMAGE_DTYPE", None),
        ("s0002", "s0002/segmentations/liver.nii.gz", "error", "GEOM_AFFINE_MISMATCH", "both"),
        ("s0002", "s0002/segmentations/liver.nii.gz", "error", "LABEL_DTYPE", "dtype"),
    ]
