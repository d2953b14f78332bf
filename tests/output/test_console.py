"""The console summary: verdict, and per code every severity it was reported at."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from rich.console import Console

from qa.app.pipeline import run_check
from qa.output.console import print_summary, severities_text
from qa.rules.spec import load_spec
from qa.synth.sample import make_sample


def test_one_severity_is_named_alone() -> None:
    assert severities_text(Counter({"warning": 3})) == "warning"


def test_several_severities_are_counted_most_severe_first() -> None:
    assert severities_text(Counter({"info": 2, "error": 1, "warning": 3})) == "error 1, warning 3, info 2"


def test_summary_shows_every_severity_of_a_code(tmp_path: Path) -> None:
    spec = load_spec("totalsegmentator-v2")
    sample = make_sample(tmp_path / "release", spec, cases=2, faults=["LABEL_OVERLAP"])
    report = run_check(sample.root, spec.model_copy(update={"values": spec.values.model_copy(
        update={"overlap_warning_share": 0.0, "overlap_error_share": 0.0})}), "test", subset=True)
    console = Console(record=True, width=200)
    print_summary(report, tmp_path / "report.json", console)
    text = console.export_text()
    assert "FAIL totalsegmentator-v2, 2 cases" in text
    assert any(line.startswith("LABEL_OVERLAP") and "error" in line for line in text.splitlines())


def test_case_ids_are_printed_as_text_not_as_markup_or_escape_sequences(tmp_path: Path) -> None:
    spec = load_spec("totalsegmentator-v2")
    sample = make_sample(tmp_path / "release", spec, cases=2, shape=(24, 20, 32))
    meta = sample.root / spec.meta.file
    meta.write_bytes(meta.read_bytes().replace(b"s0000;", b"s0000\x1b[2J;").replace(b"s0001;", b"s0001[/red];"))
    report = run_check(sample.root, spec, "test", mode="quick", subset=True)
    stream = io.StringIO()
    print_summary(report, tmp_path / "report.json", Console(file=stream, force_terminal=True, width=200))
    printed = stream.getvalue()
    assert "s0000\\x1b[2J" in printed and "s0001[/red]" in printed
    assert "\x1b[2J" not in printed


def test_summary_says_when_fail_on_counted_only_new_findings(tmp_path: Path) -> None:
    from datetime import date

    from report_builders import finding, report

    from qa.report.gate import Gate, apply_gate
    from qa.rules.baseline import baseline_of

    known, new = finding("FILE_CORRUPT", "s0002/ct.nii.gz"), finding("CASE_UNLISTED", "s0003")
    base = baseline_of([known], "totalsegmentator-v2", "/r", "quick", report([]).started, "0.2")
    r = apply_gate(report([known, new]), Gate(fail_on="error", today=date(2027, 1, 1), baseline=base,
                                              baseline_file="b.json"))
    console = Console(record=True, width=200)
    print_summary(r, tmp_path / "report.json", console)
    text = console.export_text()
    assert "(fail on error, counting only new findings)" in text
    assert "Baseline b.json (the run of 2026-11-01 09:30 UTC): 1 new, 0 worse, 1 unchanged, 0 fixed since" in text


def test_summary_counts_in_words_one_error_and_several_warnings(tmp_path: Path) -> None:
    spec = load_spec("totalsegmentator-v2")
    sample = make_sample(tmp_path / "release", spec, cases=2, shape=(24, 20, 32),
                         faults=["GEOM_AFFINE_MISMATCH", "FILE_UNEXPECTED:os_junk"])
    report = run_check(sample.root, spec, "test", mode="quick", subset=True)
    console = Console(record=True, width=200)
    print_summary(report, tmp_path / "report.json", console)
    errors, warnings = report.summary.by_severity["error"], report.summary.by_severity["warning"]
    assert (errors, warnings > 1) == (1, True)
    assert f"1 error, {warnings} warnings," in console.export_text()
