"""What every check uses: the Check record and registry, the judging context, and the finding factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from qa.rules.codes import CODES, Pass, Severity
from qa.rules.finding import Detail, Finding, fingerprint
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts, FileFacts, HeaderFacts, Problem, ReleaseFacts

if TYPE_CHECKING:
    from qa.checks.meta import MetaParse

# release: once per release; case: once per scanned case; unscanned_case: once per case that could not be scanned.
Scope = Literal["release", "case", "unscanned_case"]


@dataclass
class Context:
    """What a check judges with, beside the facts: the spec, whether the release is a subset, meta.csv as parsed."""

    facts: ReleaseFacts
    spec: ReleaseSpec
    subset: bool = False

    @cached_property
    def meta(self) -> MetaParse:
        from qa.checks.meta import parse_meta

        return parse_meta(self.facts.meta, self.spec)


@dataclass(frozen=True)
class Check:
    """A check: the codes it can raise, what it runs on, the pass whose facts it needs, and the function."""

    name: str
    codes: tuple[str, ...]
    scope: Scope
    needs: Pass
    run: Callable[..., list[Finding]] = field(compare=False)


REGISTRY: list[Check] = []


def check(name: str, codes: tuple[str, ...], scope: Scope = "case", needs: Pass = "quick") -> Callable:
    """Register a check function: `(ctx) -> findings` for the release scope, `(case, ctx) -> findings` otherwise."""
    unknown = [c for c in codes if c not in CODES]
    if unknown:
        raise ValueError(f"check {name} names unknown codes {unknown}")

    def register(fn: Callable[..., list[Finding]]) -> Callable[..., list[Finding]]:
        REGISTRY.append(Check(name, codes, scope, needs, fn))
        return fn

    return register


def finding(spec: ReleaseSpec, code: str, case: str | None, path: str | None, message: str,
            subcode: str | None = None, severity: Severity | None = None, class_name: str | None = None,
            key: str | None = None, **details: Detail) -> Finding:
    """A finding whose severity is the spec's for this code (or subcode), unless a spec threshold decided it.
    `key` tells apart findings of one code on one file or row in the fingerprint (see rules.finding.fingerprint)."""
    return Finding(code=code, subcode=subcode, severity=severity or spec.severity(code, subcode), case=case, path=path,
                   class_name=class_name, message=message, details=details,
                   fingerprint=fingerprint(code, subcode, case, path, class_name, key))


def header_problem(facts: FileFacts, spec: ReleaseSpec) -> Problem | None:
    return facts.problem(spec.geometry.max_voxels, spec.geometry.max_bytes)


def usable_header(facts: FileFacts | None, spec: ReleaseSpec) -> HeaderFacts | None:
    if facts is None or header_problem(facts, spec) is not None:
        return None
    return facts.header


def mask_paths(case: CaseFacts, spec: ReleaseSpec) -> list[tuple[str, str]]:
    """(class, path) of every mask the spec expects in the case."""
    return [(name, f"{case.case}/{spec.mask_file(name)}") for name in spec.classes]
