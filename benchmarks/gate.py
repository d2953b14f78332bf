"""Time the CI side of a full-size check: the gate (baseline and waivers), JUnit, SARIF, GitHub output, the diff, and
the history index, on a report shaped like v2.0.1's (1,228 deep cases, 117 classes, overlaps in nearly every case)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from qa.output.github import annotations, job_summary
from qa.output.html.diff import render_diff
from qa.output.html.history import read_histories, render_index
from qa.output.json import write_report
from qa.output.junit import junit_xml
from qa.output.markdown import diff_markdown
from qa.output.runs import new_run_dir, record_run, release_dir
from qa.output.sarif import SourceRoot, sarif_log
from qa.report.diff import diff_reports
from qa.report.gate import Gate, apply_gate
from qa.report.model import CaseReport, LabelStats, Report, SpecSnapshot, summarize
from qa.rules.baseline import baseline_of
from qa.rules.finding import Finding, fingerprint
from qa.rules.spec import load_spec
from qa.rules.waivers import Waiver, Waivers

SPEC = load_spec("totalsegmentator-v2")
STARTED = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
CASES = 1228


def findings_of(cases: int, overlaps_per_case: int) -> list[Finding]:
    """Overlaps in every case, ~140 non-orthonormal CTs, a few swapped vertebrae."""
    found = []
    for k in range(cases):
        case = f"s{k:04d}"
        for j in range(overlaps_per_case):
            a, b = SPEC.classes[j], SPEC.classes[j + 1]
            path = f"{case}/segmentations/{a}.nii.gz"
            found.append(Finding(code="LABEL_OVERLAP", severity="warning", case=case, path=path, class_name=a,
                                 message=f"{path}: shares 120 voxels with {b}", details={"voxels": 120, "share": 0.02},
                                 fingerprint=fingerprint("LABEL_OVERLAP", None, case, path, a, b)))
        if k % 9 == 0:
            path = f"{case}/ct.nii.gz"
            found.append(Finding(code="GEOM_AFFINE_INVALID", subcode="not_orthonormal", severity="error", case=case,
                                 path=path, message=f"{path}: direction cosines off by 3e-4",
                                 fingerprint=fingerprint("GEOM_AFFINE_INVALID", "not_orthonormal", case, path, None)))
    return found


def report_of(findings: list[Finding], started: datetime = STARTED) -> Report:
    label = LabelStats(voxels=5000, volume_ml=16.9, mean_hu=42.0, bbox=[[1, 2, 3], [40, 50, 60]],
                       centroid_mm=[1.5, -20.25, -400.75])
    cases = [CaseReport(case=f"s{k:04d}", split="train", labels=dict.fromkeys(SPEC.classes, label))
             for k in range(CASES)]
    return Report(version="bench", spec_id=SPEC.id, spec=SpecSnapshot.of(SPEC), spec_reason="bench",
                  release="/data/Totalsegmentator_dataset_v201", mode="deep", subset=False, started=started,
                  duration_s=1.0, summary=summarize(findings, CASES, CASES * 118, "error"), findings=findings,
                  cases=cases)


def timed(name: str, work: Callable[[], object], size: Callable[[object], int] | None = None) -> object:
    clock = time.perf_counter()
    result = work()
    wall = time.perf_counter() - clock
    extra = f"  {size(result) / 1e6:8.2f} MB" if size else ""
    print(f"{name:<52} {wall:8.3f} s{extra}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--overlaps", type=int, default=8, help="overlap findings per case (default 8)")
    parser.add_argument("--runs", type=int, default=20, help="runs kept in the history for the index (default 20)")
    args = parser.parse_args()
    findings = findings_of(CASES, args.overlaps)
    old = report_of(findings)
    print(f"{len(findings):,} findings over {CASES:,} cases")
    base = baseline_of(findings, SPEC.id, old.release, "deep", STARTED, "bench")
    new_fault = Finding(code="FILE_CORRUPT", subcode="stream", severity="error", case="s0005", path="s0005/ct.nii.gz",
                        message="CRC32 mismatch", fingerprint=fingerprint("FILE_CORRUPT", "stream", "s0005",
                                                                          "s0005/ct.nii.gz", None))
    new = report_of([*findings[10:], new_fault], STARTED + timedelta(days=1))
    waivers = Waivers(file="w.yaml", spec=SPEC.id, lines=[3, 9, 15], entries=[
        Waiver(code="GEOM_AFFINE_INVALID", subcode="not_orthonormal", path="*/ct.nii.gz", reason="ITK"),
        Waiver(code="LABEL_OVERLAP", reason="boundaries", expires=date(2027, 6, 30)),
        Waiver(code="LABEL_POSITION", class_name="vertebrae_*", reason="swaps")])
    gate = Gate(fail_on="error", today=date(2027, 1, 1), baseline=base, baseline_file="b.json", waivers=waivers)
    gated = timed("apply_gate (baseline + 3 waivers)", lambda: apply_gate(new, gate, SPEC))
    assert [f.path for f in gated.findings if f.baseline == "new" and f.path] == ["s0005/ct.nii.gz"]
    timed("junit_xml", lambda: junit_xml(gated), lambda x: len(x.encode()))
    timed("sarif_log + json.dumps", lambda: json.dumps(sarif_log(gated, SourceRoot("data/v201", "file:///w/"))),
          lambda x: len(x.encode()))
    timed("GitHub annotations + job summary", lambda: annotations(gated, "data") + [job_summary(gated)],
          lambda x: sum(len(line.encode()) for line in x))
    diff = timed("diff_reports", lambda: diff_reports(old, new, "old", "new"))
    timed("diff Markdown", lambda: diff_markdown(diff), lambda x: len(x.encode()))
    timed("diff HTML", lambda: render_diff(diff), lambda x: len(x.encode()))
    with tempfile.TemporaryDirectory(prefix="tsqa-bench-gate-") as tmp:
        reports = Path(tmp)
        folder = release_dir(reports, SPEC.id, new.release)
        for k in range(args.runs):
            run = new_run_dir(folder, STARTED + timedelta(hours=k))
            write_report(new, run)
            record_run(new, run)
        size = (run / "report.json").stat().st_size
        print(f"report.json of one run: {size / 1e6:.1f} MB")
        timed(f"index of {args.runs} runs from run.json", lambda: render_index(read_histories(reports)))
        for run_json in reports.rglob("run.json"):
            run_json.unlink()
        timed(f"index of {args.runs} runs rereading each report.json", lambda: render_index(read_histories(reports)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
