"""The registry of checks and `judge`, which runs them over a release's facts."""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.checks import (  # noqa: F401 - importing registers their checks
    anatomy,
    archive,
    chains,
    dtypes,
    files,
    geometry,
    intensity,
    labels,
    meta,
    pieces,
    population,
)
from qa.checks.base import REGISTRY, Check, Context
from qa.checks.table import MetaTable
from qa.rules.finding import Finding, finding_sort_key
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts, ReleaseFacts
from qa.scan.measures import ClassDrift, Measured

CHECKS: tuple[Check, ...] = tuple(REGISTRY)


@dataclass(frozen=True)
class Judgement:
    """All findings of a release in a deterministic order, meta.csv as the checks parsed it, and what the checks
    worked out that the report lists too: each case's measured masks and the classes' drift."""

    findings: list[Finding]
    table: MetaTable | None
    context: Context = field(repr=False)

    def measured_masks(self, case: CaseFacts) -> dict[str, Measured]:
        return self.context.measured_masks(case)

    @property
    def drift(self) -> list[ClassDrift]:
        return self.context.drift


def _runs_on(check: Check, case: CaseFacts) -> bool:
    if case.internal_error is not None:
        return check.scope == "unscanned_case"
    return check.scope == "case" and (check.needs == "quick" or case.deep is not None)


def judge(facts: ReleaseFacts, spec: ReleaseSpec, subset: bool = False) -> Judgement:
    """Every registered check over the facts: cheap, so it can be re-run with another spec without a rescan."""
    ctx = Context(facts, spec, subset)
    deep = any(case.deep is not None for case in facts.cases)
    found = [f for c in CHECKS if c.scope == "release" and (c.needs == "quick" or deep) for f in c.run(ctx)]
    for case in facts.cases:
        found += [f for c in CHECKS if _runs_on(c, case) for f in c.run(case, ctx)]
    return Judgement(sorted(found, key=finding_sort_key), ctx.meta.table, ctx)
