"""Baselines: the findings of a run recorded by fingerprint, and the matching that marks later findings against them."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qa.rules.codes import SEVERITY_RANK, Severity
from qa.rules.finding import BaselineState, Finding
from qa.rules.waivers import WAIVER_CODES

# Raised when the baseline file changes in a way an older tsqa cannot read.
BASELINE_FORMAT = 1
# About ten times the baseline of a full release with 88,000 findings (some 26 MB), and nothing a reader chokes on.
MAX_BASELINE_BYTES = 256 << 20


class BaselineError(ValueError):
    """A baseline that cannot be read or is not a tsqa baseline; the message is one line for the user."""


class BaselineEntry(BaseModel):
    """One finding identity of the recorded run, how often it occurred, and enough to tell a person what it was."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str
    code: str
    subcode: str | None = None
    severity: Severity = Field(description="The highest severity it had; a finding above it now is 'worse'.")
    case: str | None
    path: str | None
    class_name: str | None = None
    count: int = Field(1, ge=1, description="How many findings of the run had this fingerprint.")
    message: str


class Baseline(BaseModel):
    """The accepted findings of one run of one spec: a check with --baseline fails only on what is not in here."""

    model_config = ConfigDict(extra="forbid", title="tsqa baseline")

    tool: Literal["tsqa"] = "tsqa"
    kind: Literal["baseline"] = "baseline"
    format: int = BASELINE_FORMAT
    spec_id: str
    release: str = Field(description="The release the recorded run checked (informative: matching ignores it).")
    mode: str
    started: datetime = Field(description="When the recorded run started.")
    version: str = Field(description="The tsqa version of the recorded run.")
    entries: list[BaselineEntry]


def baseline_of(findings: list[Finding], spec_id: str, release: str, mode: str, started: datetime,
                version: str) -> Baseline:
    """A baseline of a run's findings; the waivers' own findings are left out, they are not about the release."""
    entries: dict[str, BaselineEntry] = {}
    for f in findings:
        if f.code in WAIVER_CODES:
            continue
        seen = entries.get(f.fingerprint)
        if seen is None:
            entries[f.fingerprint] = BaselineEntry(fingerprint=f.fingerprint, code=f.code, subcode=f.subcode,
                                                   severity=f.severity, case=f.case, path=f.path,
                                                   class_name=f.class_name, message=f.message)
        else:
            worst = max(seen.severity, f.severity, key=SEVERITY_RANK.__getitem__)
            entries[f.fingerprint] = seen.model_copy(update={"count": seen.count + 1, "severity": worst})
    ordered = sorted(entries.values(), key=lambda e: (e.case or "", e.path or "", e.code, e.fingerprint))
    return Baseline(spec_id=spec_id, release=release, mode=mode, started=started, version=version, entries=ordered)


def _read_bounded(path: Path) -> bytes:
    """The baseline's bytes: a regular file of at most MAX_BASELINE_BYTES (not a fifo or /dev/zero, which would never
    end)."""
    try:
        # O_NONBLOCK: opening a fifo must not wait for a writer before it can be refused
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise BaselineError(f"cannot read baseline {path}: not a regular file")
            data = file.read(MAX_BASELINE_BYTES + 1)
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_BASELINE_BYTES:
        raise BaselineError(f"{path}: larger than {MAX_BASELINE_BYTES >> 20} MiB, more than a baseline holds")
    return data


def load_baseline(path: Path) -> Baseline:
    data = _read_bounded(path)
    try:
        baseline = Baseline.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise BaselineError(f"{path} is not a tsqa baseline ({where}: {first['msg']}); make one with "
                            "'tsqa baseline REPORT.json' or 'tsqa check --write-baseline'") from exc
    if baseline.format > BASELINE_FORMAT:
        raise BaselineError(f"{path} is a baseline of format {baseline.format}, written by a newer tsqa; this one "
                            f"reads format {BASELINE_FORMAT}")
    return baseline


@dataclass(frozen=True)
class Match:
    """Findings against a baseline: the state of each (in the findings' order) and the entries nothing matched."""

    states: list[BaselineState]
    fixed: list[BaselineEntry]


def match(findings: list[Finding], entries: list[BaselineEntry]) -> Match:
    """Match by fingerprint, as many findings per fingerprint as the baseline counted; the rest are new. A matched
    finding more severe than the baseline's is 'worse'; an entry with fewer findings left is fixed for the rest."""
    left: dict[str, int] = {}
    accepted: dict[str, int] = {}
    for e in entries:  # a hand-merged baseline may name a fingerprint twice: its counts add up
        left[e.fingerprint] = left.get(e.fingerprint, 0) + e.count
        accepted[e.fingerprint] = max(accepted.get(e.fingerprint, 0), SEVERITY_RANK[e.severity])
    states: list[BaselineState] = []
    for f in findings:
        if left.get(f.fingerprint, 0) > 0:
            left[f.fingerprint] -= 1
            states.append("worse" if SEVERITY_RANK[f.severity] > accepted[f.fingerprint] else "unchanged")
        else:
            states.append("new")
    first = {e.fingerprint: e for e in reversed(entries)}
    fixed = [first[fp].model_copy(update={"count": n}) for fp, n in left.items() if n > 0]
    return Match(states, fixed)
