"""The code catalogue: codes, subcodes and passes are well formed, and specs may only name what it has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from qa.app.cli import main
from qa.rules.codes import CODES
from qa.rules.spec import SpecError, load_spec


def test_codes_and_subcodes_are_upper_and_lower_snake_case_and_unique() -> None:
    for code in CODES.values():
        assert re.fullmatch(r"[A-Z]+(_[A-Z]+)+", code.code)
        names = [s.name for s in code.subcodes]
        assert len(names) == len(set(names))
        assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in names)


def test_a_subcode_needs_its_codes_pass_unless_it_needs_more() -> None:
    needs = {(c.code, s.name): s.needs for c in CODES.values() for s in c.subcodes if s.needs is not None}
    assert needs == {("FILE_CORRUPT", "stream"): "deep"}


def test_explain_lists_a_codes_subcodes_and_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "FILE_CORRUPT"]) == 0
    text = capsys.readouterr().out
    assert "seen by the quick and the deep pass" in text
    assert all(f"{s.name}: " in text for s in CODES["FILE_CORRUPT"].subcodes)
    assert "stream: decompressing every byte of every gzip member fails" in text and "(deep pass only)" in text


def write_spec(tmp_path: Path, severities: dict[str, str]) -> str:
    data = load_spec("totalsegmentator-v2").model_dump(mode="json")
    data["severities"] = severities
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_spec_may_set_the_severity_of_one_subcode(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, {"FILE_UNEXPECTED": "warning", "FILE_UNEXPECTED:os_junk": "info"}))
    severities = (spec.severity("FILE_UNEXPECTED", "os_junk"), spec.severity("FILE_UNEXPECTED", "link"))
    assert severities == ("info", "warning")


def test_a_spec_naming_an_unknown_subcode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unknown finding codes or subcodes: FILE_UNEXPECTED:junk"):
        load_spec(write_spec(tmp_path, {"FILE_UNEXPECTED:junk": "info"}))
