"""The gate on a judged report: baseline marks, waivers and the verdict of --fail-on with them, without a rescan."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

from qa.report.model import BaselineRef, FailOn, Report, WaiversRef, WaiverUse, summarize
from qa.rules.baseline import Baseline, match
from qa.rules.codes import CODES, Severity
from qa.rules.finding import Finding, Waived, finding_sort_key, fingerprint
from qa.rules.spec import ReleaseSpec
from qa.rules.waivers import WAIVER_CODES, Waiver, Waivers


@dataclass(frozen=True)
class Gate:
    """What a check is gated with: --fail-on, the day waivers are judged on, and optionally a baseline and waivers
    (with the files they came from)."""

    fail_on: FailOn
    today: date
    baseline: Baseline | None = None
    baseline_file: str | None = None
    waivers: Waivers | None = None


def apply_gate(report: Report, gate: Gate, spec: ReleaseSpec | None = None) -> Report:
    """The report with its findings marked waived and new or unchanged, the waivers' own findings, the baseline
    entries fixed since, and the summary's verdict under the gate. Earlier marks are dropped first, so a report
    can be gated again (another baseline, another day) from its report.json alone."""
    unmarked = {"baseline": None, "waived": None}
    findings = [f if f.baseline is None and f.waived is None else f.model_copy(update=unmarked)
                for f in report.findings if f.code not in WAIVER_CODES]
    waivers_ref = None
    if gate.waivers is not None:
        findings, uses = _waive(findings, gate.waivers, gate.today)
        findings += [f for use in uses if (f := _waiver_finding(use, gate.waivers.file, spec)) is not None]
        findings.sort(key=finding_sort_key)
        waivers_ref = WaiversRef(file=gate.waivers.file, today=gate.today, entries=uses)
    baseline_ref, fixed = None, []
    if gate.baseline is not None:
        matched = match(findings, gate.baseline.entries)
        # the waivers' own findings are never in a baseline: a waiver that expires is news on every run
        findings = [f.model_copy(update={"baseline": "new" if f.code in WAIVER_CODES else state})
                    for f, state in zip(findings, matched.states)]
        fixed = matched.fixed
        baseline_ref = BaselineRef(file=gate.baseline_file or "(unnamed)", release=gate.baseline.release,
                                   started=gate.baseline.started, findings=sum(e.count for e in gate.baseline.entries))
    summary = summarize(findings, report.summary.cases, report.summary.files, gate.fail_on,
                        only_new=gate.baseline is not None, fixed=sum(e.count for e in fixed))
    return report.model_copy(update={"findings": findings, "summary": summary, "baseline": baseline_ref,
                                     "fixed": fixed, "waivers": waivers_ref})


def _waive(findings: list[Finding], waivers: Waivers, today: date) -> tuple[list[Finding], list[WaiverUse]]:
    """Each finding waived by the first waiver in force that matches it; how many each waiver matched."""
    matched = [0] * len(waivers.entries)
    marks = [Waived(reason=w.reason, expires=w.expires, entry=k + 1) for k, w in enumerate(waivers.entries)]
    expired = [w.expired(today) for w in waivers.entries]
    marked = []
    for f in findings:
        waived = None
        for k, waiver in enumerate(waivers.entries):
            if not waiver.matches(f):
                continue
            if expired[k]:
                matched[k] += 1
            elif waived is None:
                matched[k] += 1
                waived = marks[k]
        marked.append(f if waived is None else f.model_copy(update={"waived": waived}))
    uses = [WaiverUse(entry=k + 1, line=line, waiver=waiver, matched=n,
                      state="expired" if waiver.expired(today) else "active" if n else "unused")
            for k, (waiver, line, n) in enumerate(zip(waivers.entries, waivers.lines, matched))]
    return marked, uses


def _waiver_finding(use: WaiverUse, file: str, spec: ReleaseSpec | None) -> Finding | None:
    """QA_WAIVER_EXPIRED for an expired waiver, QA_WAIVER_UNUSED for one in force that matched nothing."""
    if use.state == "active":
        return None
    w = use.waiver
    where = f"{file}:{use.line}" if use.line is not None else file
    if use.state == "expired":
        code = "QA_WAIVER_EXPIRED"
        again = "the finding it matched counts" if use.matched == 1 else f"the {use.matched} findings it matched count"
        message = f"{where}: waiver {use.entry} ({w.target()}) expired on {w.expires}; {again} again ({w.reason})"
    else:
        code = "QA_WAIVER_UNUSED"
        message = f"{where}: waiver {use.entry} ({w.target()}) matched no finding ({w.reason})"
    severity: Severity = spec.severity(code) if spec is not None else CODES[code].severity
    details = {"file": file, "entry": use.entry, "line": use.line, "waiver": w.target(), "reason": w.reason,
               "expires": None if w.expires is None else w.expires.isoformat(), "matched": use.matched}
    # identified by what the waiver matches, not its position, so that reordering the file keeps the identity
    return Finding(code=code, severity=severity, case=None, path=None, message=message, details=details,
                   fingerprint=fingerprint(code, None, None, None, None, _waiver_key(w)))


def _waiver_key(w: Waiver) -> str:
    return "\x1f".join(v or "" for v in (w.code, w.subcode, w.case, w.path, w.class_name))


def describe(report: Report) -> list[str]:
    """What the baseline and the waivers did, in sentences for the summaries people read."""
    s, lines = report.summary, []
    if report.baseline is not None and s.baseline is not None:
        b = s.baseline
        lines.append(f"Baseline {report.baseline.file} (the run of {report.baseline.started:%Y-%m-%d %H:%M} UTC): "
                     f"{b.new} new, {b.worse} worse, {b.unchanged} unchanged, {b.fixed} fixed since; --fail-on "
                     f"counted only the new and worse.")
    if report.waivers is not None:
        states = Counter(u.state for u in report.waivers.entries)
        lines.append(f"Waivers {report.waivers.file} (as of {report.waivers.today}): {s.waived} "
                     f"finding{'' if s.waived == 1 else 's'} waived; {states['active']} waivers in force, "
                     f"{states['expired']} expired, {states['unused']} unused.")
    return lines
