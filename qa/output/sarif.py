"""SARIF 2.1.0 for code scanning (GitHub, SARIF viewers): the code catalogue as rules, a result per finding.

Every result has one file location (its path relative to the source root, no region), a level from its severity,
partialFingerprints from its fingerprint, baselineState when a baseline was given, and an accepted external
suppression when a waiver covers it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from qa.output.files import write_atomic
from qa.output.text import readable
from qa.report.model import Report
from qa.rules.codes import CODES, SEVERITY_RANK, Code
from qa.rules.finding import Finding, fails

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
BASELINE_STATES = {"new": "new", "unchanged": "unchanged", "worse": "updated"}
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "tsqaFingerprint/v1"
# GitHub keeps at most 25,000 results of a run; the rest are left out, the most severe and new are kept.
MAX_RESULTS = 25_000


@dataclass(frozen=True)
class SourceRoot:
    """Where the release lies for the SARIF consumer: its path relative to the source root (the repository checkout,
    '' when it is the root), or None when it lies outside it; and the source root's absolute file URI."""

    release_prefix: str | None
    uri: str | None = None


def rule(code: Code) -> dict:
    """A reportingDescriptor with the text of `tsqa explain CODE`."""
    subcodes = "".join(f"\n  {s.name}: {s.meaning}" for s in code.subcodes)
    text = (f"{code.title}\n\nWhat: {code.what}\n\n" + (f"Subcodes:{subcodes}\n\n" if subcodes else "")
            + f"Why it matters: {code.why}\n\nHow to fix: {code.fix}")
    markdown = (f"**{code.title}**\n\n**What.** {code.what}\n\n"
                + ("**Subcodes.**\n" + "".join(f"\n- `{s.name}`: {s.meaning}" for s in code.subcodes) + "\n\n"
                   if code.subcodes else "")
                + f"**Why it matters.** {code.why}\n\n**How to fix.** {code.fix}")
    return {"id": code.code, "name": "".join(w.capitalize() for w in code.code.split("_")),
            "shortDescription": {"text": code.title}, "fullDescription": {"text": code.what},
            "help": {"text": text, "markdown": markdown},
            "defaultConfiguration": {"level": LEVELS[code.severity]},
            "properties": {"tags": ["tsqa", "dataset-qa", code.code.split("_", 1)[0].lower()]}}


def _uri(path: str) -> str:
    return quote(path, safe="/", errors="surrogateescape")


def artifact(path: str, root: SourceRoot, release: str) -> dict:
    """The artifactLocation of a release-relative path: relative to the source root, or an absolute file URI."""
    if root.release_prefix is not None:
        joined = str(PurePosixPath(root.release_prefix, path)) if root.release_prefix else path
        return {"uri": _uri(joined), "uriBaseId": SRCROOT}
    return {"uri": Path(release, path).as_uri()}


def location(f: Finding, root: SourceRoot, release: str) -> dict:
    """The finding's file: its path in the release; for a waiver's finding, the waivers file at the entry's line."""
    if f.path is not None:
        return {"physicalLocation": {"artifactLocation": artifact(f.path, root, release)}}
    file, line = f.details.get("file"), f.details.get("line")
    if isinstance(file, str) and file:
        where = Path(file)
        place: dict = {"artifactLocation": ({"uri": where.resolve().as_uri()} if where.is_absolute()
                                            else {"uri": _uri(where.as_posix()), "uriBaseId": SRCROOT})}
        if isinstance(line, int) and line >= 1:
            place["region"] = {"startLine": line}
        return {"physicalLocation": place}
    return {"physicalLocation": {"artifactLocation": artifact(".", root, release)}}


def result(f: Finding, rule_index: int, report: Report, root: SourceRoot) -> dict:
    found: dict = {
        "ruleId": f.code, "ruleIndex": rule_index, "level": LEVELS[f.severity],
        "message": {"text": readable(f.message) or f.code},
        "locations": [location(f, root, report.release)],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": _clean({"subcode": f.subcode, "case": f.case, "class": f.class_name, "severity": f.severity,
                              "details": f.details}),
    }
    if report.baseline is not None and f.baseline is not None:
        found["baselineState"] = BASELINE_STATES[f.baseline]
    if f.waived is not None:
        found["suppressions"] = [{"kind": "external", "status": "accepted", "justification": readable(f.waived.reason)}]
    return found


def _clean(value: object) -> object:
    """Details as JSON every SARIF reader takes: readable strings, no NaN or infinity (null, as in report.json)."""
    if isinstance(value, str):
        return readable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {readable(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def sarif_log(report: Report, root: SourceRoot) -> dict:
    """The report as a SARIF 2.1.0 log of one run."""
    codes = list(CODES.values())
    index = {c.code: k for k, c in enumerate(codes)}
    s = report.summary
    ordered = sorted(report.findings, key=lambda f: (not fails(f, s.fail_on, s.counted == "new"),
                                                     -SEVERITY_RANK[f.severity], f.case or "", f.path or "", f.code))
    kept = [f for f in ordered if f.code in index][:MAX_RESULTS]
    run: dict = {
        "tool": {"driver": {"name": "tsqa", "version": report.version, "rules": [rule(c) for c in codes]}},
        "invocations": [{"executionSuccessful": True, "startTimeUtc": report.started.isoformat()}],
        "results": [result(f, index[f.code], report, root) for f in kept],
        "properties": {"spec_id": report.spec_id, "release": report.release, "mode": report.mode,
                       "fail_on": s.fail_on, "counted": s.counted, "passed": s.passed,
                       "results_left_out": len(report.findings) - len(kept)},
    }
    if root.uri is not None:
        run["originalUriBaseIds"] = {SRCROOT: {"uri": root.uri}}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def write_sarif(report: Report, path: Path, root: SourceRoot) -> Path:
    write_atomic(path, json.dumps(sarif_log(report, root), indent=1, allow_nan=False))
    return path
