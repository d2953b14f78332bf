"""Waivers files: validated with the line of each problem, and matched on code, subcode and case, path, class globs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import REPO

from qa.rules.finding import Finding, fingerprint
from qa.rules.waivers import Waiver, WaiverError, load_waivers

EXAMPLE = REPO / "examples" / "waivers-totalsegmentator-v2.0.1.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    return path


def found(code: str, case: str | None, path: str | None, class_name: str | None = None,
          subcode: str | None = None) -> Finding:
    return Finding(code=code, subcode=subcode, severity="error", case=case, path=path, class_name=class_name,
                   message="m", fingerprint=fingerprint(code, subcode, case, path, class_name))


def test_a_valid_file_loads_with_the_line_of_each_waiver(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, """spec: totalsegmentator-v2
waivers:
  - code: GEOM_AFFINE_INVALID
    subcode: not_orthonormal
    reason: ITK refuses them; accepted for v2.0.1
    expires: 2027-06-30
  - code: LABEL_OVERLAP
    class: vertebrae_*
    reason: boundary voxels
"""))
    assert waivers.spec == "totalsegmentator-v2" and waivers.lines == [3, 7]
    assert waivers.entries[0].expires == date(2027, 6, 30) and waivers.entries[1].class_name == "vertebrae_*"


@pytest.mark.parametrize(("text", "message"), [
    ("waivers:\n  - code: FILE_CORRUPT\n    reason: x\n  - code: NOPE\n    reason: y\n",
     "waivers.yaml:4: waiver 2: code: unknown finding code 'NOPE'"),
    ("waivers:\n  - code: FILE_CORRUPT\n    subcode: crc\n    reason: x\n",
     "waivers.yaml:2: waiver 1: (entry): FILE_CORRUPT has no subcode 'crc'"),
    ("waivers:\n  - code: FILE_CORRUPT\n    expires: 2027-02-30\n    reason: x\n",
     "waivers.yaml:3: waiver 1: expires: Input should be a valid date"),
    ("waivers:\n  - code: FILE_CORRUPT\n    reason: '  '\n", "waivers.yaml:3: waiver 1: reason: a waiver must say why"),
    ("waivers:\n  - code: FILE_CORRUPT\n", "waivers.yaml:2: waiver 1: reason: Field required"),
    ("waivers:\n  - code: FILE_CORRUPT\n    reason: x\n    severity: warning\n",
     "waivers.yaml:4: waiver 1: severity: Extra inputs are not permitted"),
    ("waivers:\n  - code: QA_WAIVER_EXPIRED\n    reason: x\n", "cannot be waived"),
    ("waiver:\n  - code: FILE_CORRUPT\n", "waivers.yaml:1: waivers: Field required (and 1 more)"),
    ("- code: FILE_CORRUPT\n", "a waivers file is a mapping with a 'waivers:' list"),
    ("waivers: [\n", "waivers.yaml:2: not valid YAML"),
], ids=["unknown code", "unknown subcode", "bad date", "blank reason", "no reason", "unknown key",
        "waiving a waiver code", "misspelt top key", "a list", "broken YAML"])
def test_a_bad_file_is_refused_in_one_line_naming_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WaiverError) as caught:
        load_waivers(write(tmp_path, text))
    text = str(caught.value)
    assert message in text and "\n" not in text


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WaiverError, match="cannot read waivers file"):
        load_waivers(tmp_path / "missing.yaml")


def test_a_waiver_matches_on_code_subcode_and_globs() -> None:
    waiver = Waiver(code="LABEL_POSITION", subcode="order", case="s01*", class_name="vertebrae_*", reason="known")
    hit = found("LABEL_POSITION", "s0107", "s0107/segmentations/vertebrae_L1.nii.gz", "vertebrae_L1", "order")
    assert waiver.matches(hit)
    assert not waiver.matches(hit.model_copy(update={"subcode": "side"}))
    assert not waiver.matches(hit.model_copy(update={"case": "s0207"}))
    assert not waiver.matches(hit.model_copy(update={"class_name": "heart"}))
    assert not waiver.matches(hit.model_copy(update={"code": "LABEL_OVERLAP"}))


def test_a_path_glob_crosses_folders_and_a_glob_never_matches_a_missing_field() -> None:
    waiver = Waiver(code="FILE_UNEXPECTED", path="*/.DS_Store", reason="macOS")
    assert waiver.matches(found("FILE_UNEXPECTED", "s0001", "s0001/segmentations/.DS_Store"))
    assert not Waiver(code="META_VALUE", case="*", reason="x").matches(found("META_VALUE", None, "meta.csv"))


def test_a_waiver_applies_through_its_expiry_date() -> None:
    waiver = Waiver(code="FILE_CORRUPT", reason="x", expires=date(2027, 6, 30))
    assert not waiver.expired(date(2027, 6, 30)) and waiver.expired(date(2027, 7, 1))
    assert not Waiver(code="FILE_CORRUPT", reason="x").expired(date(9999, 1, 1))


def test_the_example_waivers_of_v201_validate_for_the_v2_spec() -> None:
    waivers = load_waivers(EXAMPLE)
    assert waivers.spec == "totalsegmentator-v2"
    assert ("GEOM_AFFINE_INVALID", "not_orthonormal") in {(w.code, w.subcode) for w in waivers.entries}
    assert all(w.reason and w.expires is not None for w in waivers.entries)
