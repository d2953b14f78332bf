"""Checks: pure functions from facts and a spec to findings; `judge` runs them all over a release."""

from __future__ import annotations

from qa.facts import ReleaseFacts
from qa.meta import MetaTable
from qa.report import Detail, Finding, finding_sort_key
from qa.spec import ReleaseSpec, Severity


def finding(
    spec: ReleaseSpec,
    code: str,
    case: str | None,
    path: str | None,
    message: str,
    variant: str | None = None,
    severity: Severity | None = None,
    **details: Detail,
) -> Finding:
    """A finding whose severity is the spec's for this code (or this variant of it), unless a spec threshold decided it."""
    if variant is not None:
        details = {"kind": variant, **details}
    return Finding(code=code, severity=severity or spec.severity(code, variant), case=case, path=path, message=message,
                   details=details)


def judge(facts: ReleaseFacts, spec: ReleaseSpec, subset: bool = False) -> tuple[list[Finding], MetaTable | None]:
    """All findings of a release's facts under a spec, in a deterministic order, and meta.csv as parsed."""
    from qa.checks import anatomy, dtypes, files, geometry, labels, meta

    table, found = meta.check_meta(facts.meta, spec, subset)
    found += files.check_root(facts, spec, table)
    for case in facts.cases:
        if case.internal_error is not None:
            found += labels.check_internal(case, spec)
            continue
        found += files.check_case_files(case, spec)
        found += geometry.check_case_geometry(case, spec)
        found += dtypes.check_case_dtypes(case, spec)
        found += labels.check_case_deep(case, spec)
        found += anatomy.check_case_anatomy(case, spec)
    return sorted(found, key=finding_sort_key), table
