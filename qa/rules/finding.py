"""A finding: one thing wrong with a release, with a stable identity (its fingerprint) that survives re-runs."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qa.rules.codes import SEVERITY_RANK, Severity
from qa.rules.text import safe_text

Scalar = str | int | float | bool | None
Detail = Scalar | list[Scalar] | list[list[Scalar]] | dict[str, Scalar]
FINGERPRINT_HEX = 16
# A finding against a baseline: not in it, in it, or in it at a lower severity than now (a problem that got worse).
BaselineState = Literal["new", "unchanged", "worse"]


def fingerprint(code: str, subcode: str | None, case: str | None, path: str | None, class_name: str | None,
                key: str | None = None) -> str:
    """A finding's identity: what is wrong and where, never what was measured, so that a re-run, another machine or
    another release root gives the same fingerprint. `key` tells apart findings of one code on one file or row (the
    other class of an overlap or a position rule, the column of a meta.csv cell)."""
    identity = json.dumps([code, subcode, case, path, class_name, key], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()[:FINGERPRINT_HEX]


class Waived(BaseModel):
    """The waiver that accepted a finding: the finding stays in the report but does not count for --fail-on."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    expires: date | None = Field(None, description="The last day the waiver applies; null: no end date.")
    entry: int = Field(description="The waiver's number in the waivers file, from 1.")


class Finding(BaseModel):
    """One thing wrong with the release, in a form a person and a CI rule can both act on."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable finding code; `tsqa explain CODE` documents it.")
    subcode: str | None = Field(None, description="The code's variant, for codes that have them (`tsqa explain CODE`).")
    severity: Severity
    case: str | None = Field(description="The case's image_id, or null for release-level findings.")
    path: str | None = Field(description="Path relative to the release root, '/'-separated, or null.")
    class_name: str | None = Field(None, description="The class whose mask the finding is about, if any.")
    message: str
    details: dict[str, Detail] = Field(default_factory=dict, description="The measured numbers behind the finding.")
    fingerprint: str = Field(description="Stable identity: a hash of code, subcode, case, path and class (and, where "
                                         "one file or row has several findings of a code, what tells them apart); "
                                         "never of measured numbers.")
    baseline: BaselineState | None = Field(None, description="Against the baseline given with --baseline: new, "
                                                             "unchanged, or worse (in it at a lower severity); null "
                                                             "without a baseline.")
    waived: Waived | None = Field(None, description="The waiver (--waivers) that accepted it; null when none did.")

    # Names and cells come from the release: a file name that is not UTF-8 or holds an escape sequence must still
    # make a report that serialises and prints as text. The fingerprint was taken from the real name.
    @field_validator("case", "path", "class_name", "message")
    @classmethod
    def _safe(cls, value: str | None) -> str | None:
        return None if value is None else safe_text(value)

    @field_validator("details")
    @classmethod
    def _safe_details(cls, value: dict[str, Detail]) -> dict[str, Detail]:
        return {safe_text(key): _safe_detail(detail) for key, detail in value.items()}


def _safe_detail(value: Detail) -> Detail:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, list):
        return [_safe_detail(item) for item in value]
    if isinstance(value, dict):
        return {safe_text(key): _safe_detail(item) for key, item in value.items()}
    return value


def finding_sort_key(f: Finding) -> tuple:
    return (f.case or "", f.path or "", -SEVERITY_RANK[f.severity], f.code, f.message)


def reaches(severity: str, fail_on: str) -> bool:
    """Whether a finding of this severity fails a run with this --fail-on."""
    return fail_on != "never" and SEVERITY_RANK[severity] >= SEVERITY_RANK[fail_on]


def fails(f: Finding, fail_on: str, only_new: bool = False) -> bool:
    """Whether a finding fails the run: it reaches --fail-on, no waiver accepted it, and, when only new findings
    count (a baseline was given), it is not in the baseline at its severity."""
    return reaches(f.severity, fail_on) and f.waived is None and not (only_new and f.baseline == "unchanged")
