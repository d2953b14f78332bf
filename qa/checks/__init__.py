"""Checks: pure functions from facts and a spec to findings; `judge` runs them all over a release."""

from __future__ import annotations

from qa.facts import ReleaseFacts
from qa.meta import MetaTable
from qa.report import Detail, Finding, finding_sort_key
from qa.spec import ReleaseSpec


def finding(
    spec: ReleaseSpec,
    code: str,
    case: str | None,
    path: str | None,
    message: str,
    variant: str | None = None,
    **details: Detail,
) -> Finding:
    """A finding whose severity is the spec's for this code (or this variant of it)."""
    if variant is not None:
        details = {"kind": variant, **details}
    return Finding(code=code, severity=spec.severity(code, variant), case=case, path=path, message=message, details=details)


def judge(facts: ReleaseFacts, spec: ReleaseSpec, subset: bool = False) -> tuple[list[Finding], MetaTable | None]:
    """All findings of a release's facts under a spec, in a deterministic order, and meta.csv as parsed."""
    from qa.checks import dtypes, files, geometry, meta

    table, found = meta.check_meta(facts.meta, spec, subset)
    found += files.check_root(facts, spec, table)
    for case in facts.cases:
        found += files.check_case_files(case, spec)
        found += geometry.check_case_geometry(case, spec)
        found += dtypes.check_case_dtypes(case, spec)
    return sorted(found, key=finding_sort_key), table
